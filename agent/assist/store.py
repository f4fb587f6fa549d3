"""The assist store: live assisted calls, what their panels showed, and the agents' feedback on suggestions.

:class:`AssistStore` is synchronous and thread-safe (each method opens its own session from the injected
``sessionmaker``). The agent process writes calls and items as its sessions produce them; the server reads them
for the panel's first paint (a panel opened mid-call), the supervisor view and the feedback API; later rooms
(marketing) read the feedback.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from agent.assist.tables import AssistCallRow, AssistFeedbackRow, AssistItemRow
from core.clock import Clock, SystemClock
from core.db import session_scope
from core.errors import InvalidInputError, NotFoundError
from core.events import (
    AnyEvent,
    CallSummarized,
    ComplianceAlert,
    Event,
    IntentDetected,
    SentimentMeasured,
    Suggestion,
    SuggestionFeedback,
    event_from_json,
)
from core.ids import CallId, UserId

__all__ = ["STORED_KINDS", "AssistCall", "AssistStore", "FeedbackRecord"]

STORED_KINDS: tuple[str, ...] = (
    "nlu.intent", "assist.suggestion", "assist.alert", "nlu.sentiment", "assist.summary", "navigator.handoff",
)  # fmt: skip
"""Event kinds kept per call (the panel replays them when opened mid-call)."""


class AssistCall(BaseModel):
    """One assisted call as the supervisor view lists it; times UTC, sentiment in [-1, 1]."""

    model_config = ConfigDict(frozen=True)

    call_id: CallId
    line: str
    lang: str
    customer_id: str | None
    agent_uri: str
    agent_user: str
    started_at: datetime
    ended_at: datetime | None
    sentiment: float | None
    sentiment_trend: float | None
    alerts: int
    supervisor_alerts: int
    suggestions: int
    last_intent: str
    summary: str


class FeedbackRecord(BaseModel):
    """One stored *used* / *dismissed*."""

    model_config = ConfigDict(frozen=True)

    call_id: CallId
    suggestion_id: str
    action: str
    user_id: str
    at: datetime
    question_id: str | None
    script_id: str | None
    product_ids: tuple[str, ...]
    customer_id: str | None


class AssistStore:
    """Reads and writes the assist tables (see the module docstring)."""

    def __init__(self, sessions: sessionmaker[Session], *, clock: Clock | None = None) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()

    # --- calls ------------------------------------------------------------------------------------------------

    def open_call(
        self, call_id: str, *, line: str, lang: str, customer_id: str | None, started_at: datetime | None = None
    ) -> None:
        """Start (or restart, after an agent-process restart) the assist record of a call."""
        with self._session(write=True) as s:
            row = s.get(AssistCallRow, call_id)
            if row is None:
                s.add(
                    AssistCallRow(
                        call_id=call_id,
                        line=line,
                        lang=lang,
                        customer_id=customer_id,
                        started_at=started_at or self._clock.now(),
                    )
                )
            else:
                row.customer_id, row.lang = customer_id, lang

    def set_agent(self, call_id: str, agent_uri: str, agent_user: str) -> None:
        """Record the agent leg's SIP URI and its user part (how the agent's panel finds the call)."""
        with self._session(write=True) as s:
            row = self._call(s, call_id)
            row.agent_uri, row.agent_user = agent_uri[:256], agent_user[:64]

    def close_call(self, call_id: str, *, ended_at: datetime | None = None) -> None:
        """Mark the call ended (idempotent); unknown calls are ignored (a call the agent process never saw)."""
        with self._session(write=True) as s:
            row = s.get(AssistCallRow, call_id)
            if row is not None and row.ended_at is None:
                row.ended_at = ended_at or self._clock.now()

    def get_call(self, call_id: str) -> AssistCall:
        """One call's assist record; raises :class:`NotFoundError`."""
        with self._session() as s:
            return _to_call(self._call(s, call_id))

    def live(self, *, agent_user: str | None = None, limit: int = 200) -> builtins.list[AssistCall]:
        """Calls not ended yet, newest first; only those of ``agent_user`` when given."""
        with self._session() as s:
            query = select(AssistCallRow).where(AssistCallRow.ended_at.is_(None))
            if agent_user is not None:
                query = query.where(AssistCallRow.agent_user == agent_user)
            rows = s.scalars(query.order_by(AssistCallRow.started_at.desc()).limit(limit)).all()
            return [_to_call(r) for r in rows]

    def recent(self, *, limit: int = 50) -> builtins.list[AssistCall]:
        """The latest calls, ended or not, newest first."""
        with self._session() as s:
            rows = s.scalars(select(AssistCallRow).order_by(AssistCallRow.started_at.desc()).limit(limit)).all()
            return [_to_call(r) for r in rows]

    # --- items ------------------------------------------------------------------------------------------------

    def add_events(self, events: Sequence[Event]) -> int:
        """Keep the panel events among ``events`` and update their calls' counters; returns how many were kept.

        Events of calls with no assist record are skipped (the call was never opened here).
        """
        kept = 0
        with self._session(write=True) as s:
            for event in events:
                kind = getattr(event, "kind", "")
                if kind not in STORED_KINDS:
                    continue
                row = s.get(AssistCallRow, str(getattr(event, "call_id", "")))
                if row is None:
                    continue
                _count(row, event)
                item_id = getattr(event, "suggestion_id", "") or getattr(event, "alert_id", "")
                s.add(
                    AssistItemRow(
                        call_id=row.call_id,
                        kind=kind,
                        item_id=item_id,
                        at=event.at,
                        event=event.model_dump(mode="json"),
                    )
                )
                kept += 1
        return kept

    def events(self, call_id: str, *, kinds: Sequence[str] = STORED_KINDS) -> builtins.list[AnyEvent]:
        """The call's stored panel events in order (empty for an unknown call)."""
        with self._session() as s:
            rows = s.scalars(
                select(AssistItemRow)
                .where(AssistItemRow.call_id == call_id, AssistItemRow.kind.in_(tuple(kinds)))
                .order_by(AssistItemRow.id)
            ).all()
            return [event_from_json(_json(r.event)) for r in rows]

    def suggestion(self, suggestion_id: str) -> Suggestion:
        """A suggestion that was shown; raises :class:`NotFoundError`."""
        with self._session() as s:
            row = s.scalars(
                select(AssistItemRow).where(
                    AssistItemRow.item_id == suggestion_id, AssistItemRow.kind == "assist.suggestion"
                )
            ).first()
            if row is None:
                raise NotFoundError("unknown suggestion", suggestion_id=suggestion_id)
            event = event_from_json(_json(row.event))
            assert isinstance(event, Suggestion)
            return event

    # --- feedback ---------------------------------------------------------------------------------------------

    def add_feedback(self, suggestion_id: str, action: str, user_id: str) -> SuggestionFeedback:
        """Store an agent's *used* / *dismissed* on a shown suggestion; the event to publish.

        Raises :class:`NotFoundError` for an unknown suggestion and :class:`InvalidInputError` for another action.
        Giving the same feedback twice stores it once.
        """
        if action not in ("used", "dismissed"):
            raise InvalidInputError("feedback action must be 'used' or 'dismissed'", action=action)
        shown = self.suggestion(suggestion_id)
        with self._session(write=True) as s:
            call = s.get(AssistCallRow, shown.call_id)
            duplicate = s.scalars(
                select(AssistFeedbackRow).where(
                    AssistFeedbackRow.suggestion_id == suggestion_id,
                    AssistFeedbackRow.action == action,
                    AssistFeedbackRow.user_id == user_id,
                )
            ).first()
            if duplicate is None:
                s.add(
                    AssistFeedbackRow(
                        call_id=shown.call_id,
                        suggestion_id=suggestion_id,
                        action=action,
                        user_id=user_id,
                        at=self._clock.now(),
                        question_id=shown.question_id,
                        script_id=shown.script_id,
                        product_ids=list(shown.product_ids),
                        customer_id=call.customer_id if call else None,
                    )
                )
        return SuggestionFeedback(
            call_id=shown.call_id,
            suggestion_id=suggestion_id,
            action="used" if action == "used" else "dismissed",
            user_id=UserId(user_id),
            question_id=shown.question_id,
            script_id=shown.script_id,
            product_ids=shown.product_ids,
        )

    def feedback(
        self, *, call_id: str | None = None, since: datetime | None = None, limit: int = 1000
    ) -> builtins.list[FeedbackRecord]:
        """Stored feedback, oldest first, for one call or since a time."""
        with self._session() as s:
            query = select(AssistFeedbackRow)
            if call_id is not None:
                query = query.where(AssistFeedbackRow.call_id == call_id)
            if since is not None:
                query = query.where(AssistFeedbackRow.at >= since)
            rows = s.scalars(query.order_by(AssistFeedbackRow.id).limit(limit)).all()
            return [
                FeedbackRecord(
                    call_id=CallId(r.call_id),
                    suggestion_id=r.suggestion_id,
                    action=r.action,
                    user_id=r.user_id,
                    at=r.at,
                    question_id=r.question_id,
                    script_id=r.script_id,
                    product_ids=tuple(r.product_ids or ()),
                    customer_id=r.customer_id,
                )
                for r in rows
            ]

    def feedback_counts(self) -> dict[str, int]:
        """Stored feedback per action (for metrics and reports)."""
        with self._session() as s:
            rows = s.execute(select(AssistFeedbackRow.action, func.count()).group_by(AssistFeedbackRow.action))
            return {action: int(n) for action, n in rows}

    # --- internals --------------------------------------------------------------------------------------------

    @staticmethod
    def _call(s: Session, call_id: str) -> AssistCallRow:
        row = s.get(AssistCallRow, call_id)
        if row is None:
            raise NotFoundError("unknown assisted call", call_id=call_id)
        return row

    @contextmanager
    def _session(self, *, write: bool = False) -> Iterator[Session]:
        with session_scope(self._sessions, write=write) as s:
            yield s


