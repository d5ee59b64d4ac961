"""Acknowledgement ingest: parse, match, apply the state machine, write once per batch."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from broadcast import repository
from broadcast.states import ACK_TO_STATE, TERMINAL, DeliveryState, Outcome, transition
from core.ingest_stats import AuditNote, IngestStats
from core.settings import Settings
from devices import repository as device_repository
from devices.inbound import Inbound, accept
from health import operations
from schedules import local_plays
from wire.protocol import Ack, AckStage, SignatureProblem, parse_ack

S = DeliveryState

_ROW_COLUMNS = repository.ACK_DELIVERY_COLUMNS


IncomingAck = Inbound  # an acknowledgement as it arrived, before parsing
_SIGNATURE_REASONS = frozenset(SignatureProblem)
# Refusals that may be an attack (a forged, replayed or re-aimed command), kept in the
# audit log; "canceled" and the like are the ordinary course of things.
_SUSPICIOUS = _SIGNATURE_REASONS | {"misaddressed", "expired", "replayed"}


@dataclass(slots=True)
class _Match:
    delivery_id: int
    values: dict[str, Any]
    command_id: str
    cancel_command_id: str | None
    play_s: float | None  # how long one full playback takes, None for a stream
    expires_at: datetime
    stream_ends_at: datetime | None
    requested_at: datetime  # the broadcast's creation: where confirmation latency starts
    dirty: set[str] = field(default_factory=set)

    def set(self, column: str, value: Any) -> None:
        if self.values[column] != value:
            self.values[column] = value
            self.dirty.add(column)


def _parse(batch: list[IncomingAck], stats: IngestStats) -> list[tuple[IncomingAck, Ack]]:
    return [(item, ack) for item in batch if (ack := accept(item, parse_ack, stats)) is not None]


async def _load(session: AsyncSession, acks: list[Ack]) -> dict[tuple[str, str], _Match]:
    """The deliveries the batch speaks of (row-locked on PostgreSQL), by (broadcast,
    cluster code)."""
    rows = await repository.acknowledged(
        session,
        broadcast_ids=sorted({a.broadcast for a in acks}),
        cluster_codes=sorted({a.cluster for a in acks}),
    )
    width = len(_ROW_COLUMNS)
    matches = {}
    for row in rows:
        values = dict(zip(_ROW_COLUMNS, row[3 : 3 + width], strict=True))
        (
            command_id,
            cancel_id,
            expires_at,
            repeat,
            stream_url,
            stream_ends_at,
            created_at,
            duration_ms,
        ) = row[3 + width :]
        play_s = None if stream_url or duration_ms is None else duration_ms * repeat / 1000
        matches[(row[1], row[2])] = _Match(
            row[0], values, command_id, cancel_id, play_s, expires_at, stream_ends_at, created_at
        )
    return matches


# The times an acknowledgement of each stage proves were reached by the time it arrived.
_PROVEN_BY = {
    S.DELIVERED: ("delivered_at",),
    S.PLAYING: ("delivered_at", "playing_at"),
    S.PLAYED: ("delivered_at", "playing_at", "played_at"),
    S.PREEMPTED: ("delivered_at",),
}


def _no_later_than(match: _Match, now: datetime, column: str) -> None:
    """An acknowledgement received at `now` proves its stage, and every earlier one, was
    reached by then. With several replicas, each stamps what it read with its own receipt
    time and they apply in lock order, not arrival order: the earliest proof is the time
    on the record. Times are only ever lowered, never made up."""
    earlier = match.values[column]
    if earlier is not None and earlier > now:
        match.set(column, now)


def _next_attempt(
    match: _Match, state: DeliveryState, now: datetime, settings: Settings
) -> datetime | None:
    """When to ask again if nothing more is heard: past the end of playback plus a grace."""
    if state in TERMINAL:
        return None
    if match.play_s is None:
        if match.stream_ends_at is not None:  # a relay: its "played" is due at the end
            return min(
                match.expires_at,
                match.stream_ends_at + timedelta(seconds=settings.played_grace_s),
            )
        return match.expires_at
    started = match.values["playing_at"] or now
    return started + timedelta(seconds=match.play_s + settings.played_grace_s)


def _apply(
    match: _Match,
    ack: Ack,
    item: IncomingAck,
    settings: Settings,
    events: list[tuple[Any, ...]],
    stats: IngestStats,
) -> None:
    values, now = match.values, item.received_at
    if ack.cmd == match.cancel_command_id:
        if ack.stage is AckStage.CANCELED and values["stop_confirmed_at"] is None:
            match.set("stop_confirmed_at", now)
            match.set("next_attempt_at", None)
            stats.count("stop_confirmed")
        else:
            stats.count("ack_duplicate")
        return
    if ack.cmd != match.command_id:
        item.refuse(
            stats, "unknown_command", f"command {ack.cmd!r} is not of broadcast {ack.broadcast!r}"
        )
        return
    current = S(values["state"])
    new = ACK_TO_STATE.get(ack.stage)
    if new is None:  # "done" answers a device operation, never a broadcast
        item.refuse(stats, "unexpected_stage", f"{ack.stage.value} for broadcast {ack.broadcast}")
        return
    outcome = transition(current, new)
    stats.count(f"ack_{outcome.value}")
    for column in _PROVEN_BY.get(new, ()):
        _no_later_than(match, now, column)
    if outcome is not Outcome.APPLIED:
        if outcome is Outcome.DUPLICATE and current not in TERMINAL:
            # Still alive and saying so: push the next "are you there?" further out.
            match.set("next_attempt_at", _next_attempt(match, current, now, settings))
        return
    match.set("state", new.value)
    if new is S.PLAYING:
        match.set("playing_at", now)
    if new is S.PLAYED:
        match.set("played_at", now)
    if new in (S.DELIVERED, S.PLAYING, S.PLAYED, S.PREEMPTED):
        if values["delivered_at"] is None:
            match.set("delivered_at", now)  # a lost "received" is implied by any later stage
            stats.confirm_latency.observe(max(0.0, (now - match.requested_at).total_seconds()))

    stats.count(f"delivery_{new.value}")
    if new in TERMINAL:
        match.set("ended_at", now)
    if ack.reason:
        match.set("reason", ack.reason[:300])
    match.set("next_attempt_at", _next_attempt(match, new, now, settings))
    events.append((match.delivery_id, new.value, now, ack.at, ack.reason))  # EVENT_COLUMNS


async def apply_acks(
    session: AsyncSession, batch: list[IncomingAck], *, settings: Settings, stats: IngestStats
) -> set[str]:
    """Apply one batch of acknowledgements in the caller's transaction; the clusters it
    found needing a new schedule document (a standard warning they could not fetch
    again, health/operations.py), for the caller to push once it has committed."""
    stats.count("acks_received", len(batch))
    parsed = _parse(batch, stats)
    for item, ack in parsed:
        if ack.stage is AckStage.REJECTED and ack.reason in _SUSPICIOUS:
            stats.audit_queue.append(
                AuditNote(
                    item.received_at,
                    ack.cluster,
                    "device rejected a command",
                    f"command {ack.cmd} of {ack.broadcast}",
                    ack.reason or "",
                )
            )
    # A copy of a command that failed the cluster's signature check (somebody else wrote to
    # its topic, or it lacks our key), whether its id is ours or forged: counted and listed
    # as what it is, never taken as the cluster's answer. The genuine command may still
    # come (and is re-sent), so no record is ended by it.
    refused = [(item, ack) for item, ack in parsed if _signature_refusal(ack)]
    for item, ack in refused:
        item.refuse(stats, "signature_rejected", f"{ack.cluster} refused {ack.cmd}: {ack.reason}")
    if refused:
        parsed = [(item, ack) for item, ack in parsed if not _signature_refusal(ack)]
    ops = [(item, ack) for item, ack in parsed if operations.is_operation(ack.broadcast)]
    repush: set[str] = set()
    if ops:  # technicians' device operations: their own results
        repush = await operations.apply_acks(session, ops, stats)
        parsed = [(item, ack) for item, ack in parsed if not operations.is_operation(ack.broadcast)]
    reports = [(item, ack) for item, ack in parsed if ack.item is not None]
    if reports:  # plays from stored schedules: rare, after an outage
        stats.count("local_play_reports", len(reports))
        stood_for = await local_plays.record(
            session, [ack for _, ack in reports], now=reports[0][0].received_at
        )
        parsed = [(i, a) for i, a in parsed if a.item is None]
        parsed += [(i, a) for (i, _), a in zip(reports, stood_for, strict=True) if a is not None]
    if not parsed:
        return repush
    matches = await _load(session, [ack for _, ack in parsed])
    events: list[tuple[Any, ...]] = []
    missing: list[tuple[IncomingAck, Ack]] = []
    for item, ack in parsed:
        match = matches.get((ack.broadcast, ack.cluster))
        if match is None:
            missing.append((item, ack))
            continue
        _apply(match, ack, item, settings, events, stats)
    if missing:
        await _reject_unmatched(session, missing, stats)
    await repository.update_acknowledged(
        session,
        [(m.delivery_id, {c: m.values[c] for c in m.dirty}) for m in matches.values() if m.dirty],
    )
    if events:
        await repository.insert_events(session, events)
    return repush


def _signature_refusal(ack: Ack) -> bool:
    return ack.stage is AckStage.REJECTED and ack.reason in _SIGNATURE_REASONS


async def _reject_unmatched(
    session: AsyncSession, missing: list[tuple[IncomingAck, Ack]], stats: IngestStats
) -> None:
    known = await device_repository.ids_by_code(session, {ack.cluster for _, ack in missing})
    for item, ack in missing:
        if ack.cluster not in known:
            item.refuse(stats, "unknown_device", f"cluster {ack.cluster!r} is not registered")
        else:
            item.refuse(
                stats,
                "unknown_command",
                f"no delivery of broadcast {ack.broadcast!r} to {ack.cluster!r}",
            )
