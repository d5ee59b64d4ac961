"""MQTT in: retained status (birth / Last Will) and heartbeats, applied in batches."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from core.ingest_stats import IngestStats
from devices import repository
from devices.protocol import ProtocolError, parse_heartbeat, parse_status


@dataclass(frozen=True, slots=True)
class LinkMessage:
    kind: str  # "status" | "hb"
    topic: str
    topic_cluster: str
    payload: bytes
    received_at: datetime


OnlineHook = Callable[[AsyncSession, list[int]], Awaitable[None]]


async def apply_link_batch(
    session: AsyncSession,
    batch: list[LinkMessage],
    *,
    stats: IngestStats,
    on_online: OnlineHook,
) -> None:
    """Update last seen / online / off since; tell the hook who has just come online."""
    observations: list[tuple[LinkMessage, bool | None]] = []  # None: heartbeat, no state news
    for msg in batch:
        try:
            said: bool | None
            if msg.kind == "status":
                status = parse_status(msg.payload)
                cluster, said = status.cluster, status.online
            else:
                cluster, said = parse_heartbeat(msg.payload).cluster, None
        except ProtocolError as exc:
            stats.reject(
                "malformed",
                at=msg.received_at,
                topic=msg.topic,
                reason=str(exc),
                payload=msg.payload,
            )
            continue
        if cluster != msg.topic_cluster:
            stats.reject(
                "topic_mismatch",
                at=msg.received_at,
                topic=msg.topic,
                reason=f"payload names cluster {cluster!r}",
                payload=msg.payload,
            )
            continue
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
            stats.reject(
                "unknown_device",
                at=msg.received_at,
                topic=msg.topic,
                reason=f"cluster {msg.topic_cluster!r} is not registered",
                payload=msg.payload,
            )
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
    if came_online:
        await on_online(session, came_online)
