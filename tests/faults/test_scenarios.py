"""A district's emergency on its worst day: the broker restarted mid-alert, the database
server crashed and restarted, acknowledgements duplicated and out of order, clocks
skewed, a third of the links flapping. After each, every reachable cluster has confirmed it and played
it once, and the record of who confirmed when is complete (tests/faults/helpers.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.main import create_app
from broadcast.ingest import IncomingAck, apply_acks
from broadcast.models import Broadcast
from core.database import create_engine, session_scope
from core.ingest_stats import IngestStats
from core.migrate import upgrade
from core.settings import Settings
from devstack.broker import Broker
from devstack.private_postgres import PostgresUnavailable, PrivatePostgres
from simulator.fleet import Fleet
from simulator.spec import DeviceSpec, Faults
from tests.broadcast.helpers import send, upload
from tests.factories import small_province
from tests.faults.helpers import assert_nothing_lost, records
from tests.support import Stack, counts, start_stack
from wire import protocol
from wire.mqtt_lite import LiteClient
from wire.protocol import Ack, AckStage

DISTRICT = "689"  # of the small province: two communes, fourteen devices


@pytest.fixture
async def own_broker() -> AsyncIterator[Broker]:
    broker = Broker().start()
    yield broker
    broker.close()


PROBE_TOPIC = "bc/v1/test/retained"


async def _retain(broker: Broker, topic: str, payload: bytes) -> None:
    client = LiteClient("probe-writer", lambda _t, _p: None)
    await client.connect(broker.host, broker.port)
    acknowledged = client.publish(topic, payload, retain=True)
    assert acknowledged is not None
    await asyncio.wait_for(acknowledged, 10)  # the broker has it
    await client.disconnect()


async def _retained(broker: Broker, topic: str) -> bytes:
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def keep(_topic: str, payload: bytes) -> None:
        if not got.done():
            got.set_result(payload)

    client = LiteClient("probe-reader", keep)
    await client.connect(broker.host, broker.port)
    try:
        await client.subscribe([topic])
        return await asyncio.wait_for(got, 10)
    finally:
        await client.disconnect()


async def _district(stack: Stack) -> list[DeviceSpec]:
    """A small province; the district's clusters and e-boards: enough of them that the
    acknowledgements of one alert spread over the faults' delays, so a fault lands among
    them (each scenario checks it did)."""
    province = await small_province(stack, clusters_per_commune=5, eboards=True)
    return province.of(DISTRICT)


async def _district_fleet(
    stack: Stack, fleet_factory: Callable[..., Fleet], **options: Any
) -> tuple[list[str], Fleet]:
    """The district's codes and its fleet, online (`options`: faults and the like)."""
    specs = await _district(stack)
    fleet = fleet_factory(specs, time_compression=10, **options)
    await fleet.start()
    return [s.code for s in specs], fleet


async def _alert(stack: Stack, clip: Path) -> dict[str, Any]:
    """A district-wide emergency with the clip."""
    media = await upload(stack, clip)
    return await send(stack, areas=[DISTRICT], media_sha256=media["sha256"])


async def test_the_broker_restarted_mid_alert_loses_nothing(
    settings_factory: Callable[..., Settings], own_broker: Broker, tone_mp3: Path
) -> None:
    settings = settings_factory(mqtt_port=own_broker.port)
    port = int(settings.public_base_url.rsplit(":", 1)[1])
    stack = await start_stack(create_app(settings), settings, port)
    fleet = Fleet([], host=own_broker.host, port=own_broker.port)
    try:
        specs = await _district(stack)
        # Acknowledgements trickle in over two seconds: the restart lands among them.
        fleet = Fleet(
            specs,
            host=own_broker.host,
            port=own_broker.port,
            faults=Faults(latency_s=2.0),
            time_compression=10,
            seed=21,
        )
        await fleet.start()
        sent = await _alert(stack, tone_mp3)
        midway = await stack.wait_broadcast(sent["id"], lambda b: b["confirmed"] > 0)
        await _retain(own_broker, PROBE_TOPIC, b"still here")
        own_broker.restart()  # connections and in-flight messages are gone
        assert midway["confirmed"] < len(specs), "the restart came mid-alert"
        # The broker's store kept retained state (mosquitto.conf: persistence).
        assert await _retained(own_broker, PROBE_TOPIC) == b"still here"
        await stack.wait_broadcast(
            sent["id"], lambda b: counts(b, "played") == len(specs), timeout=60
        )
        await assert_nothing_lost(
            stack.runtime.engine,
            sent["id"],
            fleet,
            [s.code for s in specs],
            until=datetime.now(UTC),
        )
    finally:
        await fleet.close()
        await stack.stop()


