"""QA rules on what the recogniser really writes: word times with short pauses, words squeezed into an instant,
acronyms in capitals, and side questions after the call reason."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from nlu.sentiment import LexiconSentiment, find_cues
from qa.inspector import Inspector
from qa.models import CallTranscript, Finding, RecordingMeta, Turn, Word
from qa.rules_config import load_rules
from qa.transcribe_decode import _span_s
from qa.transcribe_parts import drop_echoes, repeat_key

pytestmark = pytest.mark.unit

RULES = load_rules()
GREETING = Turn("agent", "Good morning, Voxdesk Demo Bank, this is Anna speaking, how can I help you?", 500, 6000)
CLOSING = Turn("agent", "Is there anything else I can help you with today? Thank you for calling.", 60_000, 65_000)


def timed(channel: str, *words: tuple[str, int, int]) -> Turn:
    """A turn from ``(word, start_ms, end_ms)``; its text is the words joined."""
    ws = tuple(Word(w, a, b) for w, a, b in words)
    return Turn(channel, " ".join(w for w, _, _ in words), ws[0].start_ms, max(w.end_ms for w in ws), "en", ws)  # type: ignore[arg-type]


def run(*turns: Turn, rules: object = RULES, intent: object = None) -> list[Finding]:
    transcript = CallTranscript((GREETING, *turns, CLOSING), 66_000, "en")
    inspector = Inspector(rules, sentiment=LexiconSentiment(models={}), intent=intent)  # type: ignore[arg-type]
    return list(inspector.inspect(transcript, RecordingMeta("c1")))


def of(rule: str, fs: list[Finding]) -> list[Finding]:
    return [f for f in fs if f.rule_id == rule]


def test_an_interruption_with_short_pauses_is_one_talk_over() -> None:
    customer = timed(
        "customer",
        *[(f"w{i}", 10_000 + 300 * i, 10_000 + 300 * i + 280) for i in range(30)],  # 10.0-19.0 s, no pause
    )
    agent = timed("agent", ("Okay,", 16_600, 17_080), ("okay.", 17_620, 18_080), ("Listen", 18_600, 18_900),
                  ("to", 18_900, 19_100), ("me.", 19_100, 19_400))  # fmt: skip
    over = of("talk_over", run(customer, agent))
    assert len(over) == 1  # no stretch of the agent's words is 1 s long; together they are 1.3 s over the customer
    assert over[0].start_ms == 16_600 and over[0].end_ms == 18_980 and over[0].detail == "1.3"


def test_backchannels_between_the_customers_words_are_no_talk_over() -> None:
    customer = timed("customer", *[(f"w{i}", 10_000 + 300 * i, 10_000 + 300 * i + 280) for i in range(30)])
    agent = timed("agent", ("Mm.", 12_000, 12_300), ("Right.", 13_000, 13_300), ("Yes.", 14_100, 14_400))
    assert of("talk_over", run(customer, agent)) == []


def test_words_squeezed_into_an_instant_do_not_raise_the_speech_rate() -> None:
    normal = [(f"w{i}", 7_000 + 400 * i, 7_000 + 400 * i + 350) for i in range(50)]  # 150 words/min
    agent = timed("agent", *normal)
    echo = timed("agent", *[(f"e{i}", 28_000, 28_000 + (i == 0) * 60) for i in range(40)])  # a decoder echo
    assert of("speech_rate", run(agent)) == []
    assert of("speech_rate", run(agent, echo)) == []


def test_capitals_in_a_transcript_are_not_anger() -> None:
    turn = Turn("agent", "A LIMIT review from us does not count as a new credit application.", 8_000, 12_000)
    assert any(c.typographic for c in find_cues(turn.text))
    assert of("agent_emotion", run(turn)) == []
    loud = RULES.model_copy(update={"emotion": RULES.emotion.model_copy(update={"typographic_cues": True})})
    assert [f.detail for f in of("agent_emotion", run(turn, rules=loud))] == ["anger:LIMIT"]
    assert of("agent_emotion", run(Turn("agent", "Honestly, this is ridiculous.", 8_000, 10_000)))


def test_the_reason_is_the_first_confident_question_not_a_later_side_question() -> None:
    scores = {"register": ("digital.app_registration", 0.5), "close": ("general.branch_hours", 0.95)}

    def intent(text: str) -> tuple[str | None, float]:
        hits = [v for k, v in scores.items() if k in text]
        return max(hits, key=lambda v: v[1]) if hits else (None, 0.05)

    opening = Turn("customer", "Hello, how do I register for mobile banking?", 7_000, 10_000)
    answer = Turn("agent", "Download the app and tap Register.", 11_000, 14_000)
    side = Turn("customer", "And what time does your branch close?", 30_000, 32_000)
    hello = Turn("customer", "Hello.", 6_500, 6_900)
    assert [f.detail for f in of("call_reason", run(opening, answer, side, intent=intent))] == [
        "digital.app_registration"
    ]
    assert [f.detail for f in of("call_reason", run(hello, answer, side, intent=intent))] == ["general.branch_hours"]
    # one request split over two turns before the agent answers is classified whole
    low = Turn("customer", "Deposit rates are so low.", 7_000, 8_500)
    ask = Turn("customer", "Is there something steady that pays a little more?", 9_000, 11_000)
    scores.update({"low": ("deposits.time_deposit_rates", 0.4), "low. Is there": ("wealth.low_risk_options", 0.8)})
    reason = of("call_reason", run(low, ask, answer, intent=intent))
    assert [(f.detail, f.start_ms, f.end_ms) for f in reason] == [("wealth.low_risk_options", 7_000, 11_000)]


def test_decoder_echoes_are_dropped() -> None:
    assert repeat_key("Then enter the code on the back.") == repeat_key(" then enter the code, on the back")
    said = Turn("customer", "I'm not happy with the way you're talking to me.", 31_340, 34_080)
    echo = Turn("customer", "I'm not happy with the way you're talking to me.", 34_380, 34_412)
    again = Turn("customer", "I'm not happy with the way you're talking to me.", 40_000, 43_000)  # said twice
    other = Turn("agent", "I'm not happy with the way you're talking to me.", 34_380, 34_400)  # other party
    assert drop_echoes([said, echo, other, again]) == [said, other, again]
    words = [SimpleNamespace(start=54.184, end=54.252), SimpleNamespace(start=54.252, end=54.252)]
    assert _span_s(SimpleNamespace(words=words, start=53.0, end=56.0)) == pytest.approx(0.068)  # type: ignore[arg-type]
    assert _span_s(SimpleNamespace(words=None, start=1.0, end=2.5)) == pytest.approx(1.5)  # type: ignore[arg-type]
