"""SQL for fleet health: latest telemetry, history samples, silent clusters, retention."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.database import chunked
from devices.models import Cluster
from health.models import Alarm, ClusterHealth, TelemetrySample


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


async def latest(session: AsyncSession, cluster_ids: Sequence[int]) -> dict[int, ClusterHealth]:
    found: dict[int, ClusterHealth] = {}
    for chunk in chunked(sorted(cluster_ids), 1):
        rows = await session.scalars(
            select(ClusterHealth).where(ClusterHealth.cluster_id.in_(chunk))
        )
        found.update({row.cluster_id: row for row in rows.all()})
    return found


async def write_latest(
    session: AsyncSession, *, new: list[dict[str, Any]], changed: list[dict[str, Any]]
) -> None:
    """Insert first heartbeats, rewrite the others: two statements for a whole batch."""
    table = _table(ClusterHealth)
    if new:
        await session.execute(insert(table), new)
    if changed:
        # Bound names apart from the column names, which SQLAlchemy keeps for itself.
        names = [k for k in changed[0] if k != "cluster_id"]
        await session.execute(
            update(table)
            .where(table.c.cluster_id == bindparam("p_id"))
            .values({k: bindparam(f"p_{k}") for k in names}),
            [{"p_id": row["cluster_id"], **{f"p_{k}": row[k] for k in names}} for row in changed],
        )


async def add_samples(session: AsyncSession, samples: list[dict[str, Any]]) -> None:
    if samples:
        await session.execute(insert(_table(TelemetrySample)), samples)


async def mark_silent_offline(session: AsyncSession, *, silent_since: datetime) -> list[int]:
    """Clusters still shown online that have said nothing since `silent_since`: offline,
    off since the last time they were heard. Their ids."""
    ids = list(
        (
            await session.scalars(
                select(Cluster.id).where(
                    Cluster.online.is_(True), Cluster.last_seen_at < silent_since
                )
            )
        ).all()
    )
    for chunk in chunked(ids, 1):
        await session.execute(
            update(Cluster)
            .where(Cluster.id.in_(chunk), Cluster.online.is_(True))
            .values(online=False, offline_since=Cluster.last_seen_at)
            .execution_options(synchronize_session=False)
        )
    return ids


async def forget_samples_before(session: AsyncSession, cutoff: datetime, limit: int) -> int:
    """Delete up to `limit` samples older than the retention window; how many."""
    ids = list(
        (
            await session.scalars(
                select(TelemetrySample.id).where(TelemetrySample.at < cutoff).limit(limit)
            )
        ).all()
    )
    for chunk in chunked(ids, 1):
        await session.execute(delete(TelemetrySample).where(TelemetrySample.id.in_(chunk)))
    return len(ids)


async def history(session: AsyncSession, cluster_id: int, limit: int) -> Sequence[TelemetrySample]:
    rows = await session.scalars(
        select(TelemetrySample)
        .where(TelemetrySample.cluster_id == cluster_id)
        .order_by(TelemetrySample.at.desc(), TelemetrySample.id.desc())
        .limit(limit)
    )
    return rows.all()


async def alarm_cluster_code(session: AsyncSession, alarm_id: int) -> str | None:
    """The code of the cluster an alarm is about (None: no such alarm)."""
    return await session.scalar(
        select(Cluster.code).join(Alarm, Alarm.cluster_id == Cluster.id).where(Alarm.id == alarm_id)
    )
