"""The delivery state machine: every allowed transition in one table.

One delivery per (broadcast, cluster). Acknowledgements can arrive twice or out of order
(QoS 1 is at-least-once; a lost "received" can be followed by a "played"), so forward
jumps are allowed and a repeat of the current state is a harmless no-op. Everything not
in the table is refused.
"""

from __future__ import annotations

from enum import StrEnum

from wire.protocol import AckStage


class DeliveryState(StrEnum):
    QUEUED = "queued"  # row written, command not yet published
    SENT = "sent"  # published to the broker (a PUBACK is not a delivery)
    DELIVERED = "delivered"  # the cluster said "received": verified, media ready
    PLAYING = "playing"
    PLAYED = "played"
    FAILED = "failed"
    REJECTED = "rejected"
    TIMED_OUT = "timed_out"  # reached the cluster, never confirmed played before expiry
    EXPIRED = "expired"  # never reached the cluster before expiry
    CANCELED = "canceled"
    PREEMPTED = "preempted"


class BroadcastStatus(StrEnum):
    """A broadcast as a whole (its deliveries each have a DeliveryState)."""

    ACTIVE = "active"  # airing, or due to: until it expires or is canceled
    CANCELED = "canceled"
    EXPIRED = "expired"


S = DeliveryState

TERMINAL: frozenset[DeliveryState] = frozenset(
    {S.PLAYED, S.FAILED, S.REJECTED, S.TIMED_OUT, S.EXPIRED, S.CANCELED, S.PREEMPTED}
)
# States in which the cluster has not yet confirmed the command at all.
UNCONFIRMED: frozenset[DeliveryState] = frozenset({S.QUEUED, S.SENT})
ACTIVE: frozenset[DeliveryState] = frozenset({S.QUEUED, S.SENT, S.DELIVERED, S.PLAYING})

_ENDINGS_FROM_ANY_ACTIVE = {S.FAILED, S.REJECTED, S.CANCELED, S.PREEMPTED}

ALLOWED: dict[DeliveryState, frozenset[DeliveryState]] = {
    S.QUEUED: frozenset({S.SENT, S.DELIVERED, S.PLAYING, S.PLAYED, S.EXPIRED})
    | _ENDINGS_FROM_ANY_ACTIVE,
    S.SENT: frozenset({S.DELIVERED, S.PLAYING, S.PLAYED, S.EXPIRED}) | _ENDINGS_FROM_ANY_ACTIVE,
    S.DELIVERED: frozenset({S.PLAYING, S.PLAYED, S.TIMED_OUT}) | _ENDINGS_FROM_ANY_ACTIVE,
    S.PLAYING: frozenset({S.PLAYED, S.TIMED_OUT}) | _ENDINGS_FROM_ANY_ACTIVE,
    **{terminal: frozenset() for terminal in TERMINAL},
}

ACK_TO_STATE: dict[AckStage, DeliveryState] = {
    AckStage.RECEIVED: S.DELIVERED,
    AckStage.PLAYING: S.PLAYING,
    AckStage.PLAYED: S.PLAYED,
    AckStage.FAILED: S.FAILED,
    AckStage.REJECTED: S.REJECTED,
    AckStage.PREEMPTED: S.PREEMPTED,
    AckStage.CANCELED: S.CANCELED,
}


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # already in that state
    STALE = "stale"  # an older stage arriving after a newer one: harmless, ignored
    REFUSED = "refused"  # not in the table (e.g. leaving a terminal state)


# How far along the happy path a state is, to tell stale from refused.
_PROGRESS = {S.QUEUED: 0, S.SENT: 1, S.DELIVERED: 2, S.PLAYING: 3, S.PLAYED: 4}


def transition(current: DeliveryState, new: DeliveryState) -> Outcome:
    """Judge one proposed transition; the caller writes it only if APPLIED."""
    if new == current:
        return Outcome.DUPLICATE
    if new in ALLOWED[current]:
        return Outcome.APPLIED
    if new in _PROGRESS and (current in TERMINAL or _PROGRESS.get(current, 0) > _PROGRESS[new]):
        return Outcome.STALE
    return Outcome.REFUSED
