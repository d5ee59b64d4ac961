"""Schedules: create and change them (overlaps reported before saving). Services flush,
never commit. Reading them (the API's views, the calendar) is schedules/queries.py."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from authority import Deed, authorise, authorise_aimed
from bulletins import service as bulletin_service
from bulletins.models import Bulletin
from bulletins.workflow import Status as BulletinStatus
from core.actors import Actor
from core.clock import Clock
from core.errors import Conflict, InvalidInput
from core.settings import Settings
from schedules import targets
from schedules.models import Schedule
from schedules.queries import clusters_of, get, play_seconds, recurrence_of
from schedules.recurrence import Recurrence, RecurrenceError, next_slot, slots, to_local, validate
from schedules.schemas import Overlap, ScheduleCreate, ScheduleUpdate
from schedules.states import ScheduleStatus
from wire import protocol
from wire.protocol import CommandClass

item_id = protocol.item_id


def _checked(schedule: Schedule) -> Recurrence:
    recurrence = recurrence_of(schedule)
    try:
        validate(recurrence)
    except RecurrenceError as exc:
        raise InvalidInput(str(exc), detail={"field": "rule"}) from None
    return recurrence


async def _approved_bulletin(session: AsyncSession, bulletin_id: str) -> Bulletin:
    bulletin = await bulletin_service.get(session=session, bulletin_id=bulletin_id)
    if bulletin.status != BulletinStatus.APPROVED:
        raise Conflict(
            f"bulletin {bulletin_id!r} is {bulletin.status}: only approved bulletins are scheduled",
            detail={"field": "bulletin_id", "status": bulletin.status},
        )
    return bulletin


async def conflicts(
    session: AsyncSession, settings: Settings, now: datetime, candidate: Schedule
) -> list[Overlap]:
    """Other active schedules that would play on the same clusters at the same time,
    within the horizon."""
    mine = await clusters_of(session, candidate)
    horizon = now + timedelta(days=settings.conflict_horizon_days)
    my_len = timedelta(seconds=await play_seconds(session, candidate))
    my_slots = slots(recurrence_of(candidate), now, horizon)
    others = (
        await session.scalars(
            select(Schedule).where(
                Schedule.status == ScheduleStatus.ACTIVE, Schedule.id != candidate.id
            )
        )
    ).all()
    reach = await targets.reach_paths(session, [candidate, *others])
    found: list[Overlap] = []
    for other in others:
        if not targets.may_share(reach[candidate.id], reach[other.id]):
            continue  # another branch of the area tree: resolved exactly only if it may
        shared = mine & await clusters_of(session, other)
        if not shared:
            continue
        other_len = timedelta(seconds=await play_seconds(session, other))
        other_slots = slots(recurrence_of(other), now - other_len, horizon)
        hits = [
            a for a in my_slots if any(b < a + my_len and a < b + other_len for b in other_slots)
        ]
        if hits:
            found.append(
                Overlap(
                    schedule_id=other.id,
                    title=other.title,
                    first_overlap_local=to_local(hits[0], recurrence_of(candidate).zone()),
                    overlaps=len(hits),
                    clusters=len(shared),
                )
            )
    return found


async def _refuse_conflicts(
    session: AsyncSession, settings: Settings, now: datetime, schedule: Schedule, accept: bool
) -> list[Overlap]:
    overlaps = await conflicts(session, settings, now, schedule)
    if overlaps and not accept:
        raise Conflict(
            f"overlaps {len(overlaps)} other schedule(s) on the same clusters; change it or "
            "save with accept_conflicts (priority then decides on the clusters)",
            detail={"conflicts": [o.model_dump(mode="json") for o in overlaps]},
        )
    return overlaps


def advance(schedule: Schedule, after: datetime) -> None:
    schedule.next_fire_at = next_slot(recurrence_of(schedule), after)
    if schedule.next_fire_at is None and schedule.status == ScheduleStatus.ACTIVE:
        schedule.status = ScheduleStatus.ENDED


async def create(
    *,
    session: AsyncSession,
    clock: Clock,
    settings: Settings,
    actor: Actor,
    data: ScheduleCreate,
) -> tuple[Schedule, list[Overlap]]:
    level = await authorise_aimed(session, actor, Deed.SCHEDULE, data)
    bulletin = await _approved_bulletin(session, data.bulletin_id)
    if bulletin.stream_url and not data.duration_s:
        raise InvalidInput(
            "a relay needs duration_s (how long each play relays the stream)",
            detail={"field": "duration_s"},
        )
    now = clock.now()
    schedule = Schedule(
        id=str(uuid.uuid4()),
        title=data.title,
        bulletin_id=data.bulletin_id,
        cls=data.cls.value,
        level=level.value,
        timezone=data.timezone or settings.default_timezone,
        starts_local=data.starts_local,
        rule=data.rule,
        exdates_local=[d.replace(tzinfo=None).isoformat() for d in data.exdates_local],
        ends_at=data.ends_at,
        plays=data.plays,
        gap_s=data.gap_s,
        duration_s=data.duration_s,
        target_areas=list(data.areas),
        target_clusters=list(data.clusters),
        status=ScheduleStatus.ACTIVE,
        version=1,
        created_by=actor.name,
        created_at=now,
        updated_at=now,
    )
    _checked(schedule)
    if not await clusters_of(session, schedule):
        raise InvalidInput("no clusters under the given targets", detail={"field": "areas"})
    overlaps = await _refuse_conflicts(session, settings, now, schedule, data.accept_conflicts)
    advance(schedule, now - timedelta(microseconds=1))
    session.add(schedule)
    await session.flush()
    return schedule, overlaps


async def update(
    *,
    session: AsyncSession,
    clock: Clock,
    settings: Settings,
    schedule_id: str,
    data: ScheduleUpdate,
    actor: Actor,
) -> tuple[Schedule, list[Overlap]]:
    """Edit, pause, end or skip a play (exdates): the schedule's level or a higher one,
    with its targets, old and new, inside the actor's area."""
    schedule = await get(session=session, schedule_id=schedule_id)
    await authorise(
        session,
        actor,
        Deed.CHANGE,
        cls=CommandClass(schedule.cls),
        level=schedule.level,
        areas=[*schedule.target_areas, *(data.areas or [])],
        clusters=[*schedule.target_clusters, *(data.clusters or [])],
    )
    changes = data.model_dump(exclude_unset=True, exclude={"accept_conflicts"})
    if "areas" in changes:
        schedule.target_areas = changes.pop("areas")
    if "clusters" in changes:
        schedule.target_clusters = changes.pop("clusters")
    if "exdates_local" in changes:
        schedule.exdates_local = [d.isoformat() for d in changes.pop("exdates_local") or []]
    for name, value in changes.items():
        setattr(schedule, name, value)
    _checked(schedule)
    now = clock.now()
    overlaps: list[Overlap] = []
    if schedule.status == ScheduleStatus.ACTIVE:
        overlaps = await _refuse_conflicts(session, settings, now, schedule, data.accept_conflicts)
        advance(schedule, now - timedelta(microseconds=1))
    schedule.version += 1
    schedule.updated_at = now
    await session.flush()
    return schedule, overlaps
