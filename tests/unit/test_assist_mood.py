"""Customer dissatisfaction tracking: escalation and complaint cues, the EWMA trend, cool-downs (nlu's real
LexiconSentiment with scripted model scores)."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from agent.assist.mood import (
    RULE_COMPLAINT,
    RULE_DISSATISFIED,
    RULE_ESCALATION,
    DissatisfactionTracker,
    MoodConfig,
    classify_cues,
)
from core.errors import ConfigError
from core.events import ComplianceAlert, Event, FinalTranscript, Lang, Leg, SentimentMeasured
from core.ids import CallId
from nlu.sentiment import LexiconSentiment

pytestmark = pytest.mark.unit

CALL = CallId("call-mood")


def _scorer(scores: dict[str, float] | None = None) -> LexiconSentiment:
    """The product's scorer with scripted model scores per exact utterance (0.0 for anything else)."""
    table = scores or {}

    def model(text: str) -> float:
        return table.get(text, 0.0)

    return LexiconSentiment(models={"zh": model, "en": model}, model_weight={"zh": 1.0, "en": 1.0})


def _ids() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: f"alert-{next(counter)}"


def _final(text: str, start_ms: int = 0, *, leg: Leg = "customer", lang: Lang | None = None) -> FinalTranscript:
    return FinalTranscript(call_id=CALL, leg=leg, text=text, start_ms=start_ms, end_ms=start_ms + 1500, lang=lang)


def _alerts(events: list[Event]) -> list[ComplianceAlert]:
    return [e for e in events if isinstance(e, ComplianceAlert)]


def _measured(events: list[Event]) -> SentimentMeasured:
    first = events[0]
    assert isinstance(first, SentimentMeasured)
    return first


def test_regulator_threat_in_chinese_is_a_critical_supervisor_alert() -> None:
    tracker = DissatisfactionTracker(_scorer(), lang="zh", new_id=_ids())
    events = tracker.observe(_final("我要去银保监会投诉你们", 12_000, lang="zh"))
    assert len(events) == 2
    measured = _measured(events)
    assert measured.call_id == CALL and measured.leg == "customer" and measured.start_ms == 12_000
    assert measured.dissatisfied and measured.label == "negative" and measured.score < 0
    (alert,) = _alerts(events)
    assert alert.rule_id == RULE_ESCALATION == "customer.escalation"
    assert alert.severity == "critical"
    assert alert.audience == "supervisor" and alert.leg == "customer"
    assert alert.quote == "我要去银保监会投诉你们"
    assert alert.start_ms == 12_000 and alert.end_ms == 13_500
    assert alert.alert_id == "alert-1"
    assert "监管" in alert.message and "主管" in alert.message  # message in the tracker's language


def test_regulator_threat_in_english_with_english_messages() -> None:
    tracker = DissatisfactionTracker(_scorer(), lang="en")
    (alert,) = _alerts(tracker.observe(_final("I'm going to report this to the regulator", 5_000)))
    assert alert.rule_id == RULE_ESCALATION and alert.severity == "critical"
    assert "regulator" in alert.message and alert.message.isascii()
    assert len(alert.alert_id) == 32  # default id factory: uuid hex


@pytest.mark.parametrize(
    "text",
    ["我要投诉", "这事我一定要投诉", "我要打12378", "再不解决我就发微博曝光你们", "I want to make a formal complaint",
     "my lawyer will hear about this", "I'll go to the consumer association"],
)  # fmt: skip
def test_explicit_complaints_and_outside_bodies_escalate(text: str) -> None:
    (alert,) = _alerts(DissatisfactionTracker(_scorer()).observe(_final(text)))
    assert alert.rule_id == RULE_ESCALATION


@pytest.mark.parametrize(
    "text",
    ["请问怎么投诉", "我想问一下怎么投诉你们", "投诉电话是多少", "how do I make a complaint", "how can I complain"],
)
def test_asking_how_to_complain_raises_nothing(text: str) -> None:
    tracker = DissatisfactionTracker(_scorer())
    events = tracker.observe(_final(text))
    assert len(events) == 1 and not _measured(events).dissatisfied
    assert tracker.alert_counts == {}


@pytest.mark.parametrize("text", ["请问怎么向银保监会投诉", "how do I make a complaint to the ombudsman"])
def test_asking_how_to_complain_to_the_regulator_escalates(text: str) -> None:
    (alert,) = _alerts(DissatisfactionTracker(_scorer()).observe(_final(text)))
    assert alert.rule_id == RULE_ESCALATION


@pytest.mark.parametrize(
    "text",
    ["叫你们领导来接电话", "我要给你们差评", "put your supervisor on the line", "I will complain about this agent"],
)
def test_complaints_and_demands_for_a_manager_warn(text: str) -> None:
    tracker = DissatisfactionTracker(_scorer(), lang="en")
    (alert,) = _alerts(tracker.observe(_final(text)))
    assert alert.rule_id == RULE_COMPLAINT and alert.severity == "warning" and alert.audience == "supervisor"
    assert tracker.alert_counts == {RULE_COMPLAINT: 1}


def test_one_alert_per_utterance_escalation_first() -> None:
    scorer = _scorer()
    text = "叫你们领导来，不然我就去金融监管总局投诉"
    assert classify_cues(text, scorer.score(text)) == RULE_ESCALATION
    events = DissatisfactionTracker(scorer).observe(_final(text))
    assert [a.rule_id for a in _alerts(events)] == [RULE_ESCALATION]


