"""Every allowed and every refused transition of the delivery state machine."""

from __future__ import annotations

import itertools

import pytest

from broadcast.states import ACK_TO_STATE, TERMINAL, DeliveryState, Outcome, transition
from wire.protocol import AckStage

S = DeliveryState

# Written out by hand, independently of broadcast.states.ALLOWED: the specification.
EXPECTED_ALLOWED = {
    (S.QUEUED, S.SENT),
    (S.QUEUED, S.DELIVERED),
    (S.QUEUED, S.PLAYING),
    (S.QUEUED, S.PLAYED),
    (S.QUEUED, S.FAILED),
    (S.QUEUED, S.REJECTED),
    (S.QUEUED, S.EXPIRED),
    (S.QUEUED, S.CANCELED),
    (S.QUEUED, S.PREEMPTED),
    (S.SENT, S.DELIVERED),
    (S.SENT, S.PLAYING),
    (S.SENT, S.PLAYED),
    (S.SENT, S.FAILED),
    (S.SENT, S.REJECTED),
    (S.SENT, S.EXPIRED),
    (S.SENT, S.CANCELED),
    (S.SENT, S.PREEMPTED),
    (S.DELIVERED, S.PLAYING),
    (S.DELIVERED, S.PLAYED),
    (S.DELIVERED, S.FAILED),
    (S.DELIVERED, S.REJECTED),
    (S.DELIVERED, S.TIMED_OUT),
    (S.DELIVERED, S.CANCELED),
    (S.DELIVERED, S.PREEMPTED),
    (S.PLAYING, S.PLAYED),
    (S.PLAYING, S.FAILED),
    (S.PLAYING, S.REJECTED),
    (S.PLAYING, S.TIMED_OUT),
    (S.PLAYING, S.CANCELED),
    (S.PLAYING, S.PREEMPTED),
}

ALL_PAIRS = list(itertools.product(S, S))


@pytest.mark.parametrize(("current", "new"), ALL_PAIRS, ids=[f"{a}->{b}" for a, b in ALL_PAIRS])
def test_every_transition_is_judged_by_the_table(current: S, new: S) -> None:
    outcome = transition(current, new)
    if current == new:
        assert outcome is Outcome.DUPLICATE
    elif (current, new) in EXPECTED_ALLOWED:
        assert outcome is Outcome.APPLIED
    else:
        assert outcome in (Outcome.STALE, Outcome.REFUSED), f"{current}->{new} must not apply"


def test_terminal_states_never_move() -> None:
    for current in TERMINAL:
        for new in S:
            assert transition(current, new) is not Outcome.APPLIED


def test_played_before_received_still_ends_played() -> None:
    assert transition(S.SENT, S.PLAYED) is Outcome.APPLIED
    assert transition(S.PLAYED, S.DELIVERED) is Outcome.STALE
    assert transition(S.PLAYED, S.PLAYING) is Outcome.STALE


def test_late_progress_after_an_ending_is_stale_not_an_error() -> None:
    assert transition(S.CANCELED, S.PLAYED) is Outcome.STALE
    assert transition(S.EXPIRED, S.DELIVERED) is Outcome.STALE


def test_leaving_one_ending_for_another_is_refused() -> None:
    assert transition(S.PLAYED, S.FAILED) is Outcome.REFUSED
    assert transition(S.CANCELED, S.PREEMPTED) is Outcome.REFUSED


def test_every_ack_stage_maps_to_a_state() -> None:
    assert set(ACK_TO_STATE) == set(AckStage) - {AckStage.DONE}, "done answers operations only"
