"""One assisted call: what the agent's panel should show, from the call's transcripts.

An :class:`AssistSession` is synchronous and single-threaded per call (the hub hands it one event at a time, on a
worker thread). For each **customer** final it classifies the intent (reusing the classification of an identical
partial when one was pre-fetched), emits :class:`~core.events.IntentDetected`, scores sentiment (supervisor
alerts) and builds at most one :class:`~core.events.Suggestion`, which it de-duplicates (the same question is not
suggested again while its card is visible, nor within ``repeat_after_ms`` of call time), rate-limits (at most
``max_per_minute`` new cards per 60 s of call time, beyond which only a card that outranks the weakest visible one
gets through) and ranks (:meth:`AssistSession.visible`). For each **agent** final it runs the compliance monitor.
Customer **partials** pre-fetch the intent and the question's answer and products, so the final only has to build
the card when its text matches.

Times are call milliseconds (``start_ms``/``end_ms`` of the transcripts); the session reads no clock.
"""

from __future__ import annotations

import re
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from agent.assist.suggest import PreparedAnswer, SuggestionEngine
from core.events import (
    ComplianceAlert,
    Event,
    FinalTranscript,
    IntentDetected,
    Lang,
    PartialTranscript,
    Suggestion,
    SuggestionFeedback,
)
from core.ids import CallId, QuestionId
from nlu.intents import IntentResult
from profiles.models import Customer

__all__ = ["AssistConfig", "AssistSession", "CallTranscriptLog", "ComplianceMonitor", "MoodTracker"]

_NORMALISE = re.compile(r"[\s\W_]+", re.UNICODE)


class ComplianceMonitor(Protocol):
    """Checks the agent's speech (see :mod:`agent.assist.compliance`)."""

    def check(self, final: FinalTranscript) -> list[ComplianceAlert]: ...

    def note_customer(self, final: FinalTranscript) -> None: ...

    def note_products(self, product_ids: Sequence[str]) -> None: ...


class MoodTracker(Protocol):
    """Follows the customer's sentiment (see :mod:`agent.assist.mood`)."""

    def observe(self, final: FinalTranscript) -> list[Event]: ...


@dataclass(frozen=True)
class AssistConfig:
    """Behaviour of the suggestion stream on the panel (call ms)."""

    max_visible: int = 3
    """Cards kept visible; older ones drop off."""
    repeat_after_ms: int = 120_000
    """The same question is suggested again only this long after its last card."""
    max_per_minute: int = 6
    """New cards per 60 s of call time before only better-ranked ones get through."""
    prefetch: bool = True
    """Classify customer partials ahead of the final."""


@dataclass
class CallTranscriptLog:
    """What happened in the call, for the post-call summary."""

    utterances: list[FinalTranscript] = field(default_factory=list)
    intents: list[IntentDetected] = field(default_factory=list)
    suggestions: list[Suggestion] = field(default_factory=list)
    alerts: list[ComplianceAlert] = field(default_factory=list)
    used: set[str] = field(default_factory=set)
    """Suggestion ids the agent marked *used*."""
    dismissed: set[str] = field(default_factory=set)


def normalise(text: str) -> str:
    """Text compared between a partial and its final: lower case, no spaces or punctuation."""
    return _NORMALISE.sub("", text.lower())


