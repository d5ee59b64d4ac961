"""Schedules: create and change them (overlaps reported before saving), read them as a
calendar. Services flush, never commit."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from areas import service as area_service
from areas.models import Area
from authority import Deed, authorise, authorise_aimed
from broadcast import service as broadcast_service
from broadcast.models import Broadcast, Delivery
from broadcast.states import DeliveryState
from bulletins import service as bulletin_service
from bulletins.models import Bulletin
from bulletins.workflow import Status as BulletinStatus
from core.actors import Actor
from core.clock import Clock
from core.errors import Conflict, InvalidInput, NotFound
from core.settings import Settings
from devices.models import Cluster
from media.models import MediaFile
from schedules import targets
from schedules.models import Schedule, ScheduleFiring
from schedules.recurrence import (
    Recurrence,
    RecurrenceError,
    next_slot,
    plays,
    slots,
    to_local,
    validate,
)
from schedules.schemas import (
    NowNext,
    Overlap,
    ScheduleCreate,
    ScheduleRead,
    ScheduleUpdate,
    SlotRead,
    StaleSchedule,
)
from schedules.states import ScheduleStatus
from wire import protocol
from wire.protocol import CommandClass

DEFAULT_SLOT_S = 60  # a bulletin whose length is unknown is taken to last a minute


class ScheduleNotFound(NotFound):
    def __init__(self, schedule_id: str) -> None:
        super().__init__(f"schedule {schedule_id!r} not found", detail={"schedule": schedule_id})


item_id = protocol.item_id


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


def _checked(schedule: Schedule) -> Recurrence:
    recurrence = recurrence_of(schedule)
    try:
        validate(recurrence)
    except RecurrenceError as exc:
        raise InvalidInput(str(exc), detail={"field": "rule"}) from None
    return recurrence


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


async def _approved_bulletin(session: AsyncSession, bulletin_id: str) -> Bulletin:
    bulletin = await bulletin_service.get(session=session, bulletin_id=bulletin_id)
    if bulletin.status != BulletinStatus.APPROVED:
        raise Conflict(
            f"bulletin {bulletin_id!r} is {bulletin.status}: only approved bulletins are scheduled",
            detail={"field": "bulletin_id", "status": bulletin.status},
        )
    return bulletin


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


async def get(*, session: AsyncSession, schedule_id: str) -> Schedule:
    schedule = await session.get(Schedule, schedule_id)
    if schedule is None:
        raise ScheduleNotFound(schedule_id)
    return schedule


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