def test_trend_is_an_ewma_and_a_falling_trend_alerts_once_per_cooldown() -> None:
    lines = {
        "that sounds fine so far": 0.5,
        "that is not what I was told": -0.6,
        "this makes no sense to me": -0.8,
        "it is still broken for me": -0.8,
        "I really do not like this": -0.6,
        "this is really bad for me": -0.7,
    }
    tracker = DissatisfactionTracker(_scorer(lines), lang="en", new_id=_ids())
    texts = list(lines)
    times = [0, 10_000, 20_000, 30_000, 60_000, 95_000]
    trends: list[float] = []
    alert_rules: list[list[str]] = []
    for text, at in zip(texts, times, strict=True):
        events = tracker.observe(_final(text, at))
        trends.append(_measured(events).trend)
        alert_rules.append([a.rule_id for a in _alerts(events)])
    expected = [0.5]
    for text in texts[1:]:
        expected.append(0.4 * lines[text] + 0.6 * expected[-1])
    assert trends == pytest.approx(expected, abs=1e-4)
    assert expected[3] <= -0.35 < expected[2]  # the 4th utterance is the first at or below the threshold
    # 4th: first alert; 5th: 30 s later, inside the 60 s cool-down; 6th: 65 s after the first, alerts again.
    assert alert_rules == [[], [], [], [RULE_DISSATISFIED], [], [RULE_DISSATISFIED]]
    assert tracker.alert_counts == {RULE_DISSATISFIED: 2}
    state = tracker.state
    assert state.utterances == 6 and state.negative_utterances == 5
    assert state.last_score == pytest.approx(-0.7) and state.trend == pytest.approx(expected[-1])
    assert state.last_label == "negative"
    assert tracker.trend == state.trend and tracker.last_score == state.last_score


def test_trend_message_carries_the_trend_and_the_language() -> None:
    lines = {"这个方案我觉得不行": -0.6, "还是不行啊真不行": -0.7}
    tracker = DissatisfactionTracker(_scorer(lines), lang="zh")
    tracker.observe(_final("这个方案我觉得不行", 0))
    (alert,) = _alerts(tracker.observe(_final("还是不行啊真不行", 8_000)))
    assert alert.rule_id == RULE_DISSATISFIED and alert.severity == "warning"
    assert "趋势 -0.64" in alert.message


def test_no_trend_alert_on_one_utterance_or_when_the_customer_calms_down() -> None:
    lines = {"this is all wrong": -0.9, "ok that actually helps": 0.3}
    tracker = DissatisfactionTracker(_scorer(lines), lang="en")
    assert _alerts(tracker.observe(_final("this is all wrong", 0))) == []  # trend -0.9, but only one utterance
    events = tracker.observe(_final("ok that actually helps", 5_000))
    assert _measured(events).trend == pytest.approx(-0.42)  # still low, but this utterance is positive
    assert _alerts(events) == []


def test_each_rule_has_its_own_cooldown() -> None:
    tracker = DissatisfactionTracker(_scorer(), config=MoodConfig(cooldown_ms=60_000))
    assert [a.rule_id for a in _alerts(tracker.observe(_final("我要投诉", 0)))] == [RULE_ESCALATION]
    # inside the cool-down: nothing, not even the (by now low) trend alert
    assert _alerts(tracker.observe(_final("我要去金融监管总局投诉", 20_000))) == []
    assert tracker.trend is not None and tracker.trend <= -0.35
    assert [a.rule_id for a in _alerts(tracker.observe(_final("叫你们经理来", 30_000)))] == [RULE_COMPLAINT]
    assert [a.rule_id for a in _alerts(tracker.observe(_final("我要去金融监管总局投诉", 60_000)))] == [RULE_ESCALATION]
    assert tracker.alert_counts == {RULE_ESCALATION: 2, RULE_COMPLAINT: 1}


def test_other_legs_and_empty_utterances_are_ignored() -> None:
    tracker = DissatisfactionTracker(_scorer())
    assert tracker.observe(_final("我要去银保监会投诉", leg="agent")) == []
    assert tracker.observe(_final("   ")) == []
    assert tracker.state.utterances == 0 and tracker.trend is None and tracker.last_score is None


def test_long_quotes_are_trimmed_and_masked() -> None:
    text = "我的卡号是6222021234567890128，" + "你们一直不处理" * 15 + "，我要投诉"
    (alert,) = _alerts(DissatisfactionTracker(_scorer()).observe(_final(text)))
    assert len(alert.quote) == 80 and alert.quote.endswith("…")
    assert "6222021234567890128" not in alert.quote and "622202*********0128" in alert.quote


def test_positive_utterance_is_measured_without_alert() -> None:
    events = DissatisfactionTracker(_scorer()).observe(_final("太好了，谢谢你，很专业"))
    measured = _measured(events)
    assert len(events) == 1 and measured.label == "positive" and not measured.dissatisfied and measured.trend > 0


@pytest.mark.parametrize(
    "kwargs", [{"alpha": 0.0}, {"alpha": 1.5}, {"trend_threshold": -2.0}, {"min_utterances": 0}, {"cooldown_ms": -1}]
)
def test_bad_config_is_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        MoodConfig(**kwargs)  # type: ignore[arg-type]
