"""A clip no cluster holds yet (issue 24): carried in the command when it is small, staged
while the duty officer confirms when it is not; `received` still means the cluster holds
the file and checked its sha256 (docs/protocol.md 4.2)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from broadcast.commands import Content
from devstack.synth import tone
from simulator.fleet import Fleet
from tests.broadcast.helpers import approved_bulletin, send, upload, watch_inline
from tests.factories import small_province
from tests.support import Stack, counts, eventually
from wire import protocol

COMMUNE = "25216"


async def _speakers_online(
    stack: Stack, fleet_factory: Callable[..., Fleet]
) -> tuple[Fleet, list[str]]:
    """The commune's speaker clusters online ("-09" too), e-boards left out."""
    speakers = (await small_province(stack, clusters_per_commune=2)).speakers(COMMUNE)
    fleet = fleet_factory(speakers, time_compression=10)
    await fleet.start()
    return fleet, [s.code for s in speakers]


async def test_a_small_clip_rides_in_the_command_and_nobody_downloads_it(
    stack: Stack,
    fleet_factory: Callable[..., Fleet],
    tone_mp3: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fleet, codes = await _speakers_online(stack, fleet_factory)
    media = await upload(stack, tone_mp3)
    assert media["size"] <= stack.settings.inline_media_max_bytes
    sent = await send(stack, areas=[COMMUNE], media_sha256=media["sha256"])
    await stack.wait_broadcast(sent["id"], lambda b: counts(b, "played") == len(codes))
    for code, device in fleet.devices.items():
        assert (device.inline_held, device.inline_refused, device.downloads) == (1, 0, 0), code
        assert list(device._media_cache) == [media["sha256"]], code

    # Aired again, it is held: the command names it and no longer carries it.
    carried = watch_inline(stack, monkeypatch)
    again = await send(stack, areas=[COMMUNE], media_sha256=media["sha256"])
    await stack.wait_broadcast(again["id"], lambda b: counts(b, "played") == len(codes))
    assert carried == [None]
    assert fleet.count(lambda d: (d.inline_held, d.downloads) == (1, 0)) == len(codes)


async def test_an_inline_clip_with_a_wrong_sha256_is_refused_and_downloaded(
    stack: Stack,
    fleet_factory: Callable[..., Fleet],
    tone_mp3: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fleet, codes = await _speakers_online(stack, fleet_factory)
    media = await upload(stack, tone_mp3)

    async def other_bytes(content: Content) -> str:
        return protocol.inline_data(b"not the clip the command names")

    # Signed by the control plane and still not the file: the sha256 decides, not the
    # signature.
    monkeypatch.setattr(stack.runtime.require_dispatcher(), "inline_data", other_bytes)
    sent = await send(stack, areas=[COMMUNE], media_sha256=media["sha256"])
    done = await stack.wait_broadcast(sent["id"], lambda b: counts(b, "played") == len(codes))
    assert done["confirmed"] == len(codes)
    for code, device in fleet.devices.items():
        assert (device.inline_held, device.inline_refused, device.downloads) == (0, 1, 1), code
        assert list(device._media_cache) == [media["sha256"]], code


async def _held_by_all(fleet: Fleet, sha256: str) -> None:
    await eventually(
        lambda: _async(fleet.count(lambda d: sha256 in d._media_cache)),
        lambda n: n == len(fleet),
        what=f"every cluster holding {sha256[:12]}",
    )


async def _async[T](value: T) -> T:
    return value


async def test_a_clip_staged_at_the_confirmation_is_held_when_the_send_comes(
    stack_factory: Callable[..., Awaitable[Stack]],
    fleet_factory: Callable[..., Fleet],
    tone_mp3: Path,
) -> None:
    stack = await stack_factory(inline_media_max_bytes=0)  # the clip goes by download
    fleet, codes = await _speakers_online(stack, fleet_factory)
    media = await upload(stack, tone_mp3)
    reach = await stack.client.post(
        "/api/v1/broadcasts/reach", json={"areas": [COMMUNE], "media_sha256": media["sha256"]}
    )
    assert reach.status_code == 200, reach.text
    staged = reach.json()["staged"]
    assert staged["published"] and not staged["inline"]
    assert reach.json()["speakers"] == len(codes)
    await _held_by_all(fleet, media["sha256"])
    assert fleet.count(lambda d: d.acks_sent > 0) == 0, "a stage command is never answered"

    sent = await send(stack, areas=[COMMUNE], media_sha256=media["sha256"])
    await stack.wait_broadcast(sent["id"], lambda b: counts(b, "played") == len(codes))
    for code, device in fleet.devices.items():
        assert device.downloads == 1, f"{code} fetched it once, at the staging"
        assert device._staged == {}, "used by a play: held as any other clip"


async def test_a_staged_clip_that_changed_is_not_used_and_an_unsent_stage_expires(
    stack_factory: Callable[..., Awaitable[Stack]],
    fleet_factory: Callable[..., Fleet],
    tone_mp3: Path,
    audio_dir: Path,
) -> None:
    # The stage's lifetime must outlast its fetch on a loaded machine: at 2 s, four test
    # workers on two cores once kept the clusters from holding it before it expired.
    stack = await stack_factory(inline_media_max_bytes=0, stage_ttl_s=8)
    fleet, codes = await _speakers_online(stack, fleet_factory)
    first = await upload(stack, tone_mp3)
    reach = await stack.client.post(
        "/api/v1/broadcasts/reach", json={"areas": [COMMUNE], "media_sha256": first["sha256"]}
    )
    assert reach.status_code == 200 and reach.json()["staged"]["published"], reach.text
    await _held_by_all(fleet, first["sha256"])

    # The officer records the warning again before sending: the play names another file.
    second = await upload(stack, tone(audio_dir / "tone-880.mp3", 1, source="sine=f=880"))
    assert second["sha256"] != first["sha256"]
    sent = await send(stack, areas=[COMMUNE], media_sha256=second["sha256"])
    await stack.wait_broadcast(sent["id"], lambda b: counts(b, "played") == len(codes))
    for device in fleet.devices.values():
        assert device.downloads == 2 and second["sha256"] in device._media_cache

    # Never sent, the staged clip is dropped at its expiry.
    await eventually(
        lambda: _async(fleet.count(lambda d: d.stages_expired == 1)),
        lambda n: n == len(fleet),
        what="every cluster dropping the unsent stage",
    )
    for code, device in fleet.devices.items():
        assert first["sha256"] not in device._media_cache, code
        assert device.stages_expired == 1, code


async def test_staging_asks_for_the_right_to_send(stack: Stack, tone_mp3: Path) -> None:
    await small_province(stack)
    media = await upload(stack, tone_mp3)
    # Their own commune, which they may read: an emergency is the duty officer's to send.
    operator = {"x-actor": "xa.25216", "x-role": "commune_operator", "x-area": COMMUNE}
    refused = await stack.client.post(
        "/api/v1/broadcasts/reach",
        json={"areas": [COMMUNE], "media_sha256": media["sha256"]},
        headers=operator,
    )
    assert refused.status_code == 403, refused.text


async def test_staging_takes_an_approved_bulletins_audio_and_refuses_what_is_not_audio(
    stack_factory: Callable[..., Awaitable[Stack]], tone_mp3: Path
) -> None:
    stack = await stack_factory(inline_media_max_bytes=0)
    await small_province(stack)
    media = await upload(stack, tone_mp3)
    bulletin = await approved_bulletin(
        stack, title="Cảnh báo cháy rừng", media_sha256=media["sha256"]
    )
    reach = await stack.client.post(
        "/api/v1/broadcasts/reach", json={"areas": [COMMUNE], "bulletin_id": bulletin["id"]}
    )
    assert reach.status_code == 200, reach.text
    assert reach.json()["staged"]["media_sha256"] == media["sha256"]
    unknown = await stack.client.post(
        "/api/v1/broadcasts/reach", json={"areas": [COMMUNE], "media_sha256": "0" * 64}
    )
    assert unknown.status_code == 422, unknown.text
    both = await stack.client.post(
        "/api/v1/broadcasts/reach",
        json={"areas": [COMMUNE], "media_sha256": media["sha256"], "bulletin_id": bulletin["id"]},
    )
    assert both.status_code == 422, both.text
    plain = await stack.client.post("/api/v1/broadcasts/reach", json={"areas": [COMMUNE]})
    assert plain.status_code == 200 and plain.json()["staged"] is None