def _count(row: AssistCallRow, event: Event) -> None:
    if isinstance(event, Suggestion):
        row.suggestions += 1
    elif isinstance(event, ComplianceAlert):
        if event.audience == "supervisor":
            row.supervisor_alerts += 1
        else:
            row.alerts += 1
    elif isinstance(event, SentimentMeasured) and event.leg == "customer":
        row.sentiment, row.sentiment_trend = event.score, event.trend
    elif isinstance(event, IntentDetected) and event.question_id is not None:
        row.last_intent = event.label[:256]
    elif isinstance(event, CallSummarized):
        row.summary = event.text


def _json(data: object) -> str:
    return json.dumps(data)


def _to_call(r: AssistCallRow) -> AssistCall:
    return AssistCall(
        call_id=CallId(r.call_id),
        line=r.line,
        lang=r.lang,
        customer_id=r.customer_id,
        agent_uri=r.agent_uri,
        agent_user=r.agent_user,
        started_at=r.started_at,
        ended_at=r.ended_at,
        sentiment=r.sentiment,
        sentiment_trend=r.sentiment_trend,
        alerts=r.alerts,
        supervisor_alerts=r.supervisor_alerts,
        suggestions=r.suggestions,
        last_intent=r.last_intent,
        summary=r.summary,
    )
