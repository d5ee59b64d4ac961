"""Standard warnings held on the device (docs/protocol.md 11.1), end to end: the library
changed through the API, every cluster's document lists the warning, each cluster fetches
and holds it, an emergency naming it plays with no download, the daily self-test finds a
lost or damaged copy and fetches it again, and one it cannot fetch fails the self-test
with the warning named, after which the control plane pushes a document it can fetch
from."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulator.device import SimulatedCluster
from simulator.fleet import Fleet
from tests.broadcast.helpers import send, upload
from tests.factories import small_province
from tests.support import Stack, counts, eventually
from wire import protocol

COMMUNE = "25216"
WARNING = "flood-evacuate"


async def _now[T](value: T) -> T:
    return value


async def _library_with_a_warning(
    stack: Stack, fleet_factory: Callable[..., Fleet], clip: Path
) -> tuple[Fleet, str]:
    """A commune's speakers online, a warning put in the library, and every one of them
    holding its file (the sha256 returned)."""
    speakers = (await small_province(stack, clusters_per_commune=2)).speakers(COMMUNE)
    fleet = fleet_factory(speakers, time_compression=10)
    await fleet.start()
    media = await upload(stack, clip)
    response = await stack.client.put(
        f"/api/v1/warnings/{WARNING}",
        json={"title": "Lũ lớn: sơ tán lên vùng cao", "media_sha256": media["sha256"]},
    )
    assert response.status_code in (200, 201), response.text
    sha256: str = media["sha256"]
    await _held_by_all(fleet, sha256)
    return fleet, sha256


async def _held_by_all(fleet: Fleet, sha256: str) -> None:
    await eventually(
        lambda: _now(fleet.count(lambda d: sha256 in d._media_cache and WARNING in d.warnings)),
        lambda n: n == len(fleet),
        what="every cluster holding the standard warning",
    )


async def _self_test(stack: Stack) -> dict[str, Any]:
    """Run the province's self-test now and wait until every cluster has answered."""
    started = await stack.client.post("/api/v1/self-test")
    assert started.status_code == 201, started.text
    operation = started.json()["operation_id"]

    async def report() -> dict[str, Any]:
        response = await stack.client.get("/api/v1/self-test/report", params={"area": COMMUNE})
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    def answered(data: dict[str, Any]) -> bool:
        waiting = [
            f for c in data["communes"] for f in c["clusters"] if f["reason"].startswith("no ans")
        ]
        return data["operation_id"] == operation and not waiting

    return await eventually(report, answered, what="every cluster's self-test answer")


def _speaker(fleet: Fleet, index: int) -> SimulatedCluster:
    return sorted(fleet.devices.values(), key=lambda d: d.spec.code)[index]


async def test_every_cluster_holds_a_warning_and_an_emergency_naming_it_downloads_nothing(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    fleet, sha256 = await _library_with_a_warning(stack, fleet_factory, tone_mp3)
    downloads = {code: d.downloads for code, d in fleet.devices.items()}
    assert set(downloads.values()) == {1}, downloads  # fetched once, when listed

    sent = await send(stack, areas=[COMMUNE], warning=WARNING, **{"class": "emergency"})
    done = await stack.wait_broadcast(sent["id"], lambda b: counts(b, "played") == len(fleet))
    assert done["media_sha256"] == sha256
    for code, device in fleet.devices.items():
        # Held already: no download, and nothing carried in the command either.
        assert (device.downloads, device.inline_held) == (1, 0), code
        assert device.play_counts[sent["id"]] == 1, code

    # Kept across a power cut (protocol 4.8), so it plays with no download after one too.
    rebooted = _speaker(fleet, 0)
    await rebooted.power_cycle()
    await rebooted.online.wait()
    again = await send(stack, areas=[COMMUNE], warning=WARNING, **{"class": "emergency"})
    await stack.wait_broadcast(again["id"], lambda b: counts(b, "played") == len(fleet))
    assert rebooted.downloads == 1 and rebooted.play_counts[again["id"]] == 1


async def test_the_self_test_fetches_a_lost_or_damaged_warning_again(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    fleet, sha256 = await _library_with_a_warning(stack, fleet_factory, tone_mp3)
    damaged, lost = _speaker(fleet, 0), _speaker(fleet, 1)
    damaged._media_cache[sha256] = b"flash gone bad" + damaged._media_cache[sha256][14:]
    del lost._media_cache[sha256]

    report = await _self_test(stack)
    assert report["passed"] == report["total"] == len(fleet), report
    for device in (damaged, lost):
        assert device.warnings_fetched == 2, device.spec.code  # when listed, and now
    assert fleet.count(lambda d: sha256 in d._media_cache) == len(fleet)
    assert hashlib.sha256(damaged._media_cache[sha256]).hexdigest() == sha256


async def test_a_warning_that_cannot_be_fetched_fails_the_self_test_and_is_pushed_anew(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    fleet, sha256 = await _library_with_a_warning(stack, fleet_factory, tone_mp3)
    broken = _speaker(fleet, 0)
    # Its copy lost, and the grant it holds no longer good (as once the document's
    # validity has passed): the self-test cannot fetch it again.
    del broken._media_cache[sha256]
    held = broken.warnings[WARNING]
    broken.warnings[WARNING] = held.model_copy(
        update={"media": held.media.model_copy(update={"url": held.media.url + "0"})}
    )
    version = broken.schedule.version

    report = await _self_test(stack)
    failures = {f["cluster"]: f["reason"] for c in report["communes"] for f in c["clusters"]}
    assert failures == {broken.spec.code: protocol.warning_not_held(WARNING)}, report

    # The control plane answers with a new document (fresh grants); the cluster takes it
    # and fetches the warning from it.
    await eventually(
        lambda: _now((broken.schedule.version, sha256 in broken._media_cache)),
        lambda seen: seen[0] > version and seen[1],
        what="a new document, and the warning fetched from it",
    )
    assert broken.warnings[WARNING].media.url != held.media.url + "0"
