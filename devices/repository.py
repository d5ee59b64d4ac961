"""SQL for the cluster registry."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    Table,
    bindparam,
    false,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from areas.models import Area
from core.database import chunked
from core.paging import paged
from devices.models import Cluster


async def get_by_code(session: AsyncSession, code: str) -> Cluster | None:
    query = select(Cluster).where(Cluster.code == code)
    return (await session.execute(query)).scalar_one_or_none()


async def count_in_areas(session: AsyncSession, area_ids: Sequence[int]) -> int:
    query = select(func.count(Cluster.id)).where(Cluster.area_id.in_(list(area_ids)))
    return (await session.execute(query)).scalar_one()


async def list_page(
    session: AsyncSession,
    *,
    under: Area | None,
    kind: str | None,
    online: bool | None,
    limit: int,
    offset: int,
) -> tuple[list[tuple[Cluster, str]], int]:
    query = select(Cluster, Area.code).join(Area, Cluster.area_id == Area.id)
    if under is not None:
        query = query.where(Area.path.startswith(under.path, autoescape=True))
    if kind is not None:
        query = query.where(Cluster.kind == kind)
    if online is not None:
        query = query.where(Cluster.online == online)
    rows, total = await paged(session, query.order_by(Cluster.code), limit=limit, offset=offset)
    return [(row[0], row[1]) for row in rows], total


def _under_or_named(paths: Sequence[str], cluster_ids: Sequence[int]) -> ColumnElement[bool]:
    """Clusters in an area under any of `paths`, or one of `cluster_ids` (query joins Area)."""
    conditions = [Area.path.startswith(path, autoescape=True) for path in paths]
    if cluster_ids:
        conditions.append(Cluster.id.in_(list(cluster_ids)))
    return or_(false(), *conditions)


async def targets_in_subtrees(
    session: AsyncSession,
    paths: Sequence[str],
    cluster_ids: Sequence[int] = (),
    *,
    kind: str | None = None,
) -> Sequence[Row[int, str, int]]:
    """(cluster id, code, area id) of every cluster under any of the given area paths, and
    of the clusters given by id; only those of `kind` when given."""
    if not paths and not cluster_ids:
        return []
    query = (
        select(Cluster.id, Cluster.code, Cluster.area_id)
        .join(Area, Cluster.area_id == Area.id)
        .where(_under_or_named(paths, cluster_ids))
    )
    if kind is not None:
        query = query.where(Cluster.kind == kind)
    return (await session.execute(query)).all()


async def moving_under(session: AsyncSession, paths: Sequence[str]) -> list[tuple[int, str]]:
    """(id, code) of the clusters under these paths still moving there (`moving_from`).
    On every send, so it asks the index on `moving_from` first: outside a reorganisation
    nobody is moving and the answer costs one index probe."""
    if not paths:
        return []
    moving = (
        await session.execute(
            select(Cluster.id, Cluster.code, Area.path)
            .join(Area, Cluster.area_id == Area.id)
            .where(Cluster.moving_from.is_not(None))
        )
    ).all()
    prefixes = tuple(paths)
    return [(cid, code) for cid, code, path in moving if path.startswith(prefixes)]


def targets_source(
    paths: Sequence[str], cluster_ids: Sequence[int], *constants: ColumnElement[Any]
) -> Select[Any]:
    """SELECT (cluster id, area id, *constants) of the same clusters as
    `targets_in_subtrees`: the source of an INSERT … SELECT, so that the database writes a
    row per cluster without the rows passing through Python."""
    return (
        select(Cluster.id, Cluster.area_id, *constants)
        .join(Area, Cluster.area_id == Area.id)
        .where(_under_or_named(paths, cluster_ids))
    )


async def named_clusters(
    session: AsyncSession, codes: Sequence[str]
) -> Sequence[Row[int, str, str]]:
    """(cluster id, code, area path) of the clusters with these codes."""
    if not codes:
        return []
    query = (
        select(Cluster.id, Cluster.code, Area.path)
        .join(Area, Cluster.area_id == Area.id)
        .where(Cluster.code.in_(list(codes)))
    )
    return (await session.execute(query)).all()


async def provisioning(
    session: AsyncSession, under: Area | None
) -> list[tuple[str, str, str, str | None]]:
    """(code, kind, area path, model) of every cluster, for devices and the simulator."""
    query = select(Cluster.code, Cluster.kind, Area.path, Cluster.model).join(
        Area, Cluster.area_id == Area.id
    )
    if under is not None:
        query = query.where(Area.path.startswith(under.path, autoescape=True))
    rows = await session.execute(query.order_by(Cluster.code))
    return [(row[0], row[1], row[2], row[3]) for row in rows.all()]


async def ids_by_code(session: AsyncSession, codes: Iterable[str]) -> dict[str, int]:
    codes = list(codes)
    if not codes:
        return {}
    rows = await session.execute(select(Cluster.code, Cluster.id).where(Cluster.code.in_(codes)))
    return {row[0]: row[1] for row in rows.all()}


async def schedule_versions_held(
    session: AsyncSession, ids: Iterable[int]
) -> dict[int, int | None]:
    """What each cluster last said it holds of its pushed schedule."""
    found: dict[int, int | None] = {}
    for chunk in chunked(sorted(ids), 1):
        rows = await session.execute(
            select(Cluster.id, Cluster.schedule_version_held).where(Cluster.id.in_(chunk))
        )
        found.update({cid: held for cid, held in rows.all()})
    return found


async def mark_seen(
    session: AsyncSession,
    *,
    seen: set[int],
    seen_at: datetime | None,
    online: set[int],
    offline: dict[int, datetime],
) -> None:
    """Write a batch of link-state observations: last seen, online, off since.

    One batch is a few milliseconds wide, so every cluster seen in it gets the batch's
    latest time: one statement instead of one per heartbeat.
    """
    for chunk in chunked(sorted(seen), 1):
        await session.execute(
            update(Cluster)
            .where(Cluster.id.in_(chunk))
            .values(last_seen_at=seen_at)
            .execution_options(synchronize_session=False)
        )
    for chunk in chunked(sorted(online), 1):
        await session.execute(
            update(Cluster)
            .where(Cluster.id.in_(chunk), Cluster.online.is_(False))
            .values(online=True, offline_since=None)
            .execution_options(synchronize_session=False)
        )
    for cid, at in sorted(offline.items()):
        await session.execute(
            update(Cluster)
            .where(Cluster.id == cid)
            .values(online=False, offline_since=at)
            .execution_options(synchronize_session=False)
        )


async def set_schedule_versions_held(session: AsyncSession, held: dict[int, int]) -> None:
    """What each cluster says it holds of its pushed schedule (from heartbeats)."""
    table = Cluster.__table__
    assert isinstance(table, Table)
    await session.execute(
        table.update()
        .where(table.c.id == bindparam("_id"))
        .values(schedule_version_held=bindparam("v")),
        [{"_id": cid, "v": v} for cid, v in sorted(held.items())],
    )
