"""The scheduler's job: turn due plays into broadcasts, each exactly once.

Each play is fired in one transaction that writes the broadcast, its deliveries, a
ScheduleFiring row unique on (schedule, slot) and the schedule's next slot; the command
is published after the commit. So a crash before the commit leaves the slot due (it fires
on restart, late if past the grace... see below), a crash after it leaves the deliveries
queued (the sweep publishes them), and a second scheduler that races for the same slot
fails on the unique row and rolls back its broadcast. Nothing fires twice.

A slot is sent `schedule_prefire_s` ahead (the command's `starts_at` holds the clusters
until the slot), so a slot a hundred communes share still starts on the second.
A slot reached within `schedule_grace_s` is played (recorded `on_time`, or `late` when
more than a second after the slot); beyond it, recorded `missed` and not played: a
morning bulletin at noon would mislead more than it informs.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from broadcast.models import Broadcast
from broadcast.schemas import BroadcastCreate
from broadcast.sending import AlsoInTransaction
from core.clock import Clock
from core.database import session_scope
from core.errors import AppError
from core.settings import Settings
from core.writes import Writing
from schedules import queries, service
from schedules.models import Schedule, ScheduleFiring
from schedules.states import ScheduleStatus, SlotOutcome

log = logging.getLogger(__name__)

LATE_AFTER_S = 1.0  # the target: a slot fires within a second
MAX_DUE_PER_TICK = 200
# Slots written per transaction when many are due at once: the first communes' commands
# leave while the next batch is written, and one bad slot rolls back no more than this.
FIRE_BATCH = 20
MAX_MISSED_PER_SCHEDULE = 1000  # a schedule every minute, stopped for most of a day

Send = Callable[[BroadcastCreate, AlsoInTransaction], Awaitable[object]]
SendMany = Callable[[list[tuple[BroadcastCreate, AlsoInTransaction]]], Awaitable[object]]


@dataclass(frozen=True)
class _Firing:
    """One slot about to be played: the broadcast to send and what to record with it."""

    schedule_id: str
    slot: datetime
    now: datetime
    data: BroadcastCreate

    @property
    def outcome(self) -> SlotOutcome:
        late = (self.now - self.slot).total_seconds() > LATE_AFTER_S
        return SlotOutcome.LATE if late else SlotOutcome.ON_TIME

    async def record(self, session: AsyncSession, broadcast: Broadcast) -> None:
        """In the broadcast's transaction: the firing row (unique per slot: a second
        scheduler fails here) and the schedule's next slot."""
        current = await session.get(Schedule, self.schedule_id, with_for_update=True)
        assert current is not None
        session.add(
            ScheduleFiring(
                schedule_id=self.schedule_id,
                slot_at=self.slot,
                fired_at=self.now,
                outcome=self.outcome,
                broadcast_id=broadcast.id,
            )
        )
        await session.flush()
        service.advance(current, self.slot)
        broadcast.schedule_item = service.item_id(self.schedule_id, self.slot)


async def fire_due(
    *,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    settings: Settings,
    writing: Writing,
    send: Send,
    send_many: SendMany,
) -> int:
    """Fire or record every slot that is due; the number of broadcasts sent.

    Slots due together (every commune's morning news at 06:00) are written FIRE_BATCH to a
    transaction and published together: one at a time, each with its own commit and
    publication, the hundredth commune started tens of seconds late (docs/benchmarks.md).
    A batch that fails (another scheduler fired one of its slots, a bulletin was
    withdrawn) is rolled back whole and fired one slot at a time, each judged on its own.
    """
    now = clock.now()
    ahead = now + timedelta(seconds=settings.schedule_prefire_s)
    async with session_scope(sessions) as session:
        due = (
            await session.scalars(
                select(Schedule)
                .where(Schedule.status == ScheduleStatus.ACTIVE, Schedule.next_fire_at <= ahead)
                .order_by(Schedule.next_fire_at)
                .limit(MAX_DUE_PER_TICK)
            )
        ).all()
        firings = []
        for schedule in due:
            slot = schedule.next_fire_at
            assert slot is not None
            if (now - slot).total_seconds() > settings.schedule_grace_s:
                continue
            length = await queries.play_seconds(session, schedule)
            firings.append(
                _Firing(
                    schedule.id, slot, now, _broadcast_of(schedule, slot, length, now, settings)
                )
            )
    for schedule in due:
        assert schedule.next_fire_at is not None
        if (now - schedule.next_fire_at).total_seconds() > settings.schedule_grace_s:
            await _record_missed(writing, schedule.id, now, settings)
    sent = 0
    for start in range(0, len(firings), FIRE_BATCH):
        batch = firings[start : start + FIRE_BATCH]
        try:
            await send_many([(f.data, f.record) for f in batch])
            sent += len(batch)
        except (IntegrityError, AppError) as exc:
            log.info("%d slots could not be fired together (%s); one at a time", len(batch), exc)
            for firing in batch:
                sent += await _fire_one(writing, firing, send)
        late = [f for f in batch if f.outcome == SlotOutcome.LATE]
        for firing in late:
            log.warning(
                "schedule %s: slot %s played %.1f s late",
                firing.schedule_id,
                firing.slot,
                (firing.now - firing.slot).total_seconds(),
            )
    return sent


def _broadcast_of(
    schedule: Schedule, slot: datetime, length: int, now: datetime, settings: Settings
) -> BroadcastCreate:
    relay_window: dict[str, object] = {}
    if schedule.duration_s:
        relay_window = {"stream_starts_at": now, "stream_ends_at": slot + timedelta(seconds=length)}
    return BroadcastCreate.model_validate(
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


async def _fire_one(
    writing: Writing,
    firing: _Firing,
    send: Send,
) -> int:
    """1 if sent; 0 if another scheduler fired it or it cannot air (recorded skipped)."""
    try:
        await send(firing.data, firing.record)
    except IntegrityError:
        log.info(
            "schedule %s slot %s was fired by another scheduler", firing.schedule_id, firing.slot
        )
        return 0
    except AppError as exc:
        # The bulletin was withdrawn or expired, the targets removed...: recorded, skipped.
        await _record(
            writing,
            firing.schedule_id,
            firing.slot,
            firing.now,
            SlotOutcome.SKIPPED,
            exc.message,
        )
        return 0
    return 1


async def _record(
    writing: Writing,
    schedule_id: str,
    slot: datetime,
    now: datetime,
    outcome: SlotOutcome,
    reason: str,
) -> None:
    async with writing() as session:
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
    writing: Writing,
    schedule_id: str,
    now: datetime,
    settings: Settings,
) -> None:
    """Every slot that passed beyond the grace window, one row each; the schedule then
    points at its next playable slot."""
    grace = timedelta(seconds=settings.schedule_grace_s)
    async with writing() as session:
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
                    outcome=SlotOutcome.MISSED,
                    reason=f"the scheduler was not running within {settings.schedule_grace_s:.0f} s of the slot",
                )
            )
            service.advance(schedule, slot)
        log.warning("schedule %s: slots missed while the scheduler was down", schedule_id)
