"""`python -m bench.ackpath`: the acknowledgement path alone, its CPU per 1,000 acks.

A province's clusters answer one emergency as the simulator does (`received` and
`playing` together, `played` later), fed as raw MQTT PUBLISH packets through the control
plane's own receive path (the lean client's reader, the topic router, the ack consumer,
the state machine) into a real, migrated database. No broker, no fleet, no HTTP: what the
full `broadcast loadtest` measures among everything else sharing the machine's cores,
here alone, so a change to the path shows in tenths of what it costs.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import struct
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from broadcast import repository as broadcast_repository
from broadcast.ingest import IncomingAck, apply_acks
from broadcast.models import Broadcast, Delivery
from broadcast.states import BroadcastStatus, DeliveryState
from core.batching import BatchConsumer
from core.clock import SystemClock
from core.database import create_engine, create_session_maker
from core.ingest_stats import IngestStats
from core.migrate import upgrade
from core.models import import_all_models
from core.mqtt import MqttService
from core.settings import Settings
from core.writes import writing_for
from devices.models import Cluster
from devstack.seed import seed_demo
from media.models import MediaFile
from wire import mqtt_lite, protocol
from wire.protocol import Ack, AckStage

PROVINCE_PATH = "/70/"
SHA = "ab" * 32
READ_EVERY_S = 0.002


@dataclass(frozen=True)
class AckBenchResult:
    clusters: int
    acks: int
    cpu_s: float
    wall_s: float
    applied: int  # acknowledgements that moved a delivery
    played: int  # deliveries PLAYED at the end: every cluster's, or something was lost

    @property
    def cpu_ms_per_1000(self) -> float:
        return self.cpu_s * 1e6 / self.acks


def _publish_packet(topic: str, payload: bytes, pid: int) -> bytes:
    body = mqtt_lite._str(topic) + struct.pack("!H", pid) + mqtt_lite._props(b"") + payload
    return mqtt_lite._packet(mqtt_lite.PUBLISH, 0x02, body)


async def _seed(url: str, clusters: int) -> tuple[str, str, list[str]]:
    """The old province with `clusters` clusters, a clip, one broadcast sent to all."""
    import_all_models()
    engine = create_engine(url)
    await upgrade(engine)
    writing = writing_for(create_session_maker(engine))
    now = datetime.now(UTC)
    async with writing() as session:
        await seed_demo(
            session, SystemClock(), as_of=date(2025, 6, 30), clusters=clusters, eboards=False
        )
    broadcast_id, command_id = str(uuid.uuid4()), str(uuid.uuid4())
    async with writing() as session:
        await session.execute(
            insert(MediaFile).values(
                sha256=SHA,
                size=40_000,
                format="mp3",
                content_type="audio/mpeg",
                duration_ms=5000,
                created_at=now,
            )
        )
        await session.execute(
            insert(Broadcast).values(
                id=broadcast_id,
                title="bench",
                cls="emergency",
                level="province",
                status=BroadcastStatus.ACTIVE.value,
                media_sha256=SHA,
                target_areas=["70"],
                target_clusters=[],
                command_id=command_id,
                created_at=now,
                expires_at=now + timedelta(hours=1),
            )
        )
        await broadcast_repository.insert_queued_deliveries(
            session,
            broadcast_id=broadcast_id,
            paths=[PROVINCE_PATH],
            cluster_ids=[],
            next_attempt_at=now + timedelta(seconds=30),
        )
        await session.execute(
            update(Delivery)
            .where(Delivery.broadcast_id == broadcast_id)
            .values(state=DeliveryState.SENT.value, sent_at=now)
        )
    async with writing() as session:
        codes = list(
            (
                await session.execute(
                    select(Cluster.code)
                    .join(Delivery, Delivery.cluster_id == Cluster.id)
                    .where(Delivery.broadcast_id == broadcast_id)
                    .order_by(Cluster.code)
                )
            ).scalars()
        )
    await engine.dispose()
    return broadcast_id, command_id, codes


def _wave(
    codes: list[str], broadcast_id: str, command_id: str, stages: list[AckStage], pid0: int
) -> list[bytes]:
    """One PUBLISH per cluster and stage, as a reader would get them from the socket."""
    out = []
    pid = pid0
    for code in codes:
        for stage in stages:
            payload = Ack(
                cmd=command_id,
                broadcast=broadcast_id,
                cluster=code,
                stage=stage,
                at=datetime.now(UTC),
            ).to_json()
            pid = pid % 65535 + 1
            out.append(_publish_packet(protocol.ack_topic(code), payload, pid))
    return out


class _NullWriter:
    def write(self, data: bytes) -> None:
        pass

    def close(self) -> None:
        pass


async def _feed(client: mqtt_lite.LiteClient, packets: list[bytes], spread_s: float) -> None:
    """The packets through the client's reader as a socket would deliver them: spread
    evenly over `spread_s` (the fleet answering over half a second), a read every
    `READ_EVERY_S`; all in one go with 0."""
    reader = asyncio.StreamReader(limit=2**20)
    client._reader = reader
    client._writer = _NullWriter()  # type: ignore[assignment]
    client.closed.clear()
    task = asyncio.create_task(client._read_loop())
    reads = max(1, int(spread_s / READ_EVERY_S))
    per_read = -(-len(packets) // reads)
    for start in range(0, len(packets), per_read):
        reader.feed_data(b"".join(packets[start : start + per_read]))
        await asyncio.sleep(READ_EVERY_S if spread_s else 0)
    reader.feed_eof()
    await task


async def run(
    *,
    clusters: int,
    database_url: str | None,
    spread_s: float = 0.5,
    window_s: float | None = None,
    profile: Path | None = None,
) -> AckBenchResult:
    with tempfile.TemporaryDirectory() as tmp:
        url = database_url or f"sqlite+aiosqlite:///{tmp}/acks.db"
        broadcast_id, command_id, codes = await _seed(url, clusters)
        settings = Settings(environment="test", database_url=url, media_dir=Path(tmp) / "media")
        if window_s is not None:
            settings = settings.model_copy(update={"ack_batch_window_s": window_s})
        engine = create_engine(url)
        writing = writing_for(create_session_maker(engine))
        stats = IngestStats()
        clock = SystemClock()

        async def handle(batch: list[IncomingAck]) -> None:  # app/inbound.py's, as it is
            async with writing() as session:
                await apply_acks(session, batch, settings=settings, stats=stats)

        acks = BatchConsumer(
            "acks", handle, max_batch=settings.ack_batch_max, window_s=settings.ack_batch_window_s
        )

        def on_ack(topic: str, payload: bytes) -> None:  # app/inbound.py's route
            code = protocol.cluster_code_from_topic(topic)
            acks.submit(IncomingAck(topic, code or "", payload, clock.now()))

        service = MqttService(settings, {protocol.ACK_FILTER: on_ack})
        client = mqtt_lite.LiteClient("bench", service._dispatch)
        acks.start()
        first = _wave(codes, broadcast_id, command_id, [AckStage.RECEIVED, AckStage.PLAYING], 0)
        second = _wave(codes, broadcast_id, command_id, [AckStage.PLAYED], 0)
        profiler = cProfile.Profile(time.thread_time) if profile else None
        cpu0, wall0 = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for wave in (first, second):
            await _feed(client, wave, spread_s)
            await acks.drained()
        if profiler:
            profiler.disable()
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        await acks.stop()
        counts: dict[str, Any] = dict(stats.counts)
        async with engine.connect() as session:
            states = (
                await session.execute(
                    select(Delivery.state).where(Delivery.broadcast_id == broadcast_id)
                )
            ).scalars()
            played = sum(1 for s in states if s == DeliveryState.PLAYED.value)
        await engine.dispose()
        if profiler and profile:
            profiler.dump_stats(profile)
            pstats.Stats(str(profile)).sort_stats("cumulative").print_stats(40)
        sent = len(first) + len(second)
        return AckBenchResult(len(codes), sent, cpu, wall, counts.get("ack_applied", 0), played)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--clusters", type=int, default=1639)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--profile", type=Path, default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--spread", type=float, default=0.5)
    parser.add_argument("--window", type=float, default=None)
    args = parser.parse_args()
    for _ in range(args.runs):
        result = asyncio.run(
            run(
                clusters=args.clusters,
                database_url=args.database_url,
                spread_s=args.spread,
                window_s=args.window,
                profile=args.profile,
            )
        )
        print(
            f"{result.clusters} clusters, {result.acks} acks: CPU {result.cpu_s:.3f} s, "
            f"{result.cpu_ms_per_1000:.1f} ms per 1,000 acks (wall {result.wall_s:.3f} s); "
            f"{result.applied} applied, {result.played} of {result.clusters} played"
        )


if __name__ == "__main__":
    main()
