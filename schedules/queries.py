"""Schedules read: one by id, as the API shows it, a calendar of plays, what each cluster
of an area plays now and next, the clusters holding an old version, a schedule's firings.
The writes (create, change, the overlap check) are in schedules/service.py."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from areas import service as area_service
from areas.models import Area
from broadcast import service as broadcast_service
from broadcast.models import Broadcast, Delivery
from broadcast.states import DeliveryState
from bulletins.models import Bulletin
from core.errors import NotFound
from devices.models import Cluster
from media.models import MediaFile
from schedules import targets
from schedules.models import Schedule, ScheduleFiring
from schedules.recurrence import Recurrence, plays, to_local
from schedules.schemas import NowNext, Overlap, ScheduleRead, SlotRead, StaleSchedule
from schedules.states import ScheduleStatus
from wire.protocol import CommandClass

DEFAULT_SLOT_S = 60  # a bulletin whose length is unknown is taken to last a minute


class ScheduleNotFound(NotFound):
    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"schedule {schedule_id!r} not found", detail={"schedule": schedule_id})


def recurrence_of(schedule: Schedule) -> Recurrence:
    return Recurrence(
        starts_local=schedule.starts_local,
        timezone=schedule.timezone,
        rule=schedule.rule,
        exdates_local=tuple(datetime.fromisoformat(d) for d in schedule.exdates_local),
        ends_at=schedule.ends_at,
        plays=schedule.plays,
        gap_s=schedule.gap_s,
    )


async def play_seconds(session: AsyncSession, schedule: Schedule) -> int:
    """How long one play lasts: the relay's window or the bulletin's audio."""
    if schedule.duration_s:
        return schedule.duration_s
    bulletin = await session.get(Bulletin, schedule.bulletin_id)
    media = (
        await session.get(MediaFile, bulletin.media_sha256)
        if bulletin and bulletin.media_sha256
        else None
    )
    return max(1, math.ceil(media.duration_ms / 1000)) if media else DEFAULT_SLOT_S


async def clusters_of(session: AsyncSession, schedule: Schedule) -> set[int]:
    _, _, targets = await broadcast_service.resolve_targets(
        session, schedule.target_areas, schedule.target_clusters
    )
    return set(targets)


async def _on_branch(
    session: AsyncSession, area: Area, schedules: Sequence[Schedule]
) -> list[Schedule]:
    """The schedules that may reach clusters in the area (in order): the rest of the
    province is left out before any is resolved exactly."""
    reach = await targets.reach_paths(session, schedules)
    return [s for s in schedules if targets.may_share([area.path], reach[s.id])]


async def get(*, session: AsyncSession, schedule_id: str) -> Schedule:
    schedule = await session.get(Schedule, schedule_id)
    if schedule is None:
        raise ScheduleNotFound(schedule_id)
    return schedule


def to_read(schedule: Schedule, overlaps: list[Overlap] | None = None) -> ScheduleRead:
    return ScheduleRead(
        id=schedule.id,
        title=schedule.title,
        bulletin_id=schedule.bulletin_id,
        cls=CommandClass(schedule.cls),
        level=schedule.level,  # type: ignore[arg-type]
        timezone=schedule.timezone,
        starts_local=schedule.starts_local,
        rule=schedule.rule,
        exdates_local=schedule.exdates_local,
        ends_at=schedule.ends_at,
        plays=schedule.plays,
        gap_s=schedule.gap_s,
        duration_s=schedule.duration_s,
        target_areas=schedule.target_areas,
        target_clusters=schedule.target_clusters,
        status=schedule.status,
        next_fire_at=schedule.next_fire_at,
        version=schedule.version,
        created_by=schedule.created_by,
        created_at=schedule.created_at,
        updated_at=schedule.updated_at,
        conflicts=overlaps or [],
    )


async def calendar(
    *, session: AsyncSession, area_code: str, start: datetime, end: datetime
) -> list[SlotRead]:
    """Every play in [start, end) of the schedules that reach clusters in the area."""
    area = await area_service.get(session=session, code=area_code)
    _, _, in_area = await broadcast_service.resolve_targets(session, [area.code], [])
    wanted = set(in_area)
    found: list[SlotRead] = []
    candidates = (
        await session.scalars(select(Schedule).where(Schedule.status != ScheduleStatus.ENDED))
    ).all()
    for schedule in await _on_branch(session, area, candidates):
        shared = wanted & await clusters_of(session, schedule)
        if not shared:
            continue
        recurrence = recurrence_of(schedule)
        length = await play_seconds(session, schedule)
        for slot, occurrence in plays(recurrence, start, end):
            found.append(
                SlotRead(
                    schedule_id=schedule.id,
                    title=schedule.title,
                    cls=CommandClass(schedule.cls),
                    starts_local=to_local(slot, recurrence.zone()),
                    occurrence_local=occurrence,
                    starts_at=slot,
                    duration_s=length,
                    clusters=len(shared),
                )
            )
    return sorted(found, key=lambda s: (s.starts_at, s.title))


async def firings(session: AsyncSession, schedule_id: str) -> Sequence[ScheduleFiring]:
    rows = await session.scalars(
        select(ScheduleFiring)
        .where(ScheduleFiring.schedule_id == schedule_id)
        .order_by(ScheduleFiring.slot_at)
    )
    return rows.all()


async def now_next(*, session: AsyncSession, area_code: str) -> list[NowNext]:
    """Every cluster of an area: what it is playing now (its open PLAYING delivery) and the
    next play its schedules hold for it."""
    area = await area_service.get(session=session, code=area_code)
    rows = (
        await session.execute(
            select(Cluster.id, Cluster.code, Cluster.online, Cluster.last_seen_at)
            .join(Area, Cluster.area_id == Area.id)
            .where(Area.path.startswith(area.path, autoescape=True))
            .order_by(Cluster.code)
        )
    ).all()
    ids = [r[0] for r in rows]
    playing: dict[int, tuple[str, str]] = {}
    if ids:
        current = await session.execute(
            select(Delivery.cluster_id, Broadcast.id, Broadcast.title)
            .join(Broadcast, Delivery.broadcast_id == Broadcast.id)
            .where(Delivery.cluster_id.in_(ids), Delivery.state == DeliveryState.PLAYING.value)
            .order_by(Delivery.playing_at)
        )
        playing = {cid: (bid, title) for cid, bid, title in current.all()}  # latest wins
    upcoming: dict[int, Schedule] = {}
    wanted = set(ids)
    active = await session.scalars(
        select(Schedule)
        .where(Schedule.status == ScheduleStatus.ACTIVE, Schedule.next_fire_at.is_not(None))
        .order_by(Schedule.next_fire_at)
    )
    for schedule in await _on_branch(session, area, active.all()):
        for cid in wanted & await clusters_of(session, schedule):
            upcoming.setdefault(cid, schedule)  # earliest first
    result = []
    for cid, code, online, last_seen in rows:
        now_playing = playing.get(cid)
        nxt = upcoming.get(cid)
        result.append(
            NowNext(
                cluster=code,
                online=online,
                last_seen_at=last_seen,
                playing_broadcast=now_playing[0] if now_playing else None,
                playing_title=now_playing[1] if now_playing else None,
                next_title=nxt.title if nxt else None,
                next_at=nxt.next_fire_at if nxt else None,
                next_local=(
                    to_local(nxt.next_fire_at, recurrence_of(nxt).zone())
                    if nxt and nxt.next_fire_at
                    else None
                ),
            )
        )
    return result


async def out_of_date(*, session: AsyncSession, area_code: str) -> list[StaleSchedule]:
    area = await area_service.get(session=session, code=area_code)
    held = Cluster.schedule_version_held
    rows = await session.scalars(
        select(Cluster)
        .join(Area, Cluster.area_id == Area.id)
        .where(
            Area.path.startswith(area.path, autoescape=True),
            Cluster.schedule_version > 0,
            held.is_(None) | (held != Cluster.schedule_version),
        )
        .order_by(Cluster.code)
    )
    return [
        StaleSchedule(
            cluster=c.code,
            online=c.online,
            last_seen_at=c.last_seen_at,
            version_pushed=c.schedule_version,
            version_held=c.schedule_version_held,
            pushed_at=c.schedule_pushed_at,
        )
        for c in rows.all()
    ]
