"""The periodic jobs the leading process runs every tick (scheduler/runner.py), in order.

Each is a named function or, where it keeps time between ticks, a small class, and takes
the narrow context it needs (core/context.py, broadcast/context.py), not the runtime:
`periodic` wires them, and app/runtime.py hands the result to its job runner."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from functools import partial

from broadcast import jobs as broadcast_jobs
from broadcast import sending
from broadcast.context import Sending
from broadcast.dispatch import Dispatcher
from broadcast.schemas import BroadcastCreate
from cap import feeds
from core.actors import SCHEDULER_ACTOR
from core.context import Context
from core.database import session_scope
from firmware import rollouts
from health import alarms, operations, self_test
from health import service as health_service
from scheduler.runner import Job
from schedules import jobs as schedule_jobs
from schedules import push as schedule_push

RETENTION_EVERY_S = 60.0  # telemetry history past its window is dropped this often
CAP_ACKS_EVERY_S = 2.0  # how often finished CAP alerts are looked for, to acknowledge

AnswersUnread = Callable[[], bool]  # acknowledgements received and not yet written


def periodic(
    ctx: Sending, *, schedules_changed: asyncio.Event, answers_unread: AnswersUnread
) -> dict[str, Job]:
    """Every job by name, in the order a tick runs them."""
    dispatcher = ctx.require_dispatcher()
    return {
        # Schedules first: a slot is due now, re-sends can wait half a second.
        "fire_schedules": partial(fire_schedules, ctx),
        "sweep_deliveries": partial(
            broadcast_jobs.sweep_deliveries,
            dispatcher=dispatcher,
            clock=ctx.clock,
            writing=ctx.writing,
            answers_unread=answers_unread,
        ),
        "push_schedules": PushSchedules(ctx, schedules_changed, dispatcher.publish),
        "watch_fleet": WatchFleet(ctx, answers_unread),
        "operations": partial(operate, ctx, dispatcher),
        "self_test": partial(daily_self_test, ctx),
        "cap": CapExchange(ctx),
    }


async def fire_schedules(ctx: Sending) -> int:
    """Fire every due schedule slot; the number of broadcasts sent (tests call it directly
    to fire from two runtimes at once)."""

    async def send(data: BroadcastCreate, also: sending.AlsoInTransaction) -> object:
        return await sending.send(ctx, data, SCHEDULER_ACTOR, also=also)

    async def send_many(
        batch: list[tuple[BroadcastCreate, sending.AlsoInTransaction]],
    ) -> object:
        return await sending.send_many(ctx, list(batch), SCHEDULER_ACTOR)

    return await schedule_jobs.fire_due(
        sessions=ctx.sessions,
        clock=ctx.clock,
        settings=ctx.settings,
        writing=ctx.writing,
        send=send,
        send_many=send_many,
    )


class PushSchedules:
    """The clusters' stored schedules pushed when a schedule changed, else every
    SCHEDULE_PUSH_INTERVAL_S (the next hours move on even when nothing is edited)."""

    def __init__(
        self, ctx: Context, changed: asyncio.Event, publish: schedule_push.Publish
    ) -> None:
        self._ctx, self._changed, self._publish = ctx, changed, publish
        self._last = -math.inf

    async def __call__(self) -> None:
        ctx = self._ctx
        interval = ctx.settings.schedule_push_interval_s
        if not self._changed.is_set() and time.monotonic() - self._last < interval:
            return
        self._changed.clear()
        self._last = time.monotonic()
        await schedule_push.push_schedules(
            sessions=ctx.sessions,
            clock=ctx.clock,
            settings=ctx.settings,
            writing=ctx.writing,
            publish=self._publish,
        )


class WatchFleet:
    """Silent clusters offline; alarms raised and cleared every few seconds; once a
    minute, telemetry history past its retention dropped."""

    def __init__(self, ctx: Context, answers_unread: AnswersUnread) -> None:
        self._ctx, self._answers_unread = ctx, answers_unread
        self._last_alarms = self._last_retention = -math.inf

    async def __call__(self) -> None:
        now, s = self._ctx.clock.now(), self._ctx.settings
        async with self._ctx.writing() as session:
            await health_service.mark_silent_offline(session, now=now, settings=s)
            await operations.expire(session, now=now)
            if alarms.due(
                since_last_s=time.monotonic() - self._last_alarms,
                interval_s=s.alarm_evaluate_s,
                answers_unread=self._answers_unread(),
            ):
                self._last_alarms = time.monotonic()
                await alarms.evaluate(session, now=now, settings=s)
            if time.monotonic() - self._last_retention >= RETENTION_EVERY_S:
                self._last_retention = time.monotonic()
                await health_service.forget_old_samples(session, now=now, settings=s)


async def operate(ctx: Context, dispatcher: Dispatcher) -> None:
    """Unanswered remote commands sent again; firmware rollouts moved on."""
    now, s = ctx.clock.now(), ctx.settings
    async with ctx.writing() as session:
        publications = await operations.resend_unanswered(session, now=now, settings=s)
        publications += await rollouts.advance(session, now=now, settings=s)
    if publications:
        await dispatcher.publish_commands("operations", publications)


async def daily_self_test(ctx: Sending) -> None:
    """Once a day at SELF_TEST_AT: the silent test of every cluster."""
    async with session_scope(ctx.sessions) as session:
        if not await self_test.due(session, now=ctx.clock.now(), settings=ctx.settings):
            return
    await self_test.start(ctx)


class CapExchange:
    """CAP feeds read every CAP_FEED_INTERVAL_S; outcomes reported upstream."""

    def __init__(self, ctx: Sending) -> None:
        self._ctx = ctx
        self._last_feed = self._last_acks = -math.inf
        self._seen_entries: set[str] = set()

    async def __call__(self) -> None:
        s = self._ctx.settings
        if s.cap_feeds and time.monotonic() - self._last_feed >= s.cap_feed_interval_s:
            self._last_feed = time.monotonic()
            await feeds.poll(self._ctx, self._seen_entries)
        if s.cap_ack_url and time.monotonic() - self._last_acks >= CAP_ACKS_EVERY_S:
            self._last_acks = time.monotonic()
            await feeds.send_acks(self._ctx)
