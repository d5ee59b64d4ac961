"""Everything the control plane holds while it runs, built and disposed by the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from accounts.throttle import AddressBudget
from audit.models import AuditOutcome
from audit.service import event as audit_event
from audit.tally import TALLY_WINDOW_S, RefusalTally
from broadcast import jobs as broadcast_jobs
from broadcast import repository as broadcast_repository
from broadcast import sending
from broadcast.dispatch import Dispatcher
from broadcast.ingest import IncomingAck, apply_acks
from broadcast.schemas import BroadcastCreate
from cap import feeds
from core.actors import SCHEDULER_ACTOR
from core.batching import BatchConsumer
from core.clock import Clock, SystemClock
from core.counters import HttpStats
from core.database import create_engine, create_session_maker, session_scope
from core.ingest_stats import IngestStats
from core.mqtt import MessageHandler, MqttService, Outgoing
from core.settings import Settings
from core.writes import WriteLock, write_scope
from devices import broker_auth
from devices.handlers import LinkMessage, apply_link_batch
from devices.inbound import Inbound
from firmware import rollouts
from health import alarms, operations, self_test
from health import service as health_service
from media.cache import HotMediaCache
from media.service import IngestContext
from scheduler.leader import LeaderLock
from scheduler.runner import JobRunner
from schedules import jobs as schedule_jobs
from schedules import push as schedule_push
from wire import protocol, signing

log = logging.getLogger(__name__)

MQTT_CONNECT_TIMEOUT_S = 10.0
RETENTION_EVERY_S = 60.0  # telemetry history past its window is dropped this often
LINK_YIELDS_TO_ACKS_S = 2.0  # status and heartbeats wait at most this for acks to drain
CAP_ACKS_EVERY_S = 2.0  # how often finished CAP alerts are looked for, to acknowledge


@dataclass
class Runtime:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    stats: IngestStats = field(default_factory=IngestStats)
    http: HttpStats = field(default_factory=HttpStats)
    metrics_cache: object | None = None  # app/metrics.py: database figures, briefly kept
    # Every writer takes it through `writing()` (core/writes.py says why).
    write_lock: WriteLock = field(default_factory=WriteLock)
    media_cache: HotMediaCache = field(default_factory=HotMediaCache)
    ingest_slots: asyncio.Semaphore = field(default_factory=asyncio.Semaphore)
    # Set when a schedule changes: the clusters' stored schedules are pushed at the next tick.
    schedules_changed: asyncio.Event = field(default_factory=asyncio.Event)
    # Refusals of anonymous requests, written once a window (audit/tally.py).
    refusals: RefusalTally = field(default_factory=RefusalTally)
    # Sign-ins per source address, before any password is checked (accounts/throttle.py).
    sign_in_budget: AddressBudget = field(default_factory=lambda: AddressBudget(1 / 3, 20))
    mqtt: MqttService | None = None
    dispatcher: Dispatcher | None = None
    acks: BatchConsumer[IncomingAck] | None = None
    link: BatchConsumer[LinkMessage] | None = None
    jobs: JobRunner | None = None
    _background: set[asyncio.Task[None]] = field(default_factory=set)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def build(cls, settings: Settings, clock: Clock | None = None) -> Runtime:
        engine = create_engine(settings.database_url)
        runtime = cls(settings, clock or SystemClock(), engine, create_session_maker(engine))
        runtime.ingest_slots = asyncio.Semaphore(settings.ingest_concurrency)
        per_minute = settings.login_per_address_per_minute
        runtime.sign_in_budget = AddressBudget(per_minute / 60, per_minute)
        return runtime

    def writing(self) -> AbstractAsyncContextManager[AsyncSession]:
        """The write scope: the write lock and a session that may write, together."""
        return write_scope(self.sessions, self.write_lock)

    def ingest_context(self) -> IngestContext:
        return IngestContext(
            self.sessions, self.writing, self.ingest_slots, self.clock, self.settings
        )

    def require_dispatcher(self) -> Dispatcher:
        assert self.dispatcher is not None, "runtime not started"
        return self.dispatcher

    async def start(self, *, run_jobs: bool | None = None, consume: bool = True) -> None:
        """Connect and start; `consume=False` for a process that only runs jobs and publishes
        (it then takes no share of device messages)."""
        s = self.settings
        if broker_auth.managed(s):
            # The broker's files from the register as it is (a restored backup, a replica
            # that missed a change): nothing is written if they already agree.
            async with session_scope(self.sessions) as session:
                await broker_auth.sync(session, s, starting=True)
        self.acks = BatchConsumer(
            "acks",
            self._handle_acks,
            max_batch=s.ack_batch_max,
            window_s=s.ack_batch_window_s,
            healthy=self.database_answers,
            set_aside=self._unapplied,
        )
        self.link = BatchConsumer(
            "link",
            self._handle_link,
            max_batch=s.ack_batch_max,
            window_s=s.link_batch_window_s,
            healthy=self.database_answers,
            set_aside=self._unapplied,
        )
        routes: dict[str, MessageHandler] = {
            protocol.ACK_FILTER: self._on_ack,
            protocol.STATUS_FILTER: self._on_status,
            protocol.HEARTBEAT_FILTER: self._on_heartbeat,
        }
        no_routes: dict[str, MessageHandler] = {}
        self.mqtt = MqttService(s, routes if consume else no_routes, on_connect=self._retained)
        self.dispatcher = Dispatcher(self.mqtt, s, self.clock)
        self.acks.start()
        self.link.start()
        self.spawn(self._write_refusals_every_window(), name="audit-refusals")
        await self.mqtt.start()
        try:
            await self.mqtt.wait_connected(MQTT_CONNECT_TIMEOUT_S)
        except TimeoutError:
            log.warning(
                "broker %s:%s not reachable yet; retrying in the background",
                s.mqtt_host,
                s.mqtt_port,
            )
        if s.run_jobs_in_api if run_jobs is None else run_jobs:
            self.start_jobs()

    def _retained(self) -> list[Outgoing]:
        """What every device must find on the broker: the keys it trusts."""
        s = self.settings
        keyset = signing.signed_keyset(s.signer, s.device_trusted_keys, self.clock.now())
        return [Outgoing(protocol.KEYS_TOPIC, keyset, retain=True)]

    def start_jobs(self) -> None:
        dispatcher = self.require_dispatcher()

        def answers_unread() -> bool:
            return self.acks is not None and self.acks.busy

        async def sweep() -> None:
            await broadcast_jobs.sweep_deliveries(
                dispatcher=dispatcher,
                clock=self.clock,
                writing=self.writing,
                answers_unread=answers_unread,
            )

        last_push = [-math.inf]

        async def push_schedules() -> None:
            interval = self.settings.schedule_push_interval_s
            if not self.schedules_changed.is_set() and time.monotonic() - last_push[0] < interval:
                return
            self.schedules_changed.clear()
            last_push[0] = time.monotonic()
            await schedule_push.push_schedules(
                sessions=self.sessions,
                clock=self.clock,
                settings=self.settings,
                writing=self.writing,
                publish=dispatcher.publish,
            )

        last_retention, last_alarms = [-math.inf], [-math.inf]

        async def watch_fleet() -> None:
            """Silent clusters offline; alarms raised and cleared every few seconds; once a
            minute, telemetry history past its retention dropped."""
            now, s = self.clock.now(), self.settings
            async with self.writing() as session:
                await health_service.mark_silent_offline(session, now=now, settings=s)
                await operations.expire(session, now=now)
                if alarms.due(
                    since_last_s=time.monotonic() - last_alarms[0],
                    interval_s=s.alarm_evaluate_s,
                    answers_unread=answers_unread(),
                ):
                    last_alarms[0] = time.monotonic()
                    await alarms.evaluate(session, now=now, settings=s)
                if time.monotonic() - last_retention[0] >= RETENTION_EVERY_S:
                    last_retention[0] = time.monotonic()
                    await health_service.forget_old_samples(session, now=now, settings=s)

        async def operate() -> None:
            """Unanswered remote commands sent again; firmware rollouts moved on."""
            now, s = self.clock.now(), self.settings
            async with self.writing() as session:
                publications = await operations.resend_unanswered(session, now=now, settings=s)
                publications += await rollouts.advance(session, now=now, settings=s)
            if publications:
                await dispatcher.publish_commands("operations", publications)

        last_feed, last_acks, seen_entries = [-math.inf], [-math.inf], set[str]()

        async def cap_exchange() -> None:
            """CAP feeds read every CAP_FEED_INTERVAL_S; outcomes reported upstream."""
            if self.settings.cap_feeds and (
                time.monotonic() - last_feed[0] >= self.settings.cap_feed_interval_s
            ):
                last_feed[0] = time.monotonic()
                await feeds.poll(self, seen_entries)
            if self.settings.cap_ack_url and time.monotonic() - last_acks[0] >= CAP_ACKS_EVERY_S:
                last_acks[0] = time.monotonic()
                await feeds.send_acks(self)

        self.jobs = JobRunner(
            # Schedules first: a slot is due now, re-sends can wait half a second.
            {
                "fire_schedules": self.fire_schedules,
                "sweep_deliveries": sweep,
                "push_schedules": push_schedules,
                "watch_fleet": watch_fleet,
                "operations": operate,
                "self_test": self.daily_self_test,
                "cap": cap_exchange,
            },
            interval_s=self.settings.sweep_interval_s,
            leader=LeaderLock(self.engine),
        )
        self.jobs.start()

    async def fire_schedules(self) -> int:
        """Fire every due schedule slot; the number of broadcasts sent (a job; tests call
        it directly to fire from two runtimes at once)."""

        async def send(data: BroadcastCreate, also: sending.AlsoInTransaction) -> object:
            return await sending.send(self, data, SCHEDULER_ACTOR, also=also)

        async def send_many(
            batch: list[tuple[BroadcastCreate, sending.AlsoInTransaction]],
        ) -> object:
            return await sending.send_many(self, list(batch), SCHEDULER_ACTOR)

        return await schedule_jobs.fire_due(
            sessions=self.sessions,
            clock=self.clock,
            settings=self.settings,
            writing=self.writing,
            send=send,
            send_many=send_many,
        )

    async def daily_self_test(self) -> None:
        """Once a day at SELF_TEST_AT (a job): the silent test of every cluster."""
        async with session_scope(self.sessions) as session:
            if not await self_test.due(session, now=self.clock.now(), settings=self.settings):
                return
        await self_test.start(self)

    def spawn(self, coro: Coroutine[Any, Any, None], *, name: str) -> None:
        """Run follow-up work off the request path; kept referenced, logged if it fails,
        finished before shutdown."""
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._background.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("%s failed", name, exc_info=t.exception())

        task.add_done_callback(done)

    async def stop(self) -> None:
        self._stopping.set()
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.write_refusals()
        if self.jobs is not None:
            await self.jobs.stop()
        if self.mqtt is not None:
            await self.mqtt.stop()
        for consumer in (self.acks, self.link):
            if consumer is not None:
                await consumer.stop()
        await self.engine.dispose()

    async def _write_refusals_every_window(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), TALLY_WINDOW_S)
            await self.write_refusals()

    async def write_refusals(self) -> None:
        """The tallied anonymous refusals into the audit log (a window's worth at a time)."""
        rows = self.refusals.take(self.clock.now())
        if not rows:
            return
        try:
            async with self.writing() as session:
                session.add_all(rows)
        except Exception:  # the loss is loud; the service goes on
            log.exception("%d tallied refusal row(s) not written to the audit log", len(rows))

    async def database_answers(self) -> bool:
        """Whether the database takes a statement now (after a batch failed: was it the
        database, or one message in the batch?)."""
        try:
            async with session_scope(self.sessions) as session:
                await session.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def _unapplied(self, message: Inbound, error: Exception) -> None:
        """A device message that parsed but could not be written: refused on its own."""
        message.refuse(self.stats, "unapplied", f"{error.__class__.__name__}: {error}"[:300])

    async def drained(self) -> None:
        """Every device message received so far has been written."""
        for consumer in (self.acks, self.link):
            if consumer is not None:
                await consumer.drained()

    # --- MQTT in: enqueue only; the batch consumers do the work ---------------------------

    def _on_ack(self, topic: str, payload: bytes) -> None:
        code = protocol.cluster_code_from_topic(topic)
        assert self.acks is not None
        self.acks.submit(IncomingAck(topic, code or "", payload, self.clock.now()))

    def _on_status(self, topic: str, payload: bytes) -> None:
        self._link("status", topic, payload)

    def _on_heartbeat(self, topic: str, payload: bytes) -> None:
        self._link("hb", topic, payload)

    def _link(self, kind: str, topic: str, payload: bytes) -> None:
        code = protocol.cluster_code_from_topic(topic)
        assert self.link is not None
        self.link.submit(LinkMessage(topic, code or "", payload, self.clock.now(), kind=kind))

    async def _handle_acks(self, batch: list[IncomingAck]) -> None:
        async with self.writing() as session:
            await apply_acks(session, batch, settings=self.settings, stats=self.stats)
            self._audit_refusals(session)

    async def _handle_link(self, batch: list[LinkMessage]) -> None:
        # A broadcast's answers first: heartbeats can wait for a gap in them, never long.
        if self.acks is not None and self.acks.busy:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.acks.drained(), LINK_YIELDS_TO_ACKS_S)

        async def resend_soon(session: AsyncSession, cluster_ids: list[int]) -> None:
            await broadcast_repository.resend_soon_for_clusters(
                session, cluster_ids=cluster_ids, at=self.clock.now()
            )

        # Correctness would not need the lock here (timestamps only move forward; pulling a
        # re-send earlier is harmless), but SQLite has one writer: taking turns in-process
        # beats meeting in SQLite's busy handler, which polls with sleeps.
        async with self.writing() as session:
            await apply_link_batch(
                session, batch, stats=self.stats, settings=self.settings, on_online=resend_soon
            )
            self._audit_refusals(session)

    def _audit_refusals(self, session: AsyncSession) -> None:
        """What devices tried and was refused, into the audit log with the batch."""
        for note in self.stats.take_audit():
            session.add(
                audit_event(
                    at=note.at,
                    actor=note.actor,
                    role="cluster",
                    address="mqtt",
                    action=note.action,
                    target=note.target,
                    outcome=AuditOutcome.REFUSED,
                    detail={"reason": note.reason[:300]},
                )
            )
