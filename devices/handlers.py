"""MQTT in: retained status (birth / Last Will) and heartbeats, applied in batches."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from core.ingest_stats import IngestStats
from core.settings import Settings
from devices import repository
from devices.inbound import Inbound, accept
from health import service as health_service
from wire.protocol import Heartbeat, parse_heartbeat, parse_status


@dataclass(frozen=True, slots=True)
class LinkMessage(Inbound):
    kind: str = "hb"  # "status" (birth / Last Will) or "hb" (heartbeat)


OnlineHook = Callable[[AsyncSession, list[int]], Awaitable[None]]


async def apply_link_batch(
    session: AsyncSession,
    batch: list[LinkMessage],
    *,
    stats: IngestStats,
    settings: Settings,
    on_online: OnlineHook,
) -> None:
    """Update last seen / online / off since and the clusters' telemetry; tell the hook
    who has just come online."""
    observations: list[tuple[LinkMessage, bool | None]] = []  # None: heartbeat, no state news
    versions: dict[str, int] = {}  # cluster code -> schedule version it holds
    heartbeats: list[tuple[LinkMessage, Heartbeat]] = []
    for msg in batch:
        said: bool | None = None
        if msg.kind == "status":
            status = accept(msg, parse_status, stats)
            if status is None:
                continue
            said = status.online
        else:
            heartbeat = accept(msg, parse_heartbeat, stats)
            if heartbeat is None:
                continue
            if heartbeat.schedule_version is not None:
                versions[msg.topic_cluster] = heartbeat.schedule_version
            heartbeats.append((msg, heartbeat))
        observations.append((msg, said))
    if not observations:
        return
    ids = await repository.ids_by_code(session, {m.topic_cluster for m, _ in observations})
    seen: set[int] = set()
    seen_at: datetime | None = None
    online: set[int] = set()
    offline: dict[int, datetime] = {}
    came_online: list[int] = []
    for msg, is_online in observations:
        cid = ids.get(msg.topic_cluster)
        if cid is None:
            msg.refuse(stats, "unknown_device", f"cluster {msg.topic_cluster!r} is not registered")
            continue
        stats.count(f"{msg.kind}_received")
        if is_online is False:
            offline[cid] = msg.received_at
            online.discard(cid)
            continue
        seen.add(cid)
        seen_at = max(seen_at or msg.received_at, msg.received_at)
        online.add(cid)
        offline.pop(cid, None)
        if is_online:
            came_online.append(cid)
    await repository.mark_seen(session, seen=seen, seen_at=seen_at, online=online, offline=offline)
    held = {ids[code]: v for code, v in versions.items() if code in ids}
    if held:
        # Every heartbeat repeats the version; only a change is written (a row rewritten
        # per heartbeat halved PostgreSQL's ingest rate).
        before = await repository.schedule_versions_held(session, held)
        held = {cid: v for cid, v in held.items() if before.get(cid) != v}
    if held:
        await repository.set_schedule_versions_held(session, held)
    telemetry = [
        health_service.Observed(ids[msg.topic_cluster], hb, msg.received_at)
        for msg, hb in heartbeats
        if msg.topic_cluster in ids
    ]
    await health_service.record_heartbeats(session, telemetry, settings=settings)
    if came_online:
        await on_online(session, came_online)
