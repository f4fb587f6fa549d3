"""Sentiment cues and the dissatisfaction decision (cue lexicon with fixed model scores; the shipped models are
exercised in tests/integration/test_sentiment_models.py)."""

from __future__ import annotations

import pytest

from nlu.sentiment import LexiconSentiment, find_cues

pytestmark = pytest.mark.unit


def _scorer(zh: float = 0.0, en: float = 0.0) -> LexiconSentiment:
    return LexiconSentiment(models={"zh": lambda _t: zh, "en": lambda _t: en})


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("你们再这样我就去金融监管总局投诉", "regulator"),
        ("我要打12378", "regulator"),
        ("I'll take this to the ombudsman", "regulator"),
        ("我要投诉你们这个客服", "complaint"),
        ("I want to make a complaint about your agent", "complaint"),
        ("叫你们领导来接电话", "escalation"),
        ("put your supervisor on the line", "escalation"),
        ("你们这服务太差了", "anger"),
        ("this is RIDICULOUS", "anger"),
        ("what is going on!!", "anger"),
        ("这是我第三次打电话了", "repeat_contact"),
        ("this is the third time I'm calling", "repeat_contact"),
        ("我要销户", "churn"),
        ("I'm going to switch banks", "churn"),
    ],
)
def test_each_cue_kind_is_found_and_makes_the_caller_dissatisfied(text: str, kind: str) -> None:
    cues = find_cues(text)
    assert kind in {c.kind for c in cues}
    cue = next(c for c in cues if c.kind == kind)
    assert text[cue.start : cue.end] == cue.text
    assert _scorer().score(text).dissatisfied


def test_language_is_detected_and_the_model_score_counts() -> None:
    result = _scorer(en=-0.8).score("that is not what I asked for")
    assert result.lang == "en" and result.model_score == -0.8 and result.dissatisfied and result.label == "negative"
    assert _scorer(zh=0.9).score("好的").lang == "zh"
    happy = _scorer(en=0.7).score("great service, thank you")
    assert not happy.dissatisfied and happy.label == "positive"


def test_requests_and_questions_about_complaining_are_not_complaints() -> None:
    scorer = _scorer(zh=-1.0, en=-0.6)
    for text in (
        "请问投诉流程是什么",
        "how do I file a complaint",
        "我想修改一下绑定的手机号",
        "I need to report a lost card",
    ):
        result = scorer.score(text)
        assert not result.dissatisfied, text
    assert scorer.score("我要投诉").dissatisfied


def test_empty_text_is_neutral() -> None:
    result = _scorer(en=-1.0).score("   ")
    assert (result.score, result.dissatisfied, result.cues) == (0.0, False, ())
