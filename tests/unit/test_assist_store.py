"""The assist store on in-memory SQLite: assisted calls, the panel's events and counters, and the agents' feedback."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import StaticPool

import agent.assist.tables  # noqa: F401  (registers the assist tables on the shared Base)
from agent.assist.store import AssistStore
from core.db import Base
from core.errors import InvalidInputError, NotFoundError
from core.events import (
    CallSummarized,
    ComplianceAlert,
    FinalTranscript,
    IntentDetected,
    SentimentMeasured,
    SuggestedProduct,
    Suggestion,
    SuggestionFeedback,
)
from core.ids import CallId, ProductId, QuestionId, ScriptId, UserId
from core.testing import FakeClock

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CALL = CallId("call-store-1")
OTHER = CallId("call-store-2")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(clock: FakeClock) -> Iterator[AssistStore]:
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    Base.metadata.create_all(engine)
    try:
        yield AssistStore(sessionmaker(engine, expire_on_commit=False), clock=clock)
    finally:
        engine.dispose()


def _suggestion(suggestion_id: str = "sug-1", call_id: CallId = CALL) -> Suggestion:
    return Suggestion(
        at=T0,
        call_id=call_id,
        suggestion_id=suggestion_id,
        question_id=QuestionId("cards.report_lost_card"),
        question_title="How do I report a lost card?",
        script_id=ScriptId("answer.cards.report_lost_card"),
        script_version=3,
        script_title="Lost card",
        script_text="I can block the card for you right now.",
        product_ids=(ProductId("T-CC-PLAT"),),
        products=(
            SuggestedProduct(
                product_id=ProductId("T-CC-PLAT"),
                name_zh="白金信用卡",
                name_en="Platinum Credit Card",
                category="credit_card",
                reason_en="upgrade on replacement",
            ),
        ),
        reason="asked about: How do I report a lost card?; risk C3",
        score=0.91,
        lang="en",
        start_ms=1_000,
        end_ms=2_500,
    )


def _alert(alert_id: str, audience: str = "agent") -> ComplianceAlert:
    return ComplianceAlert(
        at=T0,
        call_id=CALL,
        rule_id="agent.promises.guaranteed_return",
        severity="critical",
        message="Never promise returns.",
        start_ms=3_000,
        end_ms=4_000,
        alert_id=alert_id,
        quote="guaranteed to make money",
        audience=audience,
        leg="agent" if audience == "agent" else "customer",
    )


def _intent(question_id: str | None, label: str) -> IntentDetected:
    return IntentDetected(
        at=T0,
        call_id=CALL,
        question_id=QuestionId(question_id) if question_id else None,
        label=label,
        score=0.9,
        text="...",
    )


def _open(store: AssistStore, call_id: str = CALL, *, customer_id: str | None = "C-1", at: datetime = T0) -> None:
    store.open_call(call_id, line="95500", lang="zh", customer_id=customer_id, started_at=at)


# --- calls ----------------------------------------------------------------------------------------------------


def test_open_set_agent_live_and_close(store: AssistStore, clock: FakeClock) -> None:
    _open(store)
    _open(store, OTHER, customer_id=None, at=T0 + timedelta(minutes=1))
    store.set_agent(CALL, '"Agent" <sip:agent101@pbx.bank.local>', "agent101")

    call = store.get_call(CALL)
    assert (call.call_id, call.line, call.lang, call.customer_id) == (CALL, "95500", "zh", "C-1")
    assert (call.agent_uri, call.agent_user) == ('"Agent" <sip:agent101@pbx.bank.local>', "agent101")
    assert call.started_at == T0 and call.ended_at is None
    assert (call.alerts, call.supervisor_alerts, call.suggestions, call.last_intent, call.summary) == (0, 0, 0, "", "")
    assert call.sentiment is None and call.sentiment_trend is None

    assert [c.call_id for c in store.live()] == [OTHER, CALL]  # newest first
    assert [c.call_id for c in store.live(agent_user="agent101")] == [CALL]
    assert store.live(agent_user="agent999") == []

    clock.advance(90)
    store.close_call(CALL)
    assert store.get_call(CALL).ended_at == T0 + timedelta(seconds=90)
    assert [c.call_id for c in store.live()] == [OTHER]
    assert store.live(agent_user="agent101") == []
    assert [c.call_id for c in store.recent()] == [OTHER, CALL]  # ended calls stay in the recent list


def test_close_is_idempotent_and_ignores_unknown_calls(store: AssistStore) -> None:
    _open(store)
    store.close_call(CALL, ended_at=T0 + timedelta(minutes=5))
    store.close_call(CALL, ended_at=T0 + timedelta(minutes=9))
    assert store.get_call(CALL).ended_at == T0 + timedelta(minutes=5)
    store.close_call("call-never-opened")  # no error


def test_reopening_a_call_updates_customer_and_language_only(store: AssistStore) -> None:
    _open(store, customer_id=None)
    store.set_agent(CALL, "sip:agent101@pbx", "agent101")
    store.open_call(CALL, line="other", lang="en", customer_id="C-9", started_at=T0 + timedelta(hours=1))
    call = store.get_call(CALL)
    assert (call.customer_id, call.lang) == ("C-9", "en")
    assert (call.line, call.started_at, call.agent_user) == ("95500", T0, "agent101")
    assert len(store.recent()) == 1


def test_unknown_call_raises_not_found(store: AssistStore) -> None:
    with pytest.raises(NotFoundError):
        store.get_call("nope")
    with pytest.raises(NotFoundError):
        store.set_agent("nope", "sip:a@b", "a")


def test_long_agent_uri_and_user_are_cut_to_the_columns(store: AssistStore) -> None:
    _open(store)
    store.set_agent(CALL, "sip:" + "a" * 400 + "@pbx", "u" * 100)
    call = store.get_call(CALL)
    assert len(call.agent_uri) == 256 and len(call.agent_user) == 64


# --- events and counters ---------------------------------------------------------------------------------------


def test_add_events_keeps_panel_events_and_updates_the_counters(store: AssistStore) -> None:
    _open(store)
    events = [
        FinalTranscript(at=T0, call_id=CALL, leg="customer", text="I lost my card", start_ms=0, end_ms=900),
        _intent("cards.report_lost_card", "How do I report a lost card?"),
        _suggestion("sug-1"),
        _alert("al-1"),
        _alert("al-2"),
        _alert("al-3", audience="supervisor"),
        SentimentMeasured(at=T0, call_id=CALL, leg="customer", score=-0.6, trend=-0.4, label="negative"),
        SentimentMeasured(at=T0, call_id=CALL, leg="agent", score=0.9, trend=0.9, label="positive"),
        _intent(None, "out_of_scope"),  # does not replace the last real intent
        _suggestion("sug-2"),
        CallSummarized(at=T0, call_id=CALL, text="Card reported lost."),
        _suggestion("sug-x", call_id=CallId("call-not-opened")),  # skipped
    ]

    assert store.add_events(events) == 10  # not the transcript, not the unknown call's card

    call = store.get_call(CALL)
    assert call.suggestions == 2
    assert (call.alerts, call.supervisor_alerts) == (2, 1)
    assert (call.sentiment, call.sentiment_trend) == (-0.6, -0.4)  # the customer's, not the agent's
    assert call.last_intent == "How do I report a lost card?"
    assert call.summary == "Card reported lost."


def test_counters_add_up_over_several_batches(store: AssistStore) -> None:
    _open(store)
    store.add_events([_suggestion("a"), _alert("x")])
    store.add_events([_suggestion("b"), _intent("deposits.time_deposit_rates", "Deposit rates")])
    call = store.get_call(CALL)
    assert (call.suggestions, call.alerts, call.last_intent) == (2, 1, "Deposit rates")


def test_events_round_trip_in_order(store: AssistStore) -> None:
    _open(store)
    _open(store, OTHER)
    mine = [
        _intent("cards.report_lost_card", "How do I report a lost card?"),
        _suggestion("sug-1"),
        _alert("al-1"),
        SentimentMeasured(at=T0, call_id=CALL, leg="customer", score=0.1, trend=0.1, label="neutral", start_ms=10),
        CallSummarized(at=T0, call_id=CALL, reason="lost card", products=(ProductId("T-CC-PLAT"),), text="Done."),
    ]
    store.add_events([mine[0], _suggestion("other", call_id=OTHER), *mine[1:]])

    assert store.events(CALL) == mine
    assert store.events(CALL, kinds=("assist.suggestion", "assist.alert")) == mine[1:3]
    assert store.events(OTHER) == [_suggestion("other", call_id=OTHER)]
    assert store.events("unknown") == []


def test_suggestion_by_id(store: AssistStore) -> None:
    _open(store)
    store.add_events([_suggestion("sug-1"), _alert("al-1")])
    assert store.suggestion("sug-1") == _suggestion("sug-1")
    with pytest.raises(NotFoundError):
        store.suggestion("al-1")  # an alert's id is not a suggestion
    with pytest.raises(NotFoundError):
        store.suggestion("missing")


# --- feedback -------------------------------------------------------------------------------------------------


def test_add_feedback_returns_the_event_and_stores_it_once(store: AssistStore, clock: FakeClock) -> None:
    _open(store)
    store.add_events([_suggestion("sug-1")])

    event = store.add_feedback("sug-1", "used", "agent101")
    assert event == SuggestionFeedback(
        at=event.at,
        call_id=CALL,
        suggestion_id="sug-1",
        action="used",
        user_id=UserId("agent101"),
        question_id=QuestionId("cards.report_lost_card"),
        script_id=ScriptId("answer.cards.report_lost_card"),
        product_ids=(ProductId("T-CC-PLAT"),),
    )
    clock.advance(5)
    again = store.add_feedback("sug-1", "used", "agent101")
    assert again.action == "used" and again.suggestion_id == "sug-1"  # the event is still returned

    records = store.feedback(call_id=CALL)
    assert len(records) == 1
    record = records[0]
    assert (record.call_id, record.suggestion_id, record.action, record.user_id) == (CALL, "sug-1", "used", "agent101")
    assert record.at == T0  # the first one's time
    assert (record.question_id, record.script_id, record.product_ids) == (
        "cards.report_lost_card",
        "answer.cards.report_lost_card",
        ("T-CC-PLAT",),
    )
    assert record.customer_id == "C-1"


def test_feedback_is_unique_per_suggestion_action_and_user(store: AssistStore) -> None:
    _open(store)
    store.add_events([_suggestion("sug-1"), _suggestion("sug-2")])
    store.add_feedback("sug-1", "used", "agent101")
    store.add_feedback("sug-1", "dismissed", "agent101")
    store.add_feedback("sug-1", "used", "supervisor7")
    store.add_feedback("sug-2", "used", "agent101")
    store.add_feedback("sug-2", "used", "agent101")
    assert [(r.suggestion_id, r.action, r.user_id) for r in store.feedback()] == [
        ("sug-1", "used", "agent101"),
        ("sug-1", "dismissed", "agent101"),
        ("sug-1", "used", "supervisor7"),
        ("sug-2", "used", "agent101"),
    ]
    assert store.feedback_counts() == {"used": 3, "dismissed": 1}


def test_feedback_on_an_unknown_suggestion_or_with_a_bad_action(store: AssistStore) -> None:
    _open(store)
    store.add_events([_suggestion("sug-1")])
    with pytest.raises(NotFoundError):
        store.add_feedback("missing", "used", "agent101")
    with pytest.raises(InvalidInputError):
        store.add_feedback("sug-1", "liked", "agent101")
    assert store.feedback() == [] and store.feedback_counts() == {}


def test_feedback_filtered_by_call_and_time(store: AssistStore, clock: FakeClock) -> None:
    _open(store)
    _open(store, OTHER, customer_id=None)
    store.add_events([_suggestion("sug-1"), _suggestion("sug-9", call_id=OTHER)])
    store.add_feedback("sug-1", "dismissed", "agent101")
    clock.advance(60)
    store.add_feedback("sug-9", "used", "agent102")

    assert [r.suggestion_id for r in store.feedback(call_id=CALL)] == ["sug-1"]
    other = store.feedback(call_id=OTHER)
    assert [r.suggestion_id for r in other] == ["sug-9"] and other[0].customer_id is None
    assert [r.suggestion_id for r in store.feedback(since=T0 + timedelta(seconds=30))] == ["sug-9"]
    assert [r.suggestion_id for r in store.feedback(limit=1)] == ["sug-1"]
    assert store.feedback(call_id="unknown") == []
