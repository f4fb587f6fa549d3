"""Shared pieces of the QA rules: what a rule sees (:class:`RuleContext`), phrase lookup on turns with times.

A rule is a function ``rule(ctx) -> list[Finding]``; :mod:`qa.inspector` runs them all. Everything here is pure
and runs on the inspecting thread (a worker process of the batch).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from nlu.phrases import Phrase, PhraseMatch, PhraseMatcher
from nlu.sentiment import SentimentScorer
from qa.models import CallTranscript, Channel, Finding, RecordingMeta, Turn, Word
from qa.rules_config import Bilingual, RulesConfig

__all__ = [
    "EVIDENCE_CHARS",
    "CallHistory",
    "Hit",
    "IntentFn",
    "PhraseIndex",
    "PriorCall",
    "RuleContext",
    "RuleFn",
    "evidence",
    "party",
    "span_ms",
    "starts_between",
]

EVIDENCE_CHARS = 160
"""Longest evidence quote kept in a finding (characters)."""


@dataclass(frozen=True)
class PriorCall:
    """An earlier call of the same customer, for the repeat-call rule."""

    call_id: str
    started_at: datetime


class CallHistory(Protocol):
    """Earlier calls by phone number (the QA store, or an import's metadata)."""

    def prior_calls(self, phone: str, before: datetime, within_hours: float) -> Sequence[PriorCall]:
        """Calls from ``phone`` that started in the ``within_hours`` (h) before ``before``, newest first."""
        ...


IntentFn = Callable[[str], tuple[str | None, float]]
"""``intent(text) -> (question id or None, confidence in [0, 1])`` over the customer's words."""


@dataclass(frozen=True)
class RuleContext:
    """What every rule may look at for one call."""

    transcript: CallTranscript
    meta: RecordingMeta
    config: RulesConfig
    history: CallHistory | None = None
    intent: IntentFn | None = None
    sentiment: SentimentScorer | None = None
    product_names: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Product id → the names an agent may use for it (catalog names, both languages)."""


RuleFn = Callable[[RuleContext], list[Finding]]


@dataclass(frozen=True)
class Hit:
    """A phrase found in a turn, located in the recording (ms)."""

    turn: Turn
    match: PhraseMatch
    start_ms: int
    end_ms: int
    negated: bool


def span_ms(turn: Turn, start: int, end: int) -> tuple[int, int]:
    """Recording times (ms) of characters ``start:end`` of ``turn.text``, from its word timestamps when they can be
    aligned, else interpolated over the turn."""
    spans: list[tuple[int, int, Word]] = []
    cursor = 0
    text = turn.text
    for word in turn.words:
        piece = word.text.strip()
        if not piece:
            continue
        at = text.find(piece, cursor)
        if at < 0:
            spans = []
            break
        spans.append((at, at + len(piece), word))
        cursor = at + len(piece)
    inside = [w for s, e, w in spans if s < end and start < e]
    if inside:
        return inside[0].start_ms, max(inside[-1].end_ms, inside[0].start_ms)
    length = max(1, len(text))
    dur = turn.duration_ms
    return turn.start_ms + dur * start // length, turn.start_ms + dur * max(end, start + 1) // length


class PhraseIndex:
    """One compiled :class:`PhraseMatcher` over a :class:`Bilingual` phrase list, searched turn by turn."""

    def __init__(self, phrases: Bilingual | Sequence[str], *, tag: str = "", fuzzy: bool = True) -> None:
        texts = phrases.all() if isinstance(phrases, Bilingual) else tuple(phrases)
        self.empty = not texts
        self._matcher = PhraseMatcher([Phrase(t, tag or t) for t in texts], fuzzy=fuzzy)

    def hits(self, turns: Sequence[Turn]) -> list[Hit]:
        """Every occurrence in ``turns`` in time order; ``negated`` tells whether a negation stands before it."""
        if self.empty:
            return []
        found: list[Hit] = []
        for turn in turns:
            for m in self._matcher.find(turn.text):
                t0, t1 = span_ms(turn, m.start, m.end)
                found.append(Hit(turn, m, t0, t1, self._matcher.negated(turn.text, m)))
        return sorted(found, key=lambda h: (h.start_ms, h.end_ms))

    def first(self, turns: Sequence[Turn], *, negated_ok: bool = True) -> Hit | None:
        for hit in self.hits(turns):
            if negated_ok or not hit.negated:
                return hit
        return None


def evidence(turn: Turn, start: int | None = None, end: int | None = None) -> str:
    """A quote for a finding: the turn's text, cut to :data:`EVIDENCE_CHARS` around ``start:end`` when given."""
    text = turn.text.strip()
    if len(text) <= EVIDENCE_CHARS:
        return text
    if start is None:
        return text[: EVIDENCE_CHARS - 1] + "…"
    lo = max(0, min(start - 40, len(text) - EVIDENCE_CHARS))
    return ("…" if lo else "") + text[lo : lo + EVIDENCE_CHARS - 2] + "…"


def party(turns: Sequence[Turn], channel: Channel) -> tuple[Turn, ...]:
    return tuple(t for t in turns if t.channel == channel)


def starts_between(starts: Sequence[int], after_ms: int, before_ms: int) -> bool:
    """Whether any of ``starts`` (the other party's turn starts, ms) falls in ``[after_ms, before_ms)``: used to
    tell one stretch of a party's speech from the next, which the other party's turn separates."""
    return any(after_ms <= s < before_ms for s in starts)
