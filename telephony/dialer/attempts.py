"""Dial attempts as explicit states, and when to try a contact again.

Every attempt is a database row that moves only along :data:`TRANSITIONS`, each move in its own transaction
(the store checks the move with :func:`check_move`)::

    queued ─▶ dialing ─▶ ringing ─▶ answered ─▶ completed | voicemail | abandoned | failed
       │         │          │
       │         └──────────┴─▶ busy | no_answer | failed | cancelled
       └─▶ cancelled                 (any live state ─▶ interrupted, after a crash)

``dialing`` is written *before* the INVITE is sent. After a crash or restart, an attempt found in ``dialing``,
``ringing`` or ``answered`` may or may not have reached the callee, so it is never dialed again. It is closed as
``interrupted``, counted as an attempt, and the contact gets a new attempt per the retry schedule. No number is
dialed twice and no attempt is lost. Pure; any thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final

from core.errors import ConflictError

__all__ = [
    "FINAL_STATES",
    "LIVE_STATES",
    "RETRY_OUTCOMES",
    "TRANSITIONS",
    "AttemptState",
    "RetryPolicy",
    "check_move",
]


class AttemptState(StrEnum):
    """Where one dial attempt is."""

    QUEUED = "queued"
    DIALING = "dialing"
    RINGING = "ringing"
    ANSWERED = "answered"
    COMPLETED = "completed"
    """Answered by a person, and the campaign's dialog ran (its outcome fields say how it went)."""
    VOICEMAIL = "voicemail"
    """Answered by a machine (answering-machine detection); a message was left or the call hung up."""
    ABANDONED = "abandoned"
    """Answered, but no agent was free for a campaign that connects to agents; the information message played."""
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    """Rang out: the dialer's own ring timer and CANCEL, or a 480/408/487 from the network."""
    FAILED = "failed"
    """Refused or broken: 4xx/5xx/6xx other than busy, no media, a media worker lost."""
    CANCELLED = "cancelled"
    """Not placed, or stopped while ringing, because the campaign was stopped."""
    INTERRUPTED = "interrupted"
    """The dialer stopped (crash, restart) while the attempt was live; never dialed again."""


LIVE_STATES: Final = frozenset({AttemptState.DIALING, AttemptState.RINGING, AttemptState.ANSWERED})
FINAL_STATES: Final = frozenset(set(AttemptState) - LIVE_STATES - {AttemptState.QUEUED})
_ENDED_BEFORE_ANSWER: Final = {
    AttemptState.BUSY,
    AttemptState.NO_ANSWER,
    AttemptState.FAILED,
    AttemptState.CANCELLED,
    AttemptState.INTERRUPTED,
}
TRANSITIONS: Final[Mapping[AttemptState, frozenset[AttemptState]]] = {
    AttemptState.QUEUED: frozenset({AttemptState.DIALING, AttemptState.CANCELLED}),
    AttemptState.DIALING: frozenset({AttemptState.RINGING, AttemptState.ANSWERED, *_ENDED_BEFORE_ANSWER}),
    AttemptState.RINGING: frozenset({AttemptState.ANSWERED, *_ENDED_BEFORE_ANSWER}),
    AttemptState.ANSWERED: frozenset(
        {
            AttemptState.COMPLETED,
            AttemptState.VOICEMAIL,
            AttemptState.ABANDONED,
            AttemptState.FAILED,
            AttemptState.INTERRUPTED,
        }
    ),
    **{s: frozenset() for s in FINAL_STATES},
}
RETRY_OUTCOMES: Final = frozenset(
    {
        AttemptState.BUSY,
        AttemptState.NO_ANSWER,
        AttemptState.VOICEMAIL,
        AttemptState.FAILED,
        AttemptState.ABANDONED,
        AttemptState.INTERRUPTED,
    }
)
"""Outcomes after which the contact may be tried again (within its attempts)."""


def check_move(current: AttemptState, new: AttemptState) -> None:
    """Raise :class:`ConflictError` unless ``current → new`` is a move of :data:`TRANSITIONS`."""
    if new not in TRANSITIONS[current]:
        raise ConflictError(f"a dial attempt cannot go from {current} to {new}", state=str(current))


def _default_delays() -> dict[AttemptState, timedelta]:
    return {
        AttemptState.BUSY: timedelta(minutes=10),
        AttemptState.NO_ANSWER: timedelta(hours=1),
        AttemptState.VOICEMAIL: timedelta(hours=4),
        AttemptState.FAILED: timedelta(minutes=30),
        AttemptState.ABANDONED: timedelta(hours=1),
        AttemptState.INTERRUPTED: timedelta(minutes=30),
    }


@dataclass(frozen=True)
class RetryPolicy:
    """How often a contact is tried, and how long to wait after each outcome."""

    max_attempts: int = 3
    delays: Mapping[AttemptState, timedelta] = field(default_factory=_default_delays)
    """Wait after an outcome of :data:`RETRY_OUTCOMES`; an outcome missing here is not retried."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        wrong = [s for s in self.delays if s not in RETRY_OUTCOMES]
        if wrong or any(d < timedelta(0) for d in self.delays.values()):
            raise ValueError(f"retry delays are for {sorted(RETRY_OUTCOMES)} and must be ≥ 0")

    @classmethod
    def from_minutes(cls, max_attempts: int, retry_minutes: Mapping[str, float] | None) -> RetryPolicy:
        """The policy of a campaign's config: ``retry_minutes`` maps outcome names (``busy``, ``no_answer``, …)
        to minutes; empty or missing means the default delays. Raises :class:`ValueError` for an unknown outcome,
        one that is not retried, or a negative delay."""
        if not retry_minutes:
            return cls(max_attempts=max_attempts)
        delays = {AttemptState(k): timedelta(minutes=float(v)) for k, v in retry_minutes.items()}
        return cls(max_attempts=max_attempts, delays=delays)

    def retry_at(self, outcome: AttemptState, ended_at: datetime, attempts: int) -> datetime | None:
        """When to try again after ``outcome`` (at ``ended_at``, with ``attempts`` placed so far), or ``None``
        when the contact is done: a final outcome, no delay configured, or no attempts left. The calling
        window is applied afterwards (the dialer moves the time to the next opening)."""
        if outcome not in RETRY_OUTCOMES or outcome not in self.delays or attempts >= self.max_attempts:
            return None
        return ended_at + self.delays[outcome]
