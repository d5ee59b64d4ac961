"""Reads for the central API: plain queries, paginated, filtered by area (a subtree) and
by time (a half-open interval [since, until))."""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import and_, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from areas import service as area_service
from areas.models import Area
from broadcast.models import Broadcast, Delivery
from broadcast.states import DeliveryState
from bulletins.models import Bulletin
from central.schemas import (
    AreaEntry,
    BroadcastEntry,
    BulletinEntry,
    DeliveryTimes,
    ScheduleEntry,
    StationEntry,
    Statistics,
)
from core.errors import NotFound
from core.paging import paged
from core.settings import Settings
from devices.models import Cluster
from health.models import Alarm
from reports import airtime
from reports.airtime import Units, delivery_path, path_at
from schedules.models import Schedule


async def area_path(session: AsyncSession, code: str | None) -> str:
    """The subtree's path prefix ("/" for the whole province)."""
    if code is None:
        return "/"
    return (await area_service.get(session=session, code=code)).path


def _entry[E: BaseModel](model: type[E], row: object, **extra: Any) -> E:
    """An answer item from a row's attributes of the same names, plus `extra`."""
    fields = {name: getattr(row, name) for name in model.model_fields if name not in extra}
    return model(**fields, **extra)


async def areas(
    session: AsyncSession, path: str, level: str | None, limit: int, offset: int
) -> tuple[list[AreaEntry], int]:
    parent = aliased(Area)
    query = (
        select(Area.code, Area.name, Area.level, parent.code)
        .outerjoin(parent, Area.parent_id == parent.id)
        .where(Area.path.startswith(path, autoescape=True))
        .order_by(Area.path)
    )
    if level:
        query = query.where(Area.level == level)
    rows, total = await paged(session, query, limit=limit, offset=offset)
    return [AreaEntry(code=c, name=n, level=lv, parent_code=p) for c, n, lv, p in rows], total


async def stations(
    session: AsyncSession,
    path: str,
    kind: str | None,
    online: bool | None,
    limit: int,
    offset: int,
) -> tuple[list[StationEntry], int]:
    query = (
        select(Cluster, Area.code)
        .join(Area, Cluster.area_id == Area.id)
        .where(Area.path.startswith(path, autoescape=True))
        .order_by(Cluster.code)
    )
    if kind:
        query = query.where(Cluster.kind == kind)
    if online is not None:
        query = query.where(Cluster.online.is_(online))
    rows, total = await paged(session, query, limit=limit, offset=offset)
    return [_entry(StationEntry, c, area_code=code) for c, code in rows], total


async def bulletins(
    session: AsyncSession,
    path: str,
    since: datetime | None,
    until: datetime | None,
    cls: str | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[BulletinEntry], int]:
    """Bulletins written in the area's subtree, changed in [since, until)."""
    query = (
        select(Bulletin, Area.code)
        .join(Area, Bulletin.area_id == Area.id)
        .where(Area.path.startswith(path, autoescape=True))
        .order_by(Bulletin.updated_at.desc(), Bulletin.id)
    )
    if since:
        query = query.where(Bulletin.updated_at >= since)
    if until:
        query = query.where(Bulletin.updated_at < until)
    if cls:
        query = query.where(Bulletin.cls == cls)
    if status:
        query = query.where(Bulletin.status == status)
    rows, total = await paged(session, query, limit=limit, offset=offset)
    return [_entry(BulletinEntry, b, area_code=code) for b, code in rows], total


