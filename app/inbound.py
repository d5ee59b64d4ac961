"""Device messages in: the MQTT topic routes only enqueue; two batch consumers write.

Acknowledgements have a consumer of their own, apart from statuses and heartbeats, so a
broadcast's answers never queue behind a province's heartbeats (and heartbeats wait for a
gap in the answers, never long)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from audit.models import AuditOutcome
from audit.service import event as audit_event
from broadcast import repository as broadcast_repository
from broadcast.ingest import IncomingAck, apply_acks
from core.batching import BatchConsumer
from core.context import Context
from core.ingest_stats import IngestStats
from core.mqtt import MessageHandler
from devices.handlers import LinkMessage, apply_link_batch
from devices.inbound import Inbound
from wire import protocol

LINK_YIELDS_TO_ACKS_S = 2.0  # status and heartbeats wait at most this for acks to drain

Healthy = Callable[[], Awaitable[bool]]


class DeviceIntake:
    """The routes for the device topics and the consumers behind them."""

    def __init__(
        self,
        ctx: Context,
        stats: IngestStats,
        *,
        healthy: Healthy,
        schedules_changed: asyncio.Event | None = None,
    ) -> None:
        """`healthy`: whether the database takes a statement now (after a batch failed:
        was it the database, or one message in the batch?). `schedules_changed`: set when
        a cluster needs a new schedule document at once (the push job waits on it)."""
        self._ctx, self._stats = ctx, stats
        self._schedules_changed = schedules_changed
        s = ctx.settings
        self.acks = BatchConsumer(
            "acks",
            self._handle_acks,
            max_batch=s.ack_batch_max,
            window_s=s.ack_batch_window_s,
            healthy=healthy,
            set_aside=self._unapplied,
        )
        self.link = BatchConsumer(
            "link",
            self._handle_link,
            max_batch=s.ack_batch_max,
            window_s=s.link_batch_window_s,
            healthy=healthy,
            set_aside=self._unapplied,
        )

    def routes(self) -> dict[str, MessageHandler]:
        """Topic filter -> handler, for core.mqtt.MqttService."""
        return {
            protocol.ACK_FILTER: self._on_ack,
            protocol.STATUS_FILTER: self._on_status,
            protocol.HEARTBEAT_FILTER: self._on_heartbeat,
        }

    def start(self) -> None:
        self.acks.start()
        self.link.start()

    async def stop(self) -> None:
        for consumer in (self.acks, self.link):
            await consumer.stop()

    async def drained(self) -> None:
        """Every device message received so far has been written."""
        for consumer in (self.acks, self.link):
            await consumer.drained()

    def answers_unread(self) -> bool:
        """Acknowledgements received and not yet written."""
        return self.acks.busy

    def _unapplied(self, message: Inbound, error: Exception) -> None:
        """A device message that parsed but could not be written: refused on its own."""
        message.refuse(self._stats, "unapplied", f"{error.__class__.__name__}: {error}"[:300])

    # MQTT in: enqueue only; the batch consumers do the work.

    def _on_ack(self, topic: str, payload: bytes) -> None:
        code = protocol.cluster_code_from_topic(topic)
        self.acks.submit(IncomingAck(topic, code or "", payload, self._ctx.clock.now()))

    def _on_status(self, topic: str, payload: bytes) -> None:
        self._link("status", topic, payload)

    def _on_heartbeat(self, topic: str, payload: bytes) -> None:
        self._link("hb", topic, payload)

    def _link(self, kind: str, topic: str, payload: bytes) -> None:
        code = protocol.cluster_code_from_topic(topic)
        now = self._ctx.clock.now()
        self.link.submit(LinkMessage(topic, code or "", payload, now, kind=kind))

    async def _handle_acks(self, batch: list[IncomingAck]) -> None:
        async with self._ctx.writing() as session:
            repush = await apply_acks(
                session, batch, settings=self._ctx.settings, stats=self._stats
            )
            self._audit_refusals(session)
        if repush and self._schedules_changed is not None:  # committed: the push sees it
            self._schedules_changed.set()

    async def _handle_link(self, batch: list[LinkMessage]) -> None:
        # A broadcast's answers first: heartbeats can wait for a gap in them, never long.
        if self.acks.busy:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.acks.drained(), LINK_YIELDS_TO_ACKS_S)

        async def resend_soon(session: AsyncSession, cluster_ids: list[int]) -> None:
            await broadcast_repository.resend_soon_for_clusters(
                session, cluster_ids=cluster_ids, at=self._ctx.clock.now()
            )

        # Correctness would not need the lock here (timestamps only move forward; pulling a
        # re-send earlier is harmless), but SQLite has one writer: taking turns in-process
        # beats meeting in SQLite's busy handler, which polls with sleeps.
        async with self._ctx.writing() as session:
            await apply_link_batch(
                session,
                batch,
                stats=self._stats,
                settings=self._ctx.settings,
                on_online=resend_soon,
            )
            self._audit_refusals(session)

    def _audit_refusals(self, session: AsyncSession) -> None:
        """What devices tried and was refused, into the audit log with the batch."""
        for note in self._stats.take_audit():
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
