"""On the cluster: an emergency cuts in; a priority item waits (docs/protocol.md 4.3)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from simulator.fleet import Fleet
from tests.broadcast.helpers import approved_bulletin, send, upload
from tests.factories import small_province
from tests.support import Stack, counts

COMMUNE = "25216"


async def test_an_emergency_preempts_a_normal_broadcast_and_a_priority_one_waits(
    stack: Stack, fleet_factory: Callable[..., Fleet], long_mp3: Path, tone_mp3: Path
) -> None:
    specs = (await small_province(stack)).of(COMMUNE)
    n = len(specs)
    fleet = fleet_factory(specs, time_compression=5)  # the 30 s clip plays in 6 s
    await fleet.start()
    long_clip, short_clip = await upload(stack, long_mp3), await upload(stack, tone_mp3)

    morning = await approved_bulletin(stack, title="Bản tin sáng", media_sha256=long_clip["sha256"])
    news = await send(
        stack,
        title="Bản tin sáng",
        areas=[COMMUNE],
        bulletin_id=morning["id"],
        **{"class": "normal"},
    )
    await stack.wait_broadcast(news["id"], lambda b: counts(b, "playing") == n)

    urgent = await approved_bulletin(
        stack, title="Thông báo ưu tiên", media_sha256=short_clip["sha256"]
    )
    notice = await send(
        stack,
        title="Thông báo ưu tiên",
        areas=[COMMUNE],
        bulletin_id=urgent["id"],
        **{"class": "priority"},
    )
    waiting = await stack.wait_broadcast(notice["id"], lambda b: counts(b, "delivered") == n)
    assert (await stack.broadcast(news["id"]))["counts"] == {"playing": n}, "priority cut in"
    assert waiting["counts"] == {"delivered": n}

    alarm = await send(stack, title="Cháy rừng", areas=[COMMUNE], media_sha256=short_clip["sha256"])
    await stack.wait_broadcast(alarm["id"], lambda b: counts(b, "played") == n)
    cut = await stack.wait_broadcast(news["id"], lambda b: counts(b, "preempted") == n)
    assert cut["confirmed"] == n, "pre-empted still counts as having reached the cluster"
    assert fleet.count(lambda d: d.play_counts[news["id"]] > 0) == 0
    # The notice was waiting, not interrupted: it plays once the emergency is over.
    after = await stack.wait_broadcast(notice["id"], lambda b: counts(b, "played") == n)
    assert after["confirmed"] == n


async def test_what_waits_for_the_speaker_plays_by_class_then_level_then_time(
    stack: Stack, fleet_factory: Callable[..., Fleet], long_mp3: Path, tone_mp3: Path
) -> None:
    """While the commune's news plays, three items queue up: a commune notice, a commune
    priority item and a province notice. When the news ends the priority item plays
    first, then the province's notice (higher sender), then the commune's (DESIGN.md)."""
    [spec] = [s for s in (await small_province(stack)).online() if COMMUNE in s.areas]
    # The 30 s clip plays in 2 s: queueing the three items behind it took ~0.14 s.
    fleet = fleet_factory([spec], time_compression=15)
    await fleet.start()
    device = fleet.devices[spec.code]
    long_clip, short_clip = await upload(stack, long_mp3), await upload(stack, tone_mp3)

    async def sent(title: str, clip: dict[str, str], cls: str, level: str) -> str:
        bulletin = await approved_bulletin(stack, title=title, media_sha256=clip["sha256"])
        body = {"title": title, "clusters": [spec.code], "bulletin_id": bulletin["id"]}
        broadcast = await send(stack, **body, **{"class": cls, "level": level})
        return str(broadcast["id"])

    news = await sent("Bản tin sáng", long_clip, "normal", "commune")
    await stack.wait_broadcast(news, lambda b: counts(b, "playing") == 1)
    queued = [
        await sent("Thông báo của xã", short_clip, "normal", "commune"),
        await sent("Thông báo ưu tiên của xã", short_clip, "priority", "commune"),
        await sent("Thông báo của tỉnh", short_clip, "normal", "province"),
    ]
    for broadcast_id in queued:
        await stack.wait_broadcast(broadcast_id, lambda b: counts(b, "delivered") == 1)
    assert device.started == [news], "nothing cut into a normal item but an emergency"
    for broadcast_id in queued:
        await stack.wait_broadcast(broadcast_id, lambda b: counts(b, "played") == 1)
    commune_notice, commune_priority, province_notice = queued
    assert device.started == [news, commune_priority, province_notice, commune_notice]