async def schedules(
    session: AsyncSession, path: str, status: str | None, limit: int, offset: int
) -> tuple[list[ScheduleEntry], int]:
    """Schedules that reach into the area: a target area above, in or below it, or a
    target cluster in it. A province holds hundreds of schedules: filtered here."""
    query = select(Schedule).order_by(Schedule.created_at, Schedule.id)
    if status:
        query = query.where(Schedule.status == status)
    found = list((await session.scalars(query)).all())
    if path != "/":
        paths = dict((await session.execute(select(Area.code, Area.path))).tuples().all())
        in_area = set(
            (
                await session.scalars(
                    select(Cluster.code)
                    .join(Area, Cluster.area_id == Area.id)
                    .where(Area.path.startswith(path, autoescape=True))
                )
            ).all()
        )
        found = [
            s
            for s in found
            if any(
                paths.get(a, "").startswith(path) or path.startswith(paths.get(a, "~"))
                for a in s.target_areas
            )
            or in_area.intersection(s.target_clusters)
        ]
    page = found[offset : offset + limit]
    return [_entry(ScheduleEntry, s) for s in page], len(found)


def delivery_times(requested: datetime, confirmed: Sequence[datetime], total: int) -> DeliveryTimes:
    """Time until 50, 90 and 100% of `total` clusters had confirmed."""
    latencies = sorted(max(0.0, (c - requested).total_seconds()) for c in confirmed)

    def to(share: float) -> float | None:
        needed = max(1, math.ceil(share * total))
        return round(latencies[needed - 1], 3) if total and len(latencies) >= needed else None

    return DeliveryTimes(to_50=to(0.5), to_90=to(0.9), to_100=to(1.0))


def _in_area(path: str, units: Units) -> Any:
    """A broadcast with at least one delivery counted in the subtree."""
    return exists(
        select(Delivery.id).where(
            and_(
                Delivery.broadcast_id == Broadcast.id,
                delivery_path(units).startswith(path, autoescape=True),
            )
        )
    )


async def broadcasts(
    session: AsyncSession,
    path: str,
    since: datetime | None,
    until: datetime | None,
    cls: str | None,
    limit: int,
    offset: int,
    units: Units = Units.THEN,
) -> tuple[list[BroadcastEntry], int]:
    """The broadcast log: what was sent, when, to how many clusters, with what result."""
    query = select(Broadcast).order_by(Broadcast.created_at.desc(), Broadcast.id)
    if path != "/":
        query = query.where(_in_area(path, units))
    if since:
        query = query.where(Broadcast.created_at >= since)
    if until:
        query = query.where(Broadcast.created_at < until)
    if cls:
        query = query.where(Broadcast.cls == cls)
    rows, total = await paged(session, query, limit=limit, offset=offset)
    found = [b for (b,) in rows]
    outcomes = await _outcomes(session, [b.id for b in found], path, units)
    return [
        BroadcastEntry(
            id=b.id,
            title=b.title,
            cls=b.cls,
            level=b.level,
            drill=b.drill,
            status=b.status,
            created_at=b.created_at,
            expires_at=b.expires_at,
            target_areas=b.target_areas,
            **_summary(b, outcomes.get(b.id, [])),
        )
        for b in found
    ], total


async def _outcomes(
    session: AsyncSession, broadcast_ids: list[str], path: str, units: Units
) -> dict[str, list[tuple[str, datetime | None]]]:
    """(state, delivered_at) of each delivery of the broadcasts, in the subtree."""
    found: dict[str, list[tuple[str, datetime | None]]] = defaultdict(list)
    if not broadcast_ids:
        return found
    rows = await session.execute(
        select(Delivery.broadcast_id, Delivery.state, Delivery.delivered_at)
        .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
        .where(
            Delivery.broadcast_id.in_(broadcast_ids),
            delivery_path(units).startswith(path, autoescape=True),
        )
    )
    for broadcast_id, state, delivered_at in rows:
        found[broadcast_id].append((state, delivered_at))
    return found


def _summary(broadcast: Broadcast, outcomes: list[tuple[str, datetime | None]]) -> dict[str, Any]:
    confirmed = [d for _, d in outcomes if d is not None]
    return {
        "clusters": len(outcomes),
        "confirmed": len(confirmed),
        "played": sum(1 for s, _ in outcomes if s == DeliveryState.PLAYED),
        "failed": sum(
            1 for s, _ in outcomes if s in (DeliveryState.FAILED, DeliveryState.REJECTED)
        ),
        "times": delivery_times(broadcast.created_at, confirmed, len(outcomes)),
    }


