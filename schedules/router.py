from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta
from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, Query, status
from sqlalchemy import select

from core.context import Context
from core.paging import paged
from core.policy import Action
from core.schemas import Day, Limit, Offset, Page
from devices.models import Cluster
from schedules import queries, service
from schedules.models import LocalPlay, Schedule
from schedules.recurrence import to_utc, zone
from schedules.schemas import (
    FiringRead,
    LocalPlayRead,
    NowNext,
    Overlap,
    ScheduleCreate,
    ScheduleRead,
    ScheduleUpdate,
    SlotRead,
    StaleSchedule,
)
from web.deps import ActorDep, SessionDep, get_runtime
from web.guard import allow
from web.targets import From, Resolver, stored


class Scheduling(Context, Protocol):
    schedules_changed: asyncio.Event  # set: the clusters' stored schedules follow at once


SchedulingDep = Annotated[Scheduling, Depends(get_runtime)]

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"])
# How the guard finds what a schedule in the path touches (registered in app/main.py).
TARGETS: dict[From, Resolver] = {From.SCHEDULE: stored(Schedule, "schedule_id")}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model_by_alias=True,
    dependencies=[allow(Action.SCHEDULE, From.BODY_TARGETS)],
)
async def create_schedule(
    data: ScheduleCreate, runtime: SchedulingDep, actor: ActorDep
) -> ScheduleRead:
    """A one-off or recurring play of an approved bulletin. Overlaps with other schedules
    on the same clusters are refused (409, listed) unless `accept_conflicts`."""
    async with runtime.writing() as session:
        schedule, overlaps = await service.create(
            session=session, clock=runtime.clock, settings=runtime.settings, actor=actor, data=data
        )
        read = queries.to_read(schedule, overlaps)
    runtime.schedules_changed.set()  # the clusters' stored schedules follow at the next tick
    return read


@router.post(
    "/check", response_model_by_alias=True, dependencies=[allow(Action.SCHEDULE, From.BODY_TARGETS)]
)
async def check_schedule(
    data: ScheduleCreate, runtime: SchedulingDep, actor: ActorDep
) -> list[Overlap]:
    """The overlaps a schedule would have, without saving it (written, then rolled back:
    a writer all the same, so in the write scope)."""
    async with runtime.writing() as session:
        try:
            _, overlaps = await service.create(
                session=session,
                clock=runtime.clock,
                settings=runtime.settings,
                actor=actor,
                data=data.model_copy(update={"accept_conflicts": True}),
            )
            return overlaps
        finally:
            await session.rollback()


@router.get(
    "/calendar", response_model_by_alias=True, dependencies=[allow(Action.READ, From.QUERY_AREA)]
)
async def calendar(
    session: SessionDep,
    runtime: SchedulingDep,
    area: str,
    day: Annotated[Day | None, Query(description="first local day; default today")] = None,
    days: Annotated[int, Query(ge=1, le=31)] = 1,
) -> list[SlotRead]:
    """Every play for the clusters of an area over a day or a week, in local time."""
    tz = zone(runtime.settings.default_timezone)
    first = day or runtime.clock.now().astimezone(tz).date()
    start = to_utc(datetime.combine(first, time()), tz)
    end = to_utc(datetime.combine(first + timedelta(days=days), time()), tz)
    return await queries.calendar(session=session, area_code=area, start=start, end=end)


@router.get("/now-next", dependencies=[allow(Action.READ, From.QUERY_AREA)])
async def now_and_next(session: SessionDep, area: str) -> list[NowNext]:
    """Every cluster of an area: online, playing now, and the next scheduled play."""
    return await queries.now_next(session=session, area_code=area)


@router.get("/out-of-date", dependencies=[allow(Action.READ, From.QUERY_AREA)])
async def out_of_date(session: SessionDep, area: str) -> list[StaleSchedule]:
    """Clusters of an area that do not confirm the latest schedule pushed to them (they
    would play an old schedule if their link dropped now)."""
    return await queries.out_of_date(session=session, area_code=area)


@router.get("", response_model_by_alias=True, dependencies=[allow(Action.READ, From.PROVINCE)])
async def list_schedules(
    session: SessionDep, status: str | None = None, limit: Limit = 50, offset: Offset = 0
) -> Page[ScheduleRead]:
    query = select(Schedule)
    if status:
        query = query.where(Schedule.status == status)
    rows, total = await paged(
        session, query.order_by(Schedule.created_at, Schedule.id), limit=limit, offset=offset
    )
    return Page(
        items=[queries.to_read(s) for (s,) in rows], total=total, limit=limit, offset=offset
    )


@router.get(
    "/{schedule_id}", response_model_by_alias=True, dependencies=[allow(Action.READ, From.SCHEDULE)]
)
async def read_schedule(schedule_id: str, session: SessionDep) -> ScheduleRead:
    return queries.to_read(await queries.get(session=session, schedule_id=schedule_id))


@router.patch(
    "/{schedule_id}",
    response_model_by_alias=True,
    dependencies=[allow(Action.SCHEDULE, From.SCHEDULE, From.BODY_TARGETS)],
)
async def update_schedule(
    schedule_id: str, data: ScheduleUpdate, runtime: SchedulingDep, actor: ActorDep
) -> ScheduleRead:
    async with runtime.writing() as session:
        schedule, overlaps = await service.update(
            session=session,
            clock=runtime.clock,
            settings=runtime.settings,
            schedule_id=schedule_id,
            data=data,
            actor=actor,
        )
        read = queries.to_read(schedule, overlaps)
    runtime.schedules_changed.set()
    return read


@router.get("/{schedule_id}/firings", dependencies=[allow(Action.READ, From.SCHEDULE)])
async def schedule_firings(schedule_id: str, session: SessionDep) -> list[FiringRead]:
    """Every slot: played on time, late, missed (the scheduler was down) or skipped."""
    await queries.get(session=session, schedule_id=schedule_id)
    return [
        FiringRead(
            slot_at=f.slot_at,
            fired_at=f.fired_at,
            outcome=f.outcome,
            reason=f.reason,
            broadcast_id=f.broadcast_id,
        )
        for f in await queries.firings(session, schedule_id)
    ]


@router.get("/{schedule_id}/local-plays", dependencies=[allow(Action.READ, From.SCHEDULE)])
async def schedule_local_plays(schedule_id: str, session: SessionDep) -> list[LocalPlayRead]:
    """Plays clusters made from their stored schedule while their link was down, as they
    reported them on return (whether or not the slot's broadcast was still valid)."""
    await queries.get(session=session, schedule_id=schedule_id)
    rows = await session.execute(
        select(LocalPlay, Cluster.code)
        .join(Cluster, LocalPlay.cluster_id == Cluster.id)
        .where(LocalPlay.schedule_id == schedule_id)
        .order_by(LocalPlay.slot_at, Cluster.code)
    )
    return [
        LocalPlayRead(
            cluster=code,
            slot_at=play.slot_at,
            started_at=play.started_at,
            reported_at=play.reported_at,
            broadcast_id=play.broadcast_id,
        )
        for play, code in rows.all()
    ]
