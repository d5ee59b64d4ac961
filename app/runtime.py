"""Everything the control plane holds while it runs, built and disposed by the lifespan:
its resources (settings, clock, engine, sessions, the write scope, caches) and its workers
(MQTT, the dispatcher, the device intake, the job runner), started and stopped here.

What the workers do lives beside it: app/inbound.py (device messages in), app/jobs.py
(the periodic jobs). The domains never see this class: they ask for narrow Protocols
(core/context.py and their own), which it satisfies (app/main.py `runtime_fits`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from accounts.throttle import AddressBudget
from app.inbound import DeviceIntake
from app.jobs import periodic
from audit.tally import TALLY_WINDOW_S, RefusalTally
from broadcast.dispatch import Dispatcher
from broadcast.ingest import IncomingAck
from core.batching import BatchConsumer
from core.clock import Clock, SystemClock
from core.counters import HttpStats
from core.database import create_engine, create_session_maker, session_scope
from core.ingest_stats import IngestStats
from core.mqtt import MqttService, Outgoing
from core.settings import Settings
from core.writes import WriteLock, write_scope
from devices import broker_auth
from devices.handlers import LinkMessage
from live import service as live_service
from live.sessions import LiveSessions
from media.cache import HotMediaCache
from media.service import IngestContext
from scheduler.leader import LeaderLock
from scheduler.runner import JobRunner
from wire import protocol, signing

log = logging.getLogger(__name__)

MQTT_CONNECT_TIMEOUT_S = 10.0


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
    # Live voice sessions this process carries (live/sessions.py).
    live: LiveSessions = field(default_factory=LiveSessions)
    mqtt: MqttService | None = None
    dispatcher: Dispatcher | None = None
    intake: DeviceIntake | None = None
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

    @property
    def acks(self) -> BatchConsumer[IncomingAck] | None:
        """The acknowledgements' consumer, once started (ops and metrics show its backlog)."""
        return self.intake.acks if self.intake is not None else None

    @property
    def link(self) -> BatchConsumer[LinkMessage] | None:
        """The statuses' and heartbeats' consumer, once started."""
        return self.intake.link if self.intake is not None else None

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
        self.intake = DeviceIntake(
            self,
            self.stats,
            healthy=self.database_answers,
            schedules_changed=self.schedules_changed,
        )
        routes = self.intake.routes() if consume else {}
        self.mqtt = MqttService(s, routes, on_connect=self._retained)
        self.dispatcher = Dispatcher(self.mqtt, s, self.clock)
        self.intake.start()
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
        assert self.intake is not None, "runtime not started"
        self.jobs = JobRunner(
            periodic(
                self,
                schedules_changed=self.schedules_changed,
                answers_unread=self.intake.answers_unread,
            ),
            interval_s=self.settings.sweep_interval_s,
            leader=LeaderLock(self.engine),
        )
        self.jobs.start()

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
        if self.live.all():
            await live_service.close_all(self)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.write_refusals()
        if self.jobs is not None:
            await self.jobs.stop()
        if self.mqtt is not None:
            await self.mqtt.stop()
        if self.intake is not None:
            await self.intake.stop()
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

    async def drained(self) -> None:
        """Every device message received so far has been written."""
        if self.intake is not None:
            await self.intake.drained()
