"""Remote operations against real simulated clusters: one command to a whole commune with
a result per cluster, failures with their reason, reboots, expiry of the silent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from simulator.fleet import Fleet
from tests.factories import small_province
from tests.support import Stack, eventually

COMMUNE = "25216"
TECHNICIAN = {"x-actor": "ky.thuat.vien", "x-role": "technician"}


async def _operate(stack: Stack, **body: Any) -> dict[str, Any]:
    response = await stack.client.post("/api/v1/operations", json=body, headers=TECHNICIAN)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()
    return data


async def _finished(stack: Stack, operation_id: str, total: int) -> dict[str, Any]:
    async def read() -> dict[str, Any]:
        data: dict[str, Any] = (await stack.client.get(f"/api/v1/operations/{operation_id}")).json()
        return data

    return await eventually(
        read,
        lambda op: (
            sum(n for s, n in op["counts"].items() if s not in ("sent", "accepted")) == total
        ),
        what=f"every answer to {operation_id}",
    )


async def test_a_commune_wide_volume_change_with_one_amplifier_dead(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    specs = (await small_province(stack, eboards=True)).of(COMMUNE)  # its e-board too
    fleet = fleet_factory(specs, time_compression=10)
    await fleet.start()
    dead = fleet.devices[specs[0].code]
    dead.condition.amp_dead = True

    volume = await _operate(stack, kind="set_volume", params={"volume": 35}, areas=[COMMUNE])
    assert volume["total"] == len(specs) and volume["published"] is True
    assert volume["requested_by"] == "ky.thuat.vien"
    done = await _finished(stack, volume["id"], len(specs))
    assert done["counts"] == {"done": len(specs)}
    assert fleet.count(lambda d: d.volume == 35) == len(specs)
    # The heartbeat sent with the answer brings the new volume to the technician's page.
    page = await eventually(
        lambda: _health(stack, specs[1].code),
        lambda h: h["telemetry"] is not None and h["telemetry"]["volume"] == 35,
        what="the new volume reported",
    )
    assert page["online"] is True

    tone = await _operate(stack, kind="test_tone", params={"seconds": 2}, areas=[COMMUNE])
    finished = await _finished(stack, tone["id"], len(specs))
    assert finished["counts"] == {"done": len(specs) - 1, "failed": 1}
    [failed] = [r for r in finished["results"] if r["state"] == "failed"]
    assert failed["cluster"] == dead.spec.code and "amplifier" in failed["reason"]
    assert dead.test_tones == 0 and fleet.count(lambda d: d.test_tones == 1) == len(specs) - 1


async def test_reboot_fm_and_amplifier_on_one_cluster(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> None:
    [spec] = [s for s in (await small_province(stack)).online() if COMMUNE in s.areas]
    fleet = fleet_factory([spec])
    await fleet.start()
    device = fleet.devices[spec.code]
    for body, check in (
        ({"kind": "reboot"}, lambda: device.reboots == 1),
        ({"kind": "tune_fm", "params": {"frequency_khz": 99_900}}, lambda: device.fm_khz == 99_900),
        ({"kind": "amplifier", "params": {"on": False}}, lambda: device.condition.amp_on is False),
        ({"kind": "report_status"}, lambda: True),
    ):
        op = await _operate(stack, clusters=[spec.code], **body)
        done = await _finished(stack, op["id"], 1)
        assert done["counts"] == {"done": 1}, done
        assert check()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "set_volume", "areas": [COMMUNE]}, "params.volume"),
        ({"kind": "set_volume", "params": {"volume": 101}, "areas": [COMMUNE]}, "params.volume"),
        (
            {"kind": "tune_fm", "params": {"frequency_khz": 150_000}, "areas": [COMMUNE]},
            "params.frequency_khz",
        ),
        ({"kind": "self_destruct", "areas": [COMMUNE]}, "kind"),
        ({"kind": "reboot"}, "areas"),
    ],
)
async def test_bad_operations_name_the_field(
    stack: Stack, body: dict[str, Any], field: str
) -> None:
    await small_province(stack)
    response = await stack.client.post("/api/v1/operations", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    named = detail["field"] if isinstance(detail, dict) else detail[0]["field"]
    assert named == field or (field == "body" and named in ("body", ""))


async def test_clusters_that_never_answer_are_expired(
    stack_factory: Callable[..., Awaitable[Stack]], fleet_factory: Callable[..., Fleet]
) -> None:
    from datetime import UTC, datetime, timedelta

    from core.clock import ManualClock

    clock = ManualClock(datetime.now(UTC))
    stack = await stack_factory(clock=clock)
    specs = (await small_province(stack)).of(COMMUNE)  # "-01" and "-09"
    fleet = fleet_factory(specs[:1])  # the second never comes online
    await fleet.start()
    op = await _operate(
        stack, kind="report_status", clusters=[s.code for s in specs], expires_in_s=60
    )
    await eventually(
        lambda: stack.client.get(f"/api/v1/operations/{op['id']}"),
        lambda r: r.json()["counts"].get("done") == 1,
        what="the online one done",
    )
    clock.set(clock.now() + timedelta(seconds=61))
    expired = await _finished(stack, op["id"], 2)
    assert expired["counts"] == {"done": 1, "expired": 1}
    assert [r["cluster"] for r in expired["results"] if r["state"] == "expired"] == [specs[1].code]


async def _health(stack: Stack, code: str) -> dict[str, Any]:
    data: dict[str, Any] = (await stack.client.get(f"/api/v1/clusters/{code}/health")).json()
    return data
