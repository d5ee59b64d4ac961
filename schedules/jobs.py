"""The scheduler's job: turn due plays into broadcasts, each exactly once.

Each play is fired in one transaction that writes the broadcast, its deliveries, a
ScheduleFiring row unique on (schedule, slot) and the schedule's next slot; the command
is published after the commit. So a crash before the commit leaves the slot due (it fires
on restart, late if past the grace... see below), a crash after it leaves the deliveries
queued (the sweep publishes them), and a second scheduler that races for the same slot
fails on the unique row and rolls back its broadcast. Nothing fires twice.

A slot reached within `schedule_grace_s` is played (recorded `on_time`, or `late` when
more than a second after the slot); beyond it, recorded `missed` and not played: a
morning bulletin at noon would mislead more than it informs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broadcast.models import Broadcast
from broadcast.schemas import BroadcastCreate
from core.clock import Clock
from core.database import session_scope
from core.errors import AppError
from core.settings import Settings
from schedules import service
from schedules.models import Schedule, ScheduleFiring

log = logging.getLogger(__name__)

LATE_AFTER_S = 1.0  # the target: a slot fires within a second
MAX_DUE_PER_TICK = 200
MAX_MISSED_PER_SCHEDULE = 1000  # a schedule every minute, stopped for most of a day

AlsoInTransaction = Callable[[AsyncSession, Broadcast], Awaitable[None]]
Send = Callable[[BroadcastCreate, AlsoInTransaction], Awaitable[object]]


async def fire_due(
    *,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    settings: Settings,
    write_lock: asyncio.Lock,
    send: Send,
) -> int:
    """Fire or record every slot that is due; the number of broadcasts sent."""
    now = clock.now()
    async with session_scope(sessions) as session:
        due = (
            await session.scalars(
                select(Schedule)
                .where(Schedule.status == "active", Schedule.next_fire_at <= now)
                .order_by(Schedule.next_fire_at)
                .limit(MAX_DUE_PER_TICK)
            )
        ).all()
    sent = 0
    for schedule in due:
        slot = schedule.next_fire_at
        assert slot is not None
        if (now - slot).total_seconds() > settings.schedule_grace_s:
            await _record_missed(sessions, write_lock, schedule.id, now, settings)
        elif await _fire(sessions, write_lock, schedule, slot, now, settings, send):
            sent += 1
    return sent


async def _fire(
    sessions: async_sessionmaker[AsyncSession],
    write_lock: asyncio.Lock,
    schedule: Schedule,
    slot: datetime,
    now: datetime,
    settings: Settings,
    send: Send,
) -> bool:
    lateness = (now - slot).total_seconds()
    outcome = "late" if lateness > LATE_AFTER_S else "on_time"
    async with session_scope(sessions) as session:
        length = await service.play_seconds(session, schedule)
    relay_window: dict[str, object] = {}
    if schedule.duration_s:
        relay_window = {"stream_starts_at": now, "stream_ends_at": slot + timedelta(seconds=length)}
    data = BroadcastCreate.model_validate(
        {
            "title": schedule.title,
            "class": schedule.cls,
            "level": schedule.level,
            "areas": schedule.target_areas,
            "clusters": schedule.target_clusters,
            "bulletin_id": schedule.bulletin_id,
            "expires_at": slot + timedelta(seconds=length + settings.schedule_expiry_s),
            **relay_window,
        }
    )

    async def record(session: AsyncSession, broadcast: Broadcast) -> None:
        current = await session.get(Schedule, schedule.id, with_for_update=True)
        assert current is not None
        session.add(
            ScheduleFiring(
                schedule_id=schedule.id,
                slot_at=slot,
                fired_at=now,
                outcome=outcome,
                broadcast_id=broadcast.id,
            )
        )
        await session.flush()  # a slot fired already (another scheduler) fails here
        service.advance(current, slot)
        broadcast.schedule_item = service.item_id(schedule.id, slot)

    try:
        await send(data, record)
    except IntegrityError:
        log.info("schedule %s slot %s was fired by another scheduler", schedule.id, slot)
        return False
    except AppError as exc:
        # The bulletin was withdrawn or expired, the targets removed...: recorded, skipped.
        await _record(sessions, write_lock, schedule.id, slot, now, "skipped", exc.message)
        return False
    if outcome == "late":
        log.warning("schedule %s: slot %s played %.1f s late", schedule.id, slot, lateness)
    return True


async def _record(
    sessions: async_sessionmaker[AsyncSession],
    write_lock: asyncio.Lock,
    schedule_id: str,
    slot: datetime,
    now: datetime,
    outcome: str,
    reason: str,
) -> None:
    async with write_lock, session_scope(sessions) as session:
        schedule = await session.get(Schedule, schedule_id, with_for_update=True)
        if schedule is None or schedule.next_fire_at != slot:
            return  # another scheduler got here first
        session.add(
            ScheduleFiring(
                schedule_id=schedule_id,
                slot_at=slot,
                fired_at=now,
                outcome=outcome,
                reason=reason[:300],
            )
        )
        service.advance(schedule, slot)


async def _record_missed(
    sessions: async_sessionmaker[AsyncSession],
    write_lock: asyncio.Lock,
    schedule_id: str,
    now: datetime,
    settings: Settings,
) -> None:
    """Every slot that passed beyond the grace window, one row each; the schedule then
    points at its next playable slot."""
    grace = timedelta(seconds=settings.schedule_grace_s)
    async with write_lock, session_scope(sessions) as session:
        schedule = await session.get(Schedule, schedule_id, with_for_update=True)
        if schedule is None:
            return
        for _ in range(MAX_MISSED_PER_SCHEDULE):
            slot = schedule.next_fire_at
            if slot is None or now - slot <= grace:
                break
            session.add(
                ScheduleFiring(
                    schedule_id=schedule_id,
                    slot_at=slot,
                    fired_at=now,
                    outcome="missed",
                    reason=f"the scheduler was not running within {settings.schedule_grace_s:.0f} s of the slot",
                )
            )
            service.advance(schedule, slot)
        log.warning("schedule %s: slots missed while the scheduler was down", schedule_id)
