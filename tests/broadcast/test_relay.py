"""Relaying a live stream: a real Icecast server fed by ffmpeg, simulated clusters that
connect, confirm "playing" only once audio arrives, and say why when it fails."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from broadcast.models import Delivery
from core.database import session_scope
from devstack.icecast import IcecastServer, StreamSource, free_port
from simulator.fleet import Fleet
from simulator.spec import DeviceSpec
from tests.broadcast.helpers import approved_bulletin, send
from tests.factories import small_province
from tests.support import Stack, counts


async def speakers_of_one_commune(stack: Stack) -> list[DeviceSpec]:
    return (await small_province(stack)).speakers("25216")


async def deliveries(stack: Stack, broadcast_id: str) -> list[Delivery]:
    async with session_scope(stack.runtime.sessions) as session:
        rows = await session.scalars(select(Delivery).where(Delivery.broadcast_id == broadcast_id))
        return list(rows)


async def test_a_scheduled_relay_plays_from_its_start_to_its_end(
    stack: Stack, fleet_factory: Callable[..., Fleet], icecast: IcecastServer
) -> None:
    commune = "25216"
    local = (await small_province(stack, eboards=True)).of(commune)  # speakers and an e-board
    fleet = fleet_factory(local)
    await fleet.start()
    async with StreamSource(icecast, f"/vov1-{uuid.uuid4().hex[:6]}.mp3") as source:
        relay = await approved_bulletin(stack, title="Tiếp sóng VOV1", stream_url=source.url)
        starts = datetime.now(UTC) + timedelta(seconds=1.5)
        ends = starts + timedelta(seconds=3)
        sent = await send(
            stack,
            title="Tiếp sóng VOV1 thời sự",
            areas=[commune],
            bulletin_id=relay["id"],
            stream_starts_at=starts.isoformat(),
            stream_ends_at=ends.isoformat(),
            **{"class": "normal"},
        )
        assert sent["expires_at"] > ends.isoformat().replace("+00:00", "Z")[:19]
        done = await stack.wait_broadcast(sent["id"], lambda b: counts(b, "played") == len(local))

    assert done["stream_url"] == source.url and done["display_s"] == 3
    for device in fleet.devices.values():
        if device.spec.kind == "speaker_cluster":
            assert device.stream_bytes[sent["id"]] > 16_000, "audio really flowed (64 kbit/s)"
        else:
            assert device.shown[-1].title == "Tiếp sóng VOV1 thời sự"
            assert device.stream_bytes[sent["id"]] == 0, "an e-board shows, it does not relay"
    for delivery in await deliveries(stack, sent["id"]):
        assert delivery.playing_at is not None and delivery.played_at is not None
        assert delivery.playing_at >= starts - timedelta(seconds=0.05), "not before the start"
        assert delivery.played_at >= ends - timedelta(seconds=0.05), "played to the end"


async def test_an_unreachable_stream_fails_with_the_reason(
    stack: Stack, fleet_factory: Callable[..., Fleet], icecast: IcecastServer
) -> None:
    specs = await speakers_of_one_commune(stack)
    fleet = fleet_factory(specs)
    await fleet.start()
    cases = {
        f"http://127.0.0.1:{free_port()}/live.mp3": "stream unreachable: ConnectionRefusedError",
        f"{icecast.url}/no-such-mount.mp3": "stream unreachable: HTTP 404",
    }
    for url, reason in cases.items():
        sent = await send(
            stack, title="Tiếp sóng khẩn", clusters=[s.code for s in specs], stream_url=url
        )
        done = await stack.wait_broadcast(sent["id"], lambda b: counts(b, "failed") == len(specs))
        assert done["confirmed"] == 0
        assert {d.reason for d in await deliveries(stack, sent["id"])} == {reason}


async def test_a_stream_that_dies_mid_relay_is_reported_failed(
    stack: Stack, fleet_factory: Callable[..., Fleet], icecast: IcecastServer
) -> None:
    specs = await speakers_of_one_commune(stack)
    fleet = fleet_factory(specs)
    await fleet.start()
    source = await StreamSource(icecast, f"/tinh-{uuid.uuid4().hex[:6]}.mp3").start()
    try:
        sent = await send(
            stack,
            title="Tiếp sóng đài tỉnh",
            clusters=[s.code for s in specs],
            stream_url=source.url,
            stream_ends_at=(datetime.now(UTC) + timedelta(minutes=5)).isoformat(),
        )
        await stack.wait_broadcast(sent["id"], lambda b: counts(b, "playing") == len(specs))
    finally:
        await source.stop()
    await stack.wait_broadcast(sent["id"], lambda b: counts(b, "failed") == len(specs))
    reasons = {d.reason for d in await deliveries(stack, sent["id"])}
    assert reasons == {"stream ended before its end time"}
    assert all(d.playing_at is not None for d in await deliveries(stack, sent["id"]))
