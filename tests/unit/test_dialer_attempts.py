"""Dial attempts move only along the documented states; retries follow the outcome's delay and the attempts left."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ConflictError
from telephony.dialer.attempts import (
    FINAL_STATES,
    LIVE_STATES,
    RETRY_OUTCOMES,
    TRANSITIONS,
    AttemptState,
    RetryPolicy,
    check_move,
)

pytestmark = pytest.mark.unit
S = AttemptState
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def test_the_happy_path_and_the_refusals() -> None:
    for a, b in [(S.QUEUED, S.DIALING), (S.DIALING, S.RINGING), (S.RINGING, S.ANSWERED), (S.ANSWERED, S.COMPLETED)]:
        check_move(a, b)
    for a, b in [(S.QUEUED, S.ANSWERED), (S.COMPLETED, S.DIALING), (S.BUSY, S.QUEUED), (S.ANSWERED, S.BUSY)]:
        with pytest.raises(ConflictError):
            check_move(a, b)


def test_every_live_state_can_be_interrupted_and_nothing_leaves_a_final_state() -> None:
    assert all(S.INTERRUPTED in TRANSITIONS[s] for s in LIVE_STATES)
    assert all(not TRANSITIONS[s] for s in FINAL_STATES)
    assert set(TRANSITIONS) == set(AttemptState)
    assert S.QUEUED not in {t for targets in TRANSITIONS.values() for t in targets}  # never back to the queue


@given(st.lists(st.sampled_from(list(AttemptState)), max_size=8))
def test_random_event_sequences_stay_on_the_graph(events: list[AttemptState]) -> None:
    state, path = S.QUEUED, [S.QUEUED]
    for new in events:
        try:
            check_move(state, new)
        except ConflictError:
            assert new not in TRANSITIONS[state]
            continue
        state = new
        path.append(new)
    assert path.count(S.DIALING) <= 1  # one attempt is dialed at most once
    assert all(b in TRANSITIONS[a] for a, b in itertools.pairwise(path))


def test_retry_schedule_by_outcome() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.retry_at(S.BUSY, T0, attempts=1) == T0 + timedelta(minutes=10)
    assert policy.retry_at(S.NO_ANSWER, T0, attempts=2) == T0 + timedelta(hours=1)
    assert policy.retry_at(S.INTERRUPTED, T0, attempts=1) == T0 + timedelta(minutes=30)
    assert policy.retry_at(S.NO_ANSWER, T0, attempts=3) is None  # no attempts left
    assert policy.retry_at(S.COMPLETED, T0, attempts=1) is None
    no_voicemail_retry = RetryPolicy(delays={S.BUSY: timedelta(minutes=5)})
    assert no_voicemail_retry.retry_at(S.VOICEMAIL, T0, attempts=1) is None
    assert RETRY_OUTCOMES.isdisjoint({S.COMPLETED, S.CANCELLED})
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(delays={S.COMPLETED: timedelta(minutes=1)})