class AssistSession:
    """The assist state of one call (see the module docstring)."""

    def __init__(
        self,
        call_id: CallId,
        *,
        engine: SuggestionEngine,
        lang: Lang,
        customer: Customer | None,
        monitor: ComplianceMonitor | None = None,
        mood: MoodTracker | None = None,
        config: AssistConfig | None = None,
        auto_lang: bool = False,
    ) -> None:
        self.call_id = call_id
        self.lang: Lang = lang
        self.customer = customer
        self.config = config or AssistConfig()
        self.log = CallTranscriptLog()
        self.agent_uri: str | None = None
        self.prefetch_hits = 0
        """Finals whose classification came from a pre-fetched partial."""
        self._engine = engine
        self._monitor = monitor
        self._mood = mood
        self._auto_lang = auto_lang
        self._visible: deque[Suggestion] = deque()
        self._last_shown: dict[QuestionId, int] = {}
        self._recent: deque[int] = deque()  # end_ms of recent new cards, for the rate limit
        self._classified: OrderedDict[str, IntentResult] = OrderedDict()
        self._prepared: dict[str, PreparedAnswer | None] = {}
        self._prefetched: set[str] = set()  # texts classified from partials

    # --- input ------------------------------------------------------------------------------------------------

    def on_partial(self, partial: PartialTranscript) -> None:
        """Pre-fetch for a customer partial: classify it and prepare its question (CPU, tens of ms)."""
        if partial.leg != "customer" or not self.config.prefetch:
            return
        key = normalise(partial.text)
        if not key or key in self._classified:
            return
        result = self._engine.classify(partial.text)
        self._remember(key, result)
        self._prefetched.add(key)
        if result.label is not None:
            self._prepare(result.label)

    def on_final(self, final: FinalTranscript) -> list[Event]:
        """Events for one final transcript: intent, suggestion, sentiment and alerts (in that order)."""
        if not final.text.strip():
            return []
        self.log.utterances.append(final)
        if self._auto_lang and final.lang is not None and final.leg == "customer":
            self.lang = final.lang
        if final.leg == "customer":
            return self._customer_final(final)
        if final.leg == "agent" and self._monitor is not None:
            alerts = self._monitor.check(final)
            self.log.alerts.extend(alerts)
            return list(alerts)
        return []

    def on_feedback(self, feedback: SuggestionFeedback) -> None:
        """The agent marked a card *used* or *dismissed*: a dismissed card leaves the visible list."""
        if feedback.action == "used":
            self.log.used.add(feedback.suggestion_id)
            return
        self.log.dismissed.add(feedback.suggestion_id)
        self._visible = deque(s for s in self._visible if s.suggestion_id != feedback.suggestion_id)

    # --- output -----------------------------------------------------------------------------------------------

    def visible(self) -> list[Suggestion]:
        """The cards on the panel, best first: score, then the newest."""
        ranked = sorted(enumerate(self._visible), key=lambda item: (-item[1].score, -item[0]))
        return [s for _, s in ranked]

    # --- internals --------------------------------------------------------------------------------------------

    def _customer_final(self, final: FinalTranscript) -> list[Event]:
        events: list[Event] = []
        key = normalise(final.text)
        result = self._classified.get(key)
        if result is None:
            result = self._engine.classify(final.text)
            self._remember(key, result)
        elif key in self._prefetched:
            self.prefetch_hits += 1
        label = result.label
        prepared = self._prepare(label) if label is not None else None
        if prepared is None:
            label = None  # the question left the library since the classifier was fitted: out of scope
        top = result.top[0] if result.top else None
        intent = IntentDetected(
            call_id=self.call_id,
            question_id=QuestionId(label) if label else None,
            label=self._title(prepared) if prepared else "out_of_scope",
            score=round(top.confidence, 4) if top else 0.0,
            text=final.text,
        )
        events.append(intent)
        self.log.intents.append(intent)
        suggestion = self._engine.build(
            self.call_id,
            result,
            prepared,
            customer=self.customer,
            lang=self.lang,
            start_ms=final.start_ms,
            end_ms=final.end_ms,
        )
        if suggestion is not None and self._admit(suggestion, final.end_ms):
            events.append(suggestion)
            self.log.suggestions.append(suggestion)
            if self._monitor is not None:
                self._monitor.note_products(suggestion.product_ids)
        if self._monitor is not None:
            self._monitor.note_customer(final)
        if self._mood is not None:
            mood_events = self._mood.observe(final)
            self.log.alerts.extend(e for e in mood_events if isinstance(e, ComplianceAlert))
            events.extend(mood_events)
        return events

    def _title(self, prepared: PreparedAnswer) -> str:
        q = prepared.question
        return q.text_zh if self.lang == "zh" else q.text_en

    def _remember(self, key: str, result: IntentResult) -> None:
        self._classified[key] = result
        self._classified.move_to_end(key)
        while len(self._classified) > 32:
            dropped, _ = self._classified.popitem(last=False)
            self._prefetched.discard(dropped)

    def _prepare(self, question_id: str) -> PreparedAnswer | None:
        if question_id not in self._prepared:
            self._prepared[question_id] = self._engine.prepare(question_id)
        return self._prepared[question_id]

    def _admit(self, suggestion: Suggestion, now_ms: int) -> bool:
        """De-duplicate, rate-limit and keep the visible list; whether the card is shown."""
        qid = suggestion.question_id
        if qid is not None:
            if any(s.question_id == qid for s in self._visible):
                return False
            last = self._last_shown.get(qid)
            if last is not None and now_ms - last < self.config.repeat_after_ms:
                return False
        while self._recent and now_ms - self._recent[0] >= 60_000:
            self._recent.popleft()
        if len(self._recent) >= self.config.max_per_minute:
            weakest = min((s.score for s in self._visible), default=1.0)
            if suggestion.score <= weakest:
                return False
        self._recent.append(now_ms)
        if qid is not None:
            self._last_shown[qid] = now_ms
        self._visible.append(suggestion)
        while len(self._visible) > self.config.max_visible:
            self._visible.popleft()
        return True