async def statistics_for(
    session: AsyncSession,
    settings: Settings,
    code: str,
    since: datetime,
    until: datetime,
    own: airtime.AreaAirtime | None = None,
    units: Units = Units.THEN,
) -> Statistics:
    """`own`: the area's airtime row when the caller has it already (a parent's
    `airtime.by_area` gives every child's), so it is not counted again. Alarms count
    where their cluster is today under either `units` (the register keeps no history of
    a cluster's area; its moves are in the audit log)."""
    path = await area_path(session, code)
    if own is None:
        [own, *_] = await airtime.by_area(
            session=session,
            settings=settings,
            area_code=code,
            since=since,
            until=until,
            units=units,
        )
    sent = (
        await session.scalars(
            select(Broadcast).where(
                _in_area(path, units), Broadcast.created_at >= since, Broadcast.created_at < until
            )
        )
    ).all()
    emergencies = [b for b in sent if b.cls == "emergency"]
    outcomes = await _outcomes(session, [b.id for b in emergencies], path, units)
    times = [_summary(b, outcomes.get(b.id, []))["times"] for b in emergencies]
    topics = Counter(await _bulletin_topics(session, path, since, until, units))
    alarm_rows = (
        await session.execute(
            select(Alarm.raised_at, Alarm.acknowledged_at, Alarm.cleared_at)
            .join(Cluster, Alarm.cluster_id == Cluster.id)
            .join(Area, Cluster.area_id == Area.id)
            .where(
                Area.path.startswith(path, autoescape=True),
                Alarm.raised_at >= since,
                Alarm.raised_at < until,
            )
        )
    ).all()

    def median(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return round(statistics.median(known), 3) if known else None

    return Statistics(
        area_code=code,
        since=since,
        until=until,
        broadcasts=len(sent),
        by_class=dict(Counter(b.cls for b in sent)),
        drills=sum(1 for b in sent if b.drill),
        bulletins_by_topic=dict(topics),
        plays=own.plays,
        airtime_s=own.airtime_s,
        clusters=own.clusters,
        working_share=own.working_share,
        emergencies_timed=len(times),
        emergency_median_to_50_s=median([t.to_50 for t in times]),
        emergency_median_to_90_s=median([t.to_90 for t in times]),
        emergency_median_to_100_s=median([t.to_100 for t in times]),
        alarms_raised=len(alarm_rows),
        alarms_acknowledged=sum(1 for _, ack, _ in alarm_rows if ack is not None),
        alarms_cleared=sum(1 for *_, cleared in alarm_rows if cleared is not None),
    )


async def _bulletin_topics(
    session: AsyncSession, path: str, since: datetime, until: datetime, units: Units
) -> list[str]:
    """The topic of each bulletin written in the period for an area counted in the
    subtree: where its area stood then, or (today) where its area or, dissolved, its
    successors stand now."""
    written = (Bulletin.created_at >= since, Bulletin.created_at < until)
    if units is Units.THEN:
        counted = path_at(Bulletin.area_id, Bulletin.created_at)
        query = select(Bulletin.topic).where(counted.startswith(path, autoescape=True), *written)
        return list((await session.scalars(query)).all())
    now_under = await area_service.paths_today(session)
    rows = await session.execute(select(Bulletin.area_id, Bulletin.topic).where(*written))
    return [
        topic
        for area_id, topic in rows
        if any(p.startswith(path) for p in now_under.get(area_id, ()))
    ]


async def root_code(session: AsyncSession) -> str:
    code = await session.scalar(select(Area.code).where(Area.parent_id.is_(None)))
    if code is None:
        raise NotFound("the area tree is empty: import the province first")
    return code
