"""One assisted call's session: intent then card for customer finals, the agent's speech to the compliance monitor,
de-duplication, the rate limit, the visible list and its ranking, feedback, partial pre-fetch and language."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import count

import pytest

from agent.assist.compliance import AgentSpeechMonitor
from agent.assist.session import AssistConfig, AssistSession, normalise
from agent.assist.suggest import SuggestionEngine
from agent.testing import ScriptedIntents, answer_scripts, sample_customer
from core.events import (
    ComplianceAlert,
    Event,
    FinalTranscript,
    IntentDetected,
    Lang,
    Leg,
    PartialTranscript,
    SentimentMeasured,
    Suggestion,
    SuggestionFeedback,
)
from core.ids import CallId, UserId
from knowledge.library import Question
from knowledge.testing import FakeProductCatalog, FakeQuestionLibrary, sample_products, sample_questions

pytestmark = pytest.mark.unit

CALL = CallId("call-session")
LOST = "cards.report_lost_card"
RATES = "deposits.time_deposit_rates"
LIMIT = "transfers.transfer_limit"  # no answer script, no products: never a card


def _extra(question_id: str, zh: str, en: str) -> Question:
    category = question_id.split(".")[0]
    return Question(
        question_id=question_id,
        category=category,
        skill_group="retail",
        text_zh=zh,
        text_en=en,
        answer_script_id=f"answer.{question_id}",
    )


QUESTIONS = [
    *sample_questions(),
    _extra("accounts.open_account", "怎么开户", "How do I open an account?"),
    _extra("digital.reset_login", "网银密码忘了", "I forgot my online banking password"),
]

RULES = [
    ("lost", LOST, 0.9),
    ("挂失", LOST, 0.9),
    ("deposit rate", RATES, 0.8),
    ("transfer limit", LIMIT, 0.95),
    ("open an account", "accounts.open_account", 0.7),
    ("online banking", "digital.reset_login", 0.6),
    ("mumble", RATES, 0.2),  # under the engine's confidence threshold
]


def _engine(intents: ScriptedIntents) -> SuggestionEngine:
    ids = count(1)
    return SuggestionEngine(
        intents=intents,
        library=FakeQuestionLibrary(QUESTIONS),
        scripts=answer_scripts(QUESTIONS),
        catalog=FakeProductCatalog(sample_products()),
        new_id=lambda: f"s{next(ids)}",
    )


@dataclass
class RecordingMonitor:
    """A compliance monitor that answers every agent final with one alert and records what it was told."""

    checked: list[FinalTranscript] = field(default_factory=list)
    customer: list[FinalTranscript] = field(default_factory=list)
    products: list[tuple[str, ...]] = field(default_factory=list)

    def check(self, final: FinalTranscript) -> list[ComplianceAlert]:
        self.checked.append(final)
        return [
            ComplianceAlert(
                call_id=final.call_id,
                rule_id="test.rule",
                severity="warning",
                message="checked",
                start_ms=final.start_ms,
                end_ms=final.end_ms,
                alert_id=f"a{len(self.checked)}",
            )
        ]

    def note_customer(self, final: FinalTranscript) -> None:
        self.customer.append(final)

    def note_products(self, product_ids: Sequence[str]) -> None:
        self.products.append(tuple(product_ids))


@dataclass
class ScriptedMood:
    """A mood tracker that reports a sentiment for every customer final, and a supervisor alert on "angry"."""

    seen: list[str] = field(default_factory=list)

    def observe(self, final: FinalTranscript) -> list[Event]:
        self.seen.append(final.text)
        out: list[Event] = [
            SentimentMeasured(call_id=final.call_id, leg=final.leg, score=-0.5, trend=-0.5, label="negative")
        ]
        if "angry" in final.text:
            out.append(
                ComplianceAlert(
                    call_id=final.call_id,
                    rule_id="customer.dissatisfied",
                    severity="warning",
                    message="unhappy customer",
                    leg="customer",
                    audience="supervisor",
                )
            )
        return out


@pytest.fixture
def intents() -> ScriptedIntents:
    return ScriptedIntents(RULES)


def _session(
    intents: ScriptedIntents,
    *,
    lang: Lang = "en",
    config: AssistConfig | None = None,
    monitor: RecordingMonitor | AgentSpeechMonitor | None = None,
    mood: ScriptedMood | None = None,
    auto_lang: bool = False,
) -> AssistSession:
    return AssistSession(
        CALL,
        engine=_engine(intents),
        lang=lang,
        customer=sample_customer(tier="platinum"),
        monitor=monitor,
        mood=mood,
        config=config,
        auto_lang=auto_lang,
    )


def _final(text: str, at_ms: int, leg: Leg = "customer", lang: Lang | None = None) -> FinalTranscript:
    return FinalTranscript(call_id=CALL, leg=leg, text=text, start_ms=at_ms - 1_500, end_ms=at_ms, lang=lang)


def _partial(text: str, at_ms: int, leg: Leg = "customer") -> PartialTranscript:
    return PartialTranscript(call_id=CALL, leg=leg, text=text, start_ms=at_ms - 1_000, end_ms=at_ms)


def _cards(events: list[Event]) -> list[Suggestion]:
    return [e for e in events if isinstance(e, Suggestion)]


def _intent(events: list[Event]) -> IntentDetected:
    first = events[0]
    assert isinstance(first, IntentDetected)
    return first


def _lang(session: AssistSession) -> str:
    return session.lang


def _card_questions(session: AssistSession) -> list[str | None]:
    return [s.question_id for s in session.visible()]


# --- customer finals ------------------------------------------------------------------------------------------


def test_customer_final_gives_intent_then_suggestion(intents: ScriptedIntents) -> None:
    session = _session(intents)
    events = session.on_final(_final("I lost my card yesterday", 5_000))

    assert [type(e) for e in events] == [IntentDetected, Suggestion]
    intent, card = events
    assert isinstance(intent, IntentDetected) and isinstance(card, Suggestion)
    assert (intent.call_id, intent.question_id, intent.label, intent.score, intent.text) == (
        CALL,
        LOST,
        "How do I report a lost card?",
        0.9,
        "I lost my card yesterday",
    )
    assert card.question_id == LOST and card.script_id == "answer.cards.report_lost_card"
    assert card.product_ids == ("T-CC-PLAT",)  # platinum customer, 40, on sale
    assert (card.start_ms, card.end_ms, card.lang) == (3_500, 5_000, "en")
    assert session.visible() == [card]
    assert session.log.intents == [intent] and session.log.suggestions == [card]
    assert intents.calls == ["I lost my card yesterday"]


def test_out_of_scope_and_unsure_finals_give_an_intent_only(intents: ScriptedIntents) -> None:
    session = _session(intents)
    oos = session.on_final(_final("what a lovely day", 1_000))
    assert len(oos) == 1 and isinstance(oos[0], IntentDetected)
    assert (oos[0].question_id, oos[0].label, oos[0].score) == (None, "out_of_scope", 0.0)

    unsure = session.on_final(_final("mumble mumble", 2_000))
    assert len(unsure) == 1 and isinstance(unsure[0], IntentDetected)
    assert (unsure[0].question_id, unsure[0].score) == (RATES, 0.2)

    nothing_to_say = session.on_final(_final("what is my transfer limit", 3_000))
    assert [type(e) for e in nothing_to_say] == [IntentDetected]
    assert session.visible() == [] and session.log.suggestions == []


def test_mood_events_follow_the_card_and_supervisor_alerts_are_logged(intents: ScriptedIntents) -> None:
    mood = ScriptedMood()
    session = _session(intents, mood=mood)
    events = session.on_final(_final("I lost my card and I am angry", 2_000))
    assert [type(e) for e in events] == [IntentDetected, Suggestion, SentimentMeasured, ComplianceAlert]
    assert session.log.alerts == [events[3]]
    assert mood.seen == ["I lost my card and I am angry"]


def test_empty_finals_are_ignored(intents: ScriptedIntents) -> None:
    monitor, mood = RecordingMonitor(), ScriptedMood()
    session = _session(intents, monitor=monitor, mood=mood)
    assert session.on_final(_final("", 1_000)) == []
    assert session.on_final(_final("   \n", 2_000)) == []
    assert session.on_final(_final(" ", 3_000, leg="agent")) == []
    assert intents.calls == [] and monitor.checked == [] and mood.seen == []
    assert session.log.utterances == []


# --- agent finals ---------------------------------------------------------------------------------------------


def test_agent_final_goes_to_the_monitor_only(intents: ScriptedIntents) -> None:
    monitor = RecordingMonitor()
    session = _session(intents, monitor=monitor)
    agent = _final("I lost track, let me check your deposit rate", 4_000, leg="agent")

    events = session.on_final(agent)

    assert monitor.checked == [agent]
    assert len(events) == 1 and isinstance(events[0], ComplianceAlert) and events[0].alert_id == "a1"
    assert session.log.alerts == events
    assert intents.calls == []  # the agent's words are never classified
    assert session.visible() == [] and session.log.utterances == [agent]


def test_customer_finals_and_card_products_are_noted_by_the_monitor(intents: ScriptedIntents) -> None:
    monitor = RecordingMonitor()
    session = _session(intents, monitor=monitor)
    lost, again = _final("I lost my card", 1_000), _final("I lost my card again", 2_000)
    session.on_final(lost)
    session.on_final(again)  # de-duplicated: no card, so no products noted
    assert monitor.customer == [lost, again]
    assert monitor.products == [("T-CC-PLAT",)]
    assert monitor.checked == []


def test_bot_finals_are_logged_but_produce_nothing(intents: ScriptedIntents) -> None:
    monitor = RecordingMonitor()
    session = _session(intents, monitor=monitor)
    assert session.on_final(_final("I lost my card", 1_000, leg="bot")) == []
    assert monitor.checked == [] and intents.calls == [] and len(session.log.utterances) == 1


def test_real_agent_speech_monitor_alerts_on_a_promised_return(intents: ScriptedIntents) -> None:
    session = _session(intents, lang="zh", monitor=AgentSpeechMonitor(sample_products(), lang="zh"))
    assert session.on_final(_final("您好，请问有什么可以帮您", 1_000, leg="agent")) == []
    events = session.on_final(_final("这款理财稳赚不赔，您放心买", 5_000, leg="agent"))
    assert events and all(isinstance(e, ComplianceAlert) for e in events)
    assert "agent.promises.guaranteed_return" in {e.rule_id for e in events if isinstance(e, ComplianceAlert)}
    assert all(e.leg == "agent" and e.audience == "agent" for e in events if isinstance(e, ComplianceAlert))
    assert session.log.alerts == events


# --- de-duplication, rate limit, visible list -----------------------------------------------------------------


def test_same_question_not_suggested_again_while_its_card_is_visible(intents: ScriptedIntents) -> None:
    session = _session(intents)
    assert _cards(session.on_final(_final("I lost my card", 1_000)))
    # long after repeat_after_ms, but the card is still on the panel
    again = session.on_final(_final("I lost my card, hello?", 500_000))
    assert [type(e) for e in again] == [IntentDetected]
    assert len(session.visible()) == 1


def test_same_question_suggested_again_only_after_repeat_after_ms(intents: ScriptedIntents) -> None:
    session = _session(intents, config=AssistConfig(repeat_after_ms=120_000))
    first = _cards(session.on_final(_final("I lost my card", 10_000)))[0]
    session.on_feedback(_feedback(first, "dismissed"))
    assert session.visible() == []

    assert _cards(session.on_final(_final("I lost my card!", 129_999))) == []  # 119.999 s later
    again = _cards(session.on_final(_final("I lost my card!!", 130_000)))  # exactly 120 s later
    assert len(again) == 1 and again[0].question_id == LOST and again[0].suggestion_id != first.suggestion_id


def test_rate_limit_lets_only_a_better_card_through(intents: ScriptedIntents) -> None:
    config = AssistConfig(max_per_minute=2, max_visible=5)
    session = _session(intents, config=config)
    assert _cards(session.on_final(_final("deposit rate please", 1_000)))  # 0.8
    assert _cards(session.on_final(_final("open an account", 2_000)))  # 0.7
    # two cards in this minute: a third only if it beats the weakest visible card (0.7)
    assert _cards(session.on_final(_final("online banking", 3_000))) == []  # 0.6
    assert _cards(session.on_final(_final("lost", 4_000)))  # 0.9 > 0.7
    assert _card_questions(session) == [LOST, RATES, "accounts.open_account"]
    # 60 s after the first two cards the window has room again, even for a weak card
    assert _cards(session.on_final(_final("online banking", 61_999))) == []  # card 1 (1 s) gone, 2 s & 4 s remain
    assert _cards(session.on_final(_final("online banking", 62_000)))


def test_rate_limit_refuses_an_equal_score(intents: ScriptedIntents) -> None:
    session = _session(
        ScriptedIntents([("a", RATES, 0.7), ("b", "accounts.open_account", 0.7), ("c", LOST, 0.7)]),
        config=AssistConfig(max_per_minute=2),
    )
    assert _cards(session.on_final(_final("a", 1_000)))
    assert _cards(session.on_final(_final("b", 2_000)))
    assert _cards(session.on_final(_final("c", 3_000))) == []


def test_max_visible_keeps_the_last_n_cards(intents: ScriptedIntents) -> None:
    session = _session(intents, config=AssistConfig(max_visible=2))
    for i, text in enumerate(["deposit rate", "open an account", "online banking"]):
        assert _cards(session.on_final(_final(text, 1_000 * (i + 1))))
    assert _card_questions(session) == ["accounts.open_account", "digital.reset_login"]
    assert len(session.log.suggestions) == 3


def test_a_card_that_dropped_off_is_not_repeated_before_repeat_after_ms(intents: ScriptedIntents) -> None:
    session = _session(intents, config=AssistConfig(max_visible=1, repeat_after_ms=60_000))
    assert _cards(session.on_final(_final("deposit rate", 1_000)))
    assert _cards(session.on_final(_final("lost", 2_000)))  # pushes the deposit card off the panel
    assert _cards(session.on_final(_final("deposit rate", 30_000))) == []
    assert _cards(session.on_final(_final("deposit rate", 61_000)))


def test_visible_ranks_by_score_then_newest(intents: ScriptedIntents) -> None:
    session = _session(
        ScriptedIntents(
            [("one", RATES, 0.6), ("two", "accounts.open_account", 0.9), ("three", "digital.reset_login", 0.6)]
        ),
        config=AssistConfig(max_visible=5),
    )
    for i, text in enumerate(["one", "two", "three"]):
        session.on_final(_final(text, 1_000 * (i + 1)))
    assert _card_questions(session) == ["accounts.open_account", "digital.reset_login", RATES]
    assert [s.score for s in session.visible()] == [0.9, 0.6, 0.6]


# --- feedback -------------------------------------------------------------------------------------------------


def _feedback(card: Suggestion, action: str) -> SuggestionFeedback:
    return SuggestionFeedback(
        call_id=CALL,
        suggestion_id=card.suggestion_id,
        action=action,
        user_id=UserId("agent101"),
    )


def test_dismissed_feedback_removes_the_card_and_used_keeps_it(intents: ScriptedIntents) -> None:
    session = _session(intents, config=AssistConfig(max_visible=5))
    rates = _cards(session.on_final(_final("deposit rate", 1_000)))[0]
    lost = _cards(session.on_final(_final("lost", 2_000)))[0]

    session.on_feedback(_feedback(lost, "used"))
    assert session.visible() == [lost, rates] and session.log.used == {lost.suggestion_id}

    session.on_feedback(_feedback(rates, "dismissed"))
    assert session.visible() == [lost] and session.log.dismissed == {rates.suggestion_id}


# --- partial pre-fetch ----------------------------------------------------------------------------------------


def test_final_matching_a_prefetched_partial_is_not_classified_again(intents: ScriptedIntents) -> None:
    session = _session(intents)
    session.on_partial(_partial("I LOST my card", 2_000))
    assert intents.calls == ["I LOST my card"]

    events = session.on_final(_final("I lost my card.", 2_500))

    assert intents.calls == ["I LOST my card"]  # unchanged: the partial's classification was reused
    assert session.prefetch_hits == 1
    assert [type(e) for e in events] == [IntentDetected, Suggestion]
    assert _intent(events).text == "I lost my card."


def test_repeated_partials_are_classified_once(intents: ScriptedIntents) -> None:
    session = _session(intents)
    session.on_partial(_partial("deposit rate", 1_000))
    session.on_partial(_partial("Deposit rate!", 1_200))
    session.on_partial(_partial("   ", 1_300))  # nothing to classify
    assert intents.calls == ["deposit rate"]


def test_final_that_differs_from_the_partial_is_classified(intents: ScriptedIntents) -> None:
    session = _session(intents)
    session.on_partial(_partial("I lost", 1_000))
    session.on_final(_final("I lost my card", 2_000))
    assert intents.calls == ["I lost", "I lost my card"] and session.prefetch_hits == 0


@pytest.mark.parametrize(
    ("leg", "config"), [("agent", AssistConfig()), ("bot", AssistConfig()), ("customer", AssistConfig(prefetch=False))]
)
def test_partials_of_other_legs_or_with_prefetch_off_are_not_classified(
    intents: ScriptedIntents, leg: Leg, config: AssistConfig
) -> None:
    session = _session(intents, config=config)
    session.on_partial(_partial("I lost my card", 1_000, leg=leg))
    assert intents.calls == []
    session.on_final(_final("I lost my card", 2_000))
    assert session.prefetch_hits == 0 and intents.calls == ["I lost my card"]


def test_normalise_ignores_case_spaces_and_punctuation() -> None:
    assert normalise("I lost, my CARD!") == normalise("i lost my card") == "ilostmycard"
    assert normalise("我的卡 丢了！") == normalise("我的卡丢了") == "我的卡丢了"


# --- language -------------------------------------------------------------------------------------------------


def test_auto_lang_follows_the_customers_final(intents: ScriptedIntents) -> None:
    session = _session(intents, lang="zh", auto_lang=True)
    zh = session.on_final(_final("我的卡挂失", 1_000, lang="zh"))
    assert _intent(zh).label == "信用卡丢了怎么挂失"

    session.on_final(_final("deposit rate", 2_000, leg="agent", lang="en"))  # agent's language does not count
    assert session.lang == "zh"

    events = session.on_final(_final("what is the deposit rate", 3_000, lang="en"))
    assert _lang(session) == "en"
    card = _cards(events)[0]
    assert card.lang == "en" and card.question_title == "What are your time deposit rates?"
    assert _intent(events).label == "What are your time deposit rates?"

    session.on_final(_final("嗯", 4_000, lang=None))  # no language detected: keep the last one
    assert _lang(session) == "en"


def test_without_auto_lang_the_line_language_stays(intents: ScriptedIntents) -> None:
    session = _session(intents, lang="zh")
    card = _cards(session.on_final(_final("lost card", 1_000, lang="en")))[0]
    assert session.lang == "zh" and card.lang == "zh" and card.question_title == "信用卡丢了怎么挂失"
