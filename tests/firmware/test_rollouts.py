"""Firmware rollouts against real simulated clusters: waves, pause and resume, an abort at
its threshold, offline clusters waiting for their link, images that must not install."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from core.database import session_scope
from devices.models import Cluster
from firmware.images import manifest_fields
from firmware.rollouts import plan_waves
from firmware.schemas import Wave
from health import operations
from simulator.fleet import Fleet
from simulator.spec import DeviceSpec
from tests.factories import small_province
from tests.support import Stack, eventually
from wire.signing import SigningKey

COMMUNE = "25216"
TECHNICIAN = {"x-actor": "ky.thuat.vien", "x-role": "technician"}


async def _upload(
    stack: Stack, version: str, image: bytes, *, approve: bool = True, **form: str
) -> tuple[int, dict[str, Any]]:
    """Uploaded by a technician and, unless told not to, approved by a second person (the
    development administrator), as a release must be before any rollout."""
    response = await stack.client.post(
        "/api/v1/firmware",
        data={"version": version, **form},
        files={"file": (f"{version}.bin", image)},
        headers=TECHNICIAN,
    )
    if response.status_code == 201 and approve:
        approved = await stack.client.post(f"/api/v1/firmware/{version}/approve")
        assert approved.status_code == 200, approved.text
    return response.status_code, response.json()


async def _rollout(stack: Stack, **body: Any) -> dict[str, Any]:
    response = await stack.client.post("/api/v1/rollouts", json=body, headers=TECHNICIAN)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def _read(stack: Stack, rollout_id: int) -> dict[str, Any]:
    data: dict[str, Any] = (
        await stack.client.get(f"/api/v1/rollouts/{rollout_id}?clusters_limit=1000")
    ).json()
    return data


async def _until(stack: Stack, rollout_id: int, state: str) -> dict[str, Any]:
    return await eventually(
        lambda: _read(stack, rollout_id),
        lambda r: r["state"] == state,
        what=f"rollout {rollout_id} {state}",
    )


async def _seen(stack: Stack, code: str, *, online: bool) -> None:
    """Wait until the control plane shows the cluster online (or offline)."""
    await eventually(
        lambda: stack.client.get(f"/api/v1/clusters/{code}/health"),
        lambda r: r.json()["online"] is online,
        what=f"{code} {'online' if online else 'offline'}",
    )


def _by_wave(rollout: dict[str, Any]) -> dict[int, set[str]]:
    waves: dict[int, set[str]] = {}
    for c in rollout["clusters"]:
        if c["state"] == "skipped":
            continue
        waves.setdefault(c["wave"], set()).add(c["cluster"])
    return waves


async def _speakers(stack: Stack) -> list[DeviceSpec]:
    """The commune's five speaker clusters (waves of 2 or 3 leave some for the next); its
    e-board is registered too, for a rollout to skip."""
    province = await small_province(stack, clusters_per_commune=4, eboards=True)
    return province.speakers(COMMUNE)


async def test_waves_pause_for_a_person_then_the_rest_installs(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    specs = await _speakers(stack)
    fleet = fleet_factory(specs)
    await fleet.start()
    status, image = await _upload(stack, "2.1.0", os.urandom(200_000), notes="sửa lỗi âm lượng")
    assert status == 201, image
    assert image["size"] == 200_000 and image["key_id"] == stack.settings.firmware_signer.kid

    created = await _rollout(
        stack,
        firmware="2.1.0",
        areas=[COMMUNE],
        waves=[{"count": 2}, {"percent": 100}],
        pause_between_waves=True,
    )
    waves = _by_wave(created)
    assert [len(waves[1]), len(waves[2])] == [2, len(specs) - 2]
    [eboard] = [c for c in created["clusters"] if c["state"] == "skipped"]
    assert eboard["reason"] == "eboard: this rollout is for speaker_cluster"
    paused = await _until(stack, created["id"], "paused")
    assert "wave 1 finished" in paused["reason"]
    # Only the first wave installed: the rest wait for a person.
    assert {c for c, d in fleet.devices.items() if d.installs} == waves[1]
    assert fleet.count(lambda d: d.firmware == "2.1.0") == 2

    resumed = await stack.client.post(
        f"/api/v1/rollouts/{created['id']}/resume", headers=TECHNICIAN
    )
    assert resumed.status_code == 200 and resumed.json()["reason"] == "resumed by ky.thuat.vien"
    done = await _until(stack, created["id"], "completed")
    assert done["counts"] == {"done": len(specs), "skipped": 1}  # and the commune's e-board
    assert all(d.installs == ["2.1.0"] for d in fleet.devices.values())
    # Each cluster came back on the new version and says so in its heartbeats.
    health = await eventually(
        lambda: stack.client.get(f"/api/v1/clusters/{specs[0].code}/health"),
        lambda r: (r.json()["telemetry"] or {}).get("firmware") == "2.1.0",
        what="the new version in the cluster's telemetry",
    )
    assert health.json()["online"] is True
    # And the register says so too (it kept the old version before, issue 20).
    register = (await stack.client.get(f"/api/v1/clusters?area={COMMUNE}&limit=500")).json()
    firmware = {c["code"]: c["firmware"] for c in register["items"]}
    assert {firmware[s.code] for s in specs} == {"2.1.0"}


async def test_a_rollout_aborts_at_its_threshold_and_resumes_when_fixed(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    specs = await _speakers(stack)
    fleet = fleet_factory(specs)
    await fleet.start()
    for device in fleet.devices.values():
        device.condition.install_fails = True  # a bad build: it boots on none of them
    await _upload(stack, "2.2.0", os.urandom(50_000))
    created = await _rollout(
        stack,
        firmware="2.2.0",
        areas=[COMMUNE],
        waves=[{"count": 3}, {"percent": 100}],
        abort_failure_pct=50,
        abort_min_finished=3,
    )
    aborted = await _until(stack, created["id"], "aborted")
    assert aborted["reason"].startswith("3 of 3 installs failed (100%, more than 50%)")
    waves = _by_wave(aborted)
    failed = {c["cluster"]: c["reason"] for c in aborted["clusters"] if c["state"] == "failed"}
    assert set(failed) == waves[1]
    assert all("did not boot; rolled back to sim-1.0" in r for r in failed.values())
    # The second wave was never sent: not one of its clusters tried.
    assert aborted["waves"][1]["counts"] == {"pending": len(specs) - 3}
    assert not any(fleet.devices[c].installs for c in waves[2])
    assert fleet.count(lambda d: d.firmware == "sim-1.0") == len(specs)

    for device in fleet.devices.values():
        device.condition.install_fails = False  # the technician fixed what was wrong
    resumed = await stack.client.post(
        f"/api/v1/rollouts/{created['id']}/resume", headers=TECHNICIAN
    )
    assert resumed.status_code == 200, resumed.text
    done = await _until(stack, created["id"], "completed")
    # The three failures stay on record; the rest installed.
    assert done["counts"] == {"failed": 3, "done": len(specs) - 3, "skipped": 1}
    assert all(fleet.devices[c].firmware == "2.2.0" for c in waves[2])


async def test_a_failure_share_at_the_threshold_does_not_abort(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    specs = (await _speakers(stack))[:5]
    fleet = fleet_factory(specs)
    await fleet.start()
    fleet.devices[specs[2].code].condition.install_fails = True
    await _upload(stack, "2.3.0", os.urandom(10_000))
    created = await _rollout(
        stack,
        firmware="2.3.0",
        clusters=[s.code for s in specs],
        waves=[{"percent": 100}],
        abort_failure_pct=20,  # 1 of 5 is 20%: not more than 20%
        abort_min_finished=5,
    )
    done = await _until(stack, created["id"], "completed")
    assert done["counts"] == {"done": 4, "failed": 1}
    assert done["clusters"][0]["cluster"] == specs[2].code  # failures listed first


async def test_offline_clusters_wait_and_do_not_hold_the_next_wave(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    specs = (await _speakers(stack))[:4]
    fleet = fleet_factory(specs)
    await fleet.start()
    away = specs[0].code
    await fleet.stop([away])  # says it is offline before it goes
    await _seen(stack, away, online=False)
    await _upload(stack, "2.4.0", os.urandom(10_000))
    created = await _rollout(
        stack,
        firmware="2.4.0",
        clusters=[s.code for s in specs],
        waves=[{"count": 2}, {"percent": 100}],
    )
    waiting = await eventually(
        lambda: _read(stack, created["id"]),
        lambda r: r["counts"].get("done") == 3,
        what="every online cluster installed",
    )
    assert waiting["state"] == "running" and waiting["current_wave"] == 2
    assert {c["cluster"]: c["state"] for c in waiting["clusters"]}[away] == "pending"

    await fleet.start([away])
    done = await _until(stack, created["id"], "completed")
    assert done["counts"] == {"done": 4}
    assert fleet.devices[away].firmware == "2.4.0"


async def test_a_wave_none_of_whose_clusters_is_reachable_holds_the_next_one(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    """Offline clusters do not hold a wave up once it has an outcome; a wave with none is
    no evidence that the image boots, so the next, wider wave must not start."""
    specs = (await _speakers(stack))[:4]
    fleet = fleet_factory(specs)  # none of them online yet
    await _upload(stack, "2.6.0", os.urandom(10_000))
    created = await _rollout(
        stack,
        firmware="2.6.0",
        clusters=[s.code for s in specs],
        waves=[{"count": 2}, {"percent": 100}],
    )
    waves = _by_wave(await _read(stack, created["id"]))
    await fleet.start(sorted(waves[2]))  # only the second wave's clusters come online
    for code in waves[2]:
        await _seen(stack, code, online=True)
    assert stack.runtime.jobs is not None
    await stack.runtime.jobs.wait_ticks(3)
    held = await _read(stack, created["id"])
    assert held["state"] == "running" and held["current_wave"] == 1
    assert held["reason"] == "wave 1: waiting for its clusters to come online"
    assert {c["state"] for c in held["clusters"]} == {"pending"}
    assert not any(d.installs for d in fleet.devices.values()), "nothing widened untried"

    await fleet.start(sorted(waves[1]))
    done = await _until(stack, created["id"], "completed")
    assert done["counts"] == {"done": 4} and done["reason"] == ""


async def test_clusters_refuse_an_image_whose_bytes_do_not_match_its_manifest(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    specs = (await _speakers(stack))[:2]
    fleet = fleet_factory(specs)
    await fleet.start()
    status, image = await _upload(stack, "2.5.0", os.urandom(20_000))
    assert status == 201
    stored = stack.settings.media_dir / image["sha256"][:2] / image["sha256"]
    stored.write_bytes(b"tampered" + stored.read_bytes()[8:])  # altered on the server
    created = await _rollout(
        stack, firmware="2.5.0", clusters=[s.code for s in specs], abort_failure_pct=100
    )
    done = await _until(stack, created["id"], "completed")
    assert done["counts"] == {"failed": 2}
    assert all(c["reason"] == "firmware sha256 mismatch" for c in done["clusters"])
    assert fleet.count(lambda d: d.firmware == "sim-1.0" and not d.installs) == 2


async def test_already_installed_and_other_models_are_skipped(stack: Stack) -> None:
    specs = (await _speakers(stack))[:3]
    async with stack.runtime.writing() as session:
        await session.execute(
            update(Cluster).where(Cluster.code == specs[0].code).values(model="LOA-X2")
        )
        await session.execute(
            update(Cluster).where(Cluster.code != specs[0].code).values(model="LOA-X1")
        )
        await session.execute(
            update(Cluster).where(Cluster.code == specs[1].code).values(firmware="3.0.0")
        )
    await _upload(stack, "3.0.0", os.urandom(5_000), model="LOA-X1")
    created = await _rollout(stack, firmware="3.0.0", clusters=[s.code for s in specs])
    reasons = {c["cluster"]: (c["state"], c["reason"]) for c in created["clusters"]}
    assert reasons[specs[0].code] == ("skipped", "model LOA-X2, image is for LOA-X1")
    assert reasons[specs[1].code] == ("skipped", "already on 3.0.0")
    assert reasons[specs[2].code] == ("pending", None)


async def test_upload_refuses_a_vendor_signature_the_clusters_would_not_trust(
    settings_factory: Callable[..., Any], stack_factory: Callable[..., Any]
) -> None:
    vendor = SigningKey.generate()
    stack: Stack = await stack_factory(firmware_keys=[vendor.public_text])
    image = os.urandom(4_000)
    fields = manifest_fields("4.0.0", hashlib.sha256(image).hexdigest(), len(image), None)
    stranger = SigningKey.generate().sign(fields)["sig"]
    status, refused = await _upload(stack, "4.0.0", image, signature=stranger)
    assert status == 422 and refused["detail"] == {"field": "signature"}
    assert "unknown_key" in refused["error"]

    status, accepted = await _upload(stack, "4.0.0", image, signature=vendor.sign(fields)["sig"])
    assert status == 201 and accepted["key_id"] == vendor.kid
    status, again = await _upload(stack, "4.0.0", image)
    assert status == 409 and again["detail"] == {"field": "version"}


async def test_bad_rollout_requests_name_the_field(stack: Stack) -> None:
    await small_province(stack)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"firmware": "9.9.9", "areas": [COMMUNE]}, 404, "firmware"),
        ({"firmware": "x", "areas": []}, 422, "give at least one target"),
        (
            {"firmware": "x", "areas": [COMMUNE], "waves": [{"percent": 5, "count": 2}]},
            422,
            "either percent or count",
        ),
        ({"firmware": "x", "areas": [COMMUNE], "abort_failure_pct": 101}, 422, "abort_failure_pct"),
    ]
    for body, status, words in cases:
        response = await stack.client.post("/api/v1/rollouts", json=body, headers=TECHNICIAN)
        assert response.status_code == status, (body, response.text)
        assert words in response.text, response.text
    missing = await stack.client.post("/api/v1/rollouts/12345/resume", headers=TECHNICIAN)
    assert missing.status_code == 404


async def test_clusters_refuse_a_manifest_not_signed_by_a_key_they_trust(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    """Even from the control plane itself (a signed command): an image is installed only
    if its own manifest is signed by a firmware key, never by the key that signs
    commands (issue 19: that key signed whatever a technician uploaded)."""
    [spec] = (await _speakers(stack))[:1]
    fleet = fleet_factory([spec])
    await fleet.start()
    image = os.urandom(8_000)
    _, stored = await _upload(stack, "6.0.0", image)
    forged = stack.settings.signer.sign(manifest_fields("6.6.6", stored["sha256"], 8_000, None))
    runtime, now = stack.runtime, stack.runtime.clock.now()
    async with runtime.writing() as session:
        cluster_id = await session.scalar(select(Cluster.id).where(Cluster.code == spec.code))
        assert cluster_id is not None
        created = await operations.write(
            session=session,
            settings=stack.settings,
            kind="firmware_update",
            params={"firmware": forged},
            target_areas=[],
            target_clusters=[spec.code],
            cluster_ids=[cluster_id],
            actor="test",
            now=now,
            expires_at=now + timedelta(minutes=5),
        )
    assert await runtime.require_dispatcher().publish_commands("forged", created.publications)
    result = await eventually(
        lambda: stack.client.get(f"/api/v1/operations/{created.operation.id}"),
        lambda r: r.json()["counts"].get("failed") == 1,
        what="the forged image refused",
    )
    [answer] = result.json()["results"]
    assert answer["reason"] == "firmware signature refused: unknown_key"
    device = fleet.devices[spec.code]
    assert device.firmware == "sim-1.0" and not device.installs and device.reboots == 0


def test_waves_spread_over_communes_and_the_last_takes_the_rest() -> None:
    # Three communes (area ids 1, 2, 3) of 4, 2 and 1 clusters.
    clusters = [(10 + i, 1, f"A{i}") for i in range(4)] + [
        (20, 2, "B0"),
        (21, 2, "B1"),
        (30, 3, "C0"),
    ]
    planned = plan_waves(clusters, [Wave(count=3), Wave(percent=50), Wave(percent=1)])
    assert planned == [[10, 20, 30], [11, 21, 12, 13]]  # ceil(7 * 50%) = 4; the rest: none
    assert plan_waves(clusters, [Wave(percent=10), Wave(count=100)]) == [
        [10],
        [20, 30, 11, 21, 12, 13],
    ]
    assert plan_waves([], [Wave(percent=100)]) == []


async def test_an_operation_a_cluster_missed_is_sent_again_when_it_is_back(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    [spec] = (await _speakers(stack))[:1]
    fleet = fleet_factory([spec])
    await fleet.start()
    device = fleet.devices[spec.code]
    # Its power cut: no goodbye, and it starts clean when the power is back (a dropped
    # link alone would get the command from its MQTT session on reconnecting).
    await device.stop(clean=False)
    response = await stack.client.post(
        "/api/v1/operations",
        json={"kind": "set_volume", "params": {"volume": 23}, "clusters": [spec.code]},
        headers=TECHNICIAN,
    )
    assert response.status_code == 201
    operation_id = response.json()["id"]
    device.start()
    done = await eventually(
        lambda: stack.client.get(f"/api/v1/operations/{operation_id}"),
        lambda r: r.json()["counts"] == {"done": 1},
        what="the volume set after the outage",
    )
    assert device.volume == 23 and done.json()["results"][0]["state"] == "done"
    async with session_scope(stack.runtime.sessions) as session:
        from health.models import OperationResult

        attempts = await session.scalar(
            select(OperationResult.attempts).where(OperationResult.operation_id == operation_id)
        )
    assert attempts is not None and attempts >= 2


async def test_a_release_needs_a_second_persons_approval(stack: Stack) -> None:
    """Issue 19: one technician could upload any bytes and roll them out at once."""
    await small_province(stack)
    status, _ = await _upload(stack, "7.0.0", os.urandom(4_000), approve=False)
    assert status == 201
    early = await stack.client.post(
        "/api/v1/rollouts", json={"firmware": "7.0.0", "areas": [COMMUNE]}, headers=TECHNICIAN
    )
    assert early.status_code == 409 and early.json()["detail"]["field"] == "firmware"
    own = await stack.client.post("/api/v1/firmware/7.0.0/approve", headers=TECHNICIAN)
    assert own.status_code == 403 and own.json()["detail"]["missing"] == "author"
    approved = await stack.client.post("/api/v1/firmware/7.0.0/approve")  # someone else
    assert approved.status_code == 200 and approved.json()["approved_by"] == "admin"
    now = await stack.client.post(
        "/api/v1/rollouts", json={"firmware": "7.0.0", "areas": [COMMUNE]}, headers=TECHNICIAN
    )
    assert now.status_code == 201, now.text


def test_production_holds_no_firmware_key_unless_given_one() -> None:
    import secrets

    from core.settings import Settings

    settings = Settings(
        environment="production",
        secret_key=secrets.token_urlsafe(32),
        signing_key=SigningKey.generate().seed_text,
        firmware_keys=[SigningKey.generate().public_text],
    )
    assert settings.firmware_signer is None  # images come signed (vendor, offline release key)
    assert settings.signer.public_text not in settings.device_firmware_keys