@pytest.fixture
async def own_postgres(database_url: str) -> AsyncIterator[PrivatePostgres]:
    """A PostgreSQL server of the test's own, migrated: one it may crash. Once, on the
    PostgreSQL leg (the shared server is the suite's; SQLite has no server)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the database server restarted: PostgreSQL's leg, on a server of its own")
    try:
        server = PrivatePostgres()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    await asyncio.to_thread(server.start)
    try:
        engine = create_engine(server.url)
        await upgrade(engine)
        await engine.dispose()
        yield server
    finally:
        await asyncio.to_thread(server.close)


async def test_the_database_server_crashed_and_restarted_mid_alert_loses_nothing(
    settings_factory: Callable[..., Settings],
    fleet_factory: Callable[..., Fleet],
    tone_mp3: Path,
    own_postgres: PrivatePostgres,
) -> None:
    settings = settings_factory(database_url=own_postgres.url)
    port = int(settings.public_base_url.rsplit(":", 1)[1])
    stack = await start_stack(create_app(settings), settings, port)
    try:
        codes, fleet = await _district_fleet(stack, fleet_factory, faults=Faults(latency_s=2.0))
        sent = await _alert(stack, tone_mp3)
        midway = await stack.wait_broadcast(sent["id"], lambda b: b["confirmed"] > 0)
        # Every server process killed at once, then the log replayed: each connection
        # the control plane held is dead, and for a moment nothing answers.
        await asyncio.to_thread(own_postgres.restart)
        assert midway["confirmed"] < len(codes), "the crash came mid-alert"
        await stack.wait_broadcast(
            sent["id"], lambda b: counts(b, "played") == len(codes), timeout=60
        )
        await assert_nothing_lost(
            stack.runtime.engine, sent["id"], fleet, codes, until=datetime.now(UTC)
        )
    finally:
        await stack.stop()


async def test_duplicated_and_reordered_acknowledgements_change_nothing(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    codes, fleet = await _district_fleet(
        stack,
        fleet_factory,
        # Every ack twice, each copy up to 1.5 s late: copies and stages cross.
        faults=Faults(duplicate_acks=1.0, latency_s=1.5),
    )
    sent = await _alert(stack, tone_mp3)
    await stack.wait_broadcast(sent["id"], lambda b: counts(b, "played") == len(codes), timeout=60)
    assert stack.runtime.jobs is not None
    await stack.runtime.jobs.wait_ticks(3)  # the late copies have landed by now
    await assert_nothing_lost(
        stack.runtime.engine, sent["id"], fleet, codes, until=datetime.now(UTC)
    )
    _, deliveries, events = await records(stack.runtime.engine, sent["id"])
    assert {d.state for d in deliveries.values()} == {"played"}
    ingest = (await stack.client.get("/api/v1/ingest")).json()["counts"]
    assert ingest["acks_received"] >= 2 * 3 * len(codes), "each of three stages came twice"
    # Out of order: some cluster's "played" or "playing" reached us before its "received"
    # copy, and the later stage stood (nothing leaves an ending, nothing goes back).
    assert all(events[c][-1].state == "played" for c in codes)


async def test_skewed_clocks_play_once_and_the_record_keeps_our_time(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    codes, fleet = await _district_fleet(stack, fleet_factory)
    ahead, behind = codes[0::3], codes[1::3]
    for code in ahead:
        fleet.devices[code].condition.clock_skew_s = 600.0
    for code in behind:
        fleet.devices[code].condition.clock_skew_s = -600.0
    lost = codes[2]  # so far ahead that the alert has expired by its clock
    fleet.devices[lost].condition.clock_skew_s = 2 * 3600.0
    sent = await _alert(stack, tone_mp3)
    fine = [c for c in codes if c != lost]
    await stack.wait_broadcast(
        sent["id"],
        lambda b: counts(b, "played") == len(fine) and counts(b, "rejected") == 1,
        timeout=60,
    )
    await assert_nothing_lost(
        stack.runtime.engine, sent["id"], fleet, fine, until=datetime.now(UTC)
    )
    _, deliveries, events = await records(stack.runtime.engine, sent["id"])
    refused = deliveries[lost]
    assert (refused.state, refused.reason) == ("rejected", "expired")
    # Our clock times the delivery; the cluster's own is kept beside it for the record.
    for code, skew in [(ahead[0], 600.0), (behind[0], -600.0)]:
        played = next(e for e in events[code] if e.state == "played")
        assert played.device_at is not None
        assert abs((played.device_at - played.at).total_seconds() - skew) < 30


async def test_a_third_of_the_links_flapping_through_the_alert_lose_nothing(
    stack: Stack, fleet_factory: Callable[..., Fleet], tone_mp3: Path
) -> None:
    codes, fleet = await _district_fleet(
        stack,
        fleet_factory,
        faults=Faults(latency_s=0.5),
    )
    flapping, _ = fleet.split(0.3, seed=6)
    sent = await _alert(stack, tone_mp3)
    for _ in range(3):  # down and up again, three times, while the alert goes out
        for code in flapping:
            fleet.devices[code].drop_link()
        await asyncio.gather(*(fleet.devices[c].online.wait() for c in flapping))
    await stack.wait_broadcast(sent["id"], lambda b: counts(b, "played") == len(codes), timeout=90)
    await assert_nothing_lost(
        stack.runtime.engine, sent["id"], fleet, codes, until=datetime.now(UTC)
    )
    ingest = (await stack.client.get("/api/v1/ingest")).json()["counts"]
    assert ingest["status_received"] >= len(codes) + 3 * len(flapping), "every drop was seen"


async def test_acks_read_out_of_order_by_two_replicas_keep_the_earliest_proof(
    stack: Stack, tone_mp3: Path
) -> None:
    """Replicas apply in lock order, each stamping its own receipt time: the record keeps,
    for each stage, the earliest time an acknowledgement proved it."""
    specs = await _district(stack)
    cluster = next(s.code for s in specs if s.kind == "speaker_cluster")
    media = await upload(stack, tone_mp3)
    sent = await send(stack, clusters=[cluster], media_sha256=media["sha256"])
    async with session_scope(stack.runtime.sessions) as session:
        broadcast = await session.get(Broadcast, sent["id"])
        assert broadcast is not None
        command = broadcast.command_id
    t0 = datetime.now(UTC)

    def arrived(stage: AckStage, after_s: float) -> IncomingAck:
        ack = Ack(cmd=command, broadcast=sent["id"], cluster=cluster, stage=stage, at=t0)
        return IncomingAck(
            topic=protocol.ack_topic(cluster),
            topic_cluster=cluster,
            payload=ack.to_json(),
            received_at=t0 + timedelta(seconds=after_s),
        )

    # Read in this order; arrived at these times (one replica held "received" longer).
    for stage, after_s in [
        (AckStage.PLAYING, 1.0),
        (AckStage.RECEIVED, 0.5),
        (AckStage.PLAYED, 3.0),
        (AckStage.PLAYING, 5.0),  # a late copy changes nothing
    ]:
        async with stack.runtime.writing() as session:
            await apply_acks(
                session, [arrived(stage, after_s)], settings=stack.settings, stats=IngestStats()
            )
    _, deliveries, events = await records(stack.runtime.engine, sent["id"])
    delivery = deliveries[cluster]
    assert delivery.state == "played"
    assert delivery.delivered_at == t0 + timedelta(seconds=0.5)
    assert delivery.playing_at == t0 + timedelta(seconds=1.0)
    assert delivery.played_at == t0 + timedelta(seconds=3.0)
    assert [e.state for e in events[cluster] if e.state != "sent"] == ["playing", "played"]
