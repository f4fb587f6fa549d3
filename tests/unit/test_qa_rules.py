"""The QA rules on hand-made transcripts, Chinese and English: each rule fires where it should and not elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.errors import ConfigError
from nlu.sentiment import LexiconSentiment
from qa.inspector import Inspector
from qa.models import CallTranscript, Finding, RecordingMeta, Turn, Word
from qa.rules_base import PriorCall, span_ms
from qa.rules_config import RULE_IDS, load_rules
from qa.rules_context import spoken_digit_runs

pytestmark = pytest.mark.unit

RULES = load_rules()
NAMES = {
    "LN-CAR": ("Car Purchase Loan", "个人汽车消费贷款"),
    "CC-PLAT": ("Voxdesk Platinum Credit Card", "沃思德白金卡"),
}


def t(channel: str, text: str, start_s: float, end_s: float, lang: str = "en") -> Turn:
    return Turn(channel, text, int(start_s * 1000), int(end_s * 1000), lang)  # type: ignore[arg-type]


def call(*turns: Turn | None, duration_s: float | None = None, lang: str = "en") -> CallTranscript:
    """The turns given; ``None`` stands for the closing, 1 s after the previous turn."""
    filled: list[Turn] = []
    for turn in turns:
        filled.append(turn if turn is not None else closing(filled[-1].end_ms / 1000 + 1))
    end = duration_s if duration_s is not None else max(x.end_ms for x in filled) / 1000 + 1
    return CallTranscript(tuple(filled), int(end * 1000), lang)  # type: ignore[arg-type]


GREETING = t("agent", "Good morning, Voxdesk Demo Bank, this is Anna speaking, how can I help you?", 0.5, 6)


def closing(at_s: float) -> Turn:
    return t(
        "agent", "Is there anything else I can help you with today? Thank you for calling, goodbye.", at_s, at_s + 5
    )


def findings(transcript: CallTranscript, meta: RecordingMeta | None = None, history: object = None) -> list[Finding]:
    inspector = Inspector(RULES, sentiment=LexiconSentiment(models={}), product_names=NAMES)
    return list(inspector.inspect(transcript, meta or RecordingMeta("c1"), history))  # type: ignore[arg-type]


def rules_of(fs: list[Finding]) -> list[str]:
    return sorted(f.rule_id for f in fs)


def test_a_clean_call_has_no_findings() -> None:
    fs = findings(
        call(
            GREETING,
            t("customer", "Hi, what are your branch opening hours on Saturday?", 5, 8),
            t("agent", "Our branches open from nine to five on Saturdays.", 9, 12),
            t("customer", "Great, thanks.", 13, 14),
            None,
        )
    )
    assert fs == []


def test_forbidden_phrases_but_not_negated_mentions() -> None:
    fs = findings(
        call(
            GREETING,
            t("agent", "This fund has guaranteed returns, you can't lose.", 6, 10),
            t("agent", "To be clear, this product is not risk free and there are no guaranteed returns.", 11, 16),
            t("agent", "这个理财稳赚不赔。", 17, 19, "zh"),
            t("agent", "Investments carry risk and the value can go down as well as up.", 20, 24),
            None,
        )
    )
    forbidden = [f for f in fs if f.rule_id == "forbidden_phrase"]
    assert [f.detail.split(":")[1] for f in forbidden] == ["guaranteed returns", "you can't lose", "稳赚不赔"]
    assert all(f.channel == "agent" and f.severity == "critical" for f in forbidden)
    assert "disclosure_missing" not in rules_of(fs)


def test_asr_near_miss_of_a_forbidden_phrase_is_found() -> None:
    fs = findings(call(GREETING, t("agent", "It comes with a garanteed profit every year.", 6, 9), None))
    assert [f.rule_id for f in fs] == ["forbidden_phrase"]


def test_missing_greeting_and_closing() -> None:
    fs = findings(
        call(
            t("agent", "Yes. What do you want?", 0.5, 3),
            t("customer", "My card hours.", 3, 5),
            t("agent", "Nine to five.", 6, 9),
        )
    )
    assert rules_of(fs) == ["closing_missing", "greeting_missing"]


def test_identity_required_for_account_details_and_must_come_first() -> None:
    missing = findings(call(GREETING, t("agent", "Your balance is three thousand yuan.", 6, 9), None))
    assert rules_of(missing) == ["identity_missing"]
    late = findings(
        call(
            GREETING,
            t("agent", "Your balance is three thousand yuan.", 6, 9),
            t("agent", "Before we go on, may I verify your identity with your date of birth?", 10, 14),
            None,
        )
    )
    assert rules_of(late) == ["script_order"]
    ok = findings(
        call(
            GREETING,
            t("agent", "First I need to verify your identity. Can you confirm your date of birth?", 7, 13),
            t("agent", "Thank you. Your balance is three thousand yuan.", 14, 18),
            None,
        )
    )
    assert ok == []


def test_disclosure_required_for_investment_products() -> None:
    fs = findings(call(GREETING, t("agent", "Our bond fund pays around three percent a year.", 6, 10), None))
    assert rules_of(fs) == ["disclosure_missing"]
    zh = findings(
        call(
            t("agent", "您好欢迎致电沃思德银行，请问有什么可以帮您？", 0.5, 3, "zh"),
            t("agent", "这款理财产品年化大约百分之三。理财非存款，产品有风险，投资需谨慎。", 5, 10, "zh"),
            t("agent", "感谢您的来电，再见。", 12, 14, "zh"),
            lang="zh",
        )
    )
    assert zh == []


def test_long_silence_is_owned_by_who_breaks_it() -> None:
    fs = findings(
        call(
            GREETING,
            t("customer", "Can you check my last payment?", 5, 7),
            t("agent", "Let me check that for you.", 7.5, 9),
            t("agent", "Thank you for holding.", 19, 20.5),  # 10 s dead air, the customer waits for the agent
            t("agent", "Are you still there?", 21, 22),
            t("customer", "Yes, sorry.", 40, 41),  # 18 s, the agent waits for the customer
            None,
        )
    )
    silences = [(f.channel, round((f.end_ms - f.start_ms) / 1000)) for f in fs if f.rule_id == "long_silence"]
    assert silences == [("agent", 10), ("customer", 18)]


def test_overlong_call_and_speech_rate() -> None:
    words = " ".join(["word"] * 120)  # 120 words in 30 s = 240 words per minute
    fs = findings(call(GREETING, t("agent", words, 10, 40), None, duration_s=400))
    assert "overlong_call" in rules_of(fs)
    rate = next(f for f in fs if f.rule_id == "speech_rate")
    assert rate.channel == "agent" and "words/min" in rate.evidence


def test_talk_over_needs_a_real_overlap() -> None:
    fs = findings(
        call(
            GREETING,
            t("customer", "I was charged twice for the same purchase last week and", 5, 10),
            t("agent", "Yes yes I understand, let me stop you there.", 7, 11),  # 3 s over the customer
            t("customer", "Okay and the second thing is about my card limit.", 12, 16),
            t("agent", "Mm.", 15.6, 15.9),  # a short backchannel
            None,
        )
    )
    over = [f for f in fs if f.rule_id == "talk_over"]
    assert len(over) == 1 and over[0].start_ms == 7000 and over[0].channel == "agent"


def test_agent_emotion_and_customer_complaint() -> None:
    fs = findings(
        call(
            GREETING,
            t("customer", "This is unacceptable, I want to make a complaint about your staff.", 5, 9),
            t("agent", "I already told you, listen to me.", 10, 12),
            t("customer", "我要投诉你们。", 13, 15, "zh"),
            t("customer", "How do I make a complaint? I'm just asking about the process.", 16, 19),
            None,
        )
    )
    assert rules_of([f for f in fs if f.rule_id in ("agent_emotion", "customer_complaint")]) == [
        "agent_emotion",
        "customer_complaint",
        "customer_complaint",
    ]
    # the two customer turns after the agent's reply are one stretch: one finding over both
    second = [f for f in fs if f.rule_id == "customer_complaint"][1]
    assert second.start_ms == 13000 and second.end_ms > 16000 and second.evidence == "我要投诉你们。"


def test_agent_warnings_and_empathy_are_not_anger() -> None:
    fs = findings(
        call(
            GREETING,
            t("customer", "Someone called me pretending to be the bank.", 7, 10),
            t("agent", "That sounds like a scam, please never share your code with anyone.", 11, 15),
            t("agent", "I understand how frustrating this is, that must be frustrating.", 16, 19),
            t("agent", "This is ridiculous, you are useless!!", 20, 23),
            None,
        )
    )
    angry = [f for f in fs if f.rule_id == "agent_emotion"]
    assert [f.start_ms for f in angry] == [20000]


def test_missed_marketing_unless_the_agent_offers_the_product() -> None:
    need = t("customer", "We are buying a car next month, so I'm watching my spending.", 5, 9)
    missed = findings(call(GREETING, need, t("agent", "I understand.", 10, 11), None))
    f = next(f for f in missed if f.rule_id == "missed_marketing")
    assert f.detail.startswith("car_purchase:") and "buying a car" in f.evidence
    offered = findings(
        call(GREETING, need, t("agent", "We have a car loan with a good rate, shall I tell you more?", 10, 14), None)
    )
    assert "missed_marketing" not in rules_of(offered)
    negated = findings(call(GREETING, t("customer", "I'm not buying a car.", 5, 7), None))
    assert "missed_marketing" not in rules_of(negated)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Your card number is 4111 1111 1111 1111, correct?", "card"),
        ("So that's four one one one, one one one one, one one one one, one one one one.", "card"),
        ("您的身份证号是11010519491231002X对吧", "id"),
        ("your phone is 138 0013 8000", "phone"),
        ("I'll call you back on +1 415 555 0100.", "phone"),
    ],
)
def test_agent_reading_out_pii(text: str, kind: str) -> None:
    fs = findings(call(GREETING, t("agent", text, 6, 10), None))
    pii = [f for f in fs if f.rule_id == "agent_pii"]
    assert [f.detail for f in pii] == [kind]
    assert "1111 1111" not in pii[0].evidence and "0013" not in pii[0].evidence  # the quote itself is masked


def test_partial_numbers_and_amounts_are_not_pii() -> None:
    fs = findings(
        call(
            GREETING,
            t("agent", "The card ending in 1234 was charged 2,500 yuan on the 15th; your reference is 20261.", 6, 10),
            None,
        )
    )
    assert "agent_pii" not in rules_of(fs)


def test_spoken_digit_runs() -> None:
    runs = list(spoken_digit_runs("double four five six, seven oh one two and 99"))
    assert [r.digits for r in runs] == ["44567012"]


def test_repeat_calls_take_the_tightest_window() -> None:
    now = datetime(2026, 12, 1, 10, tzinfo=UTC)

    class History:
        def __init__(self, hours_ago: float) -> None:
            self.at = now - timedelta(hours=hours_ago)

        def prior_calls(self, phone: str, before: datetime, within_hours: float) -> list[PriorCall]:
            return [PriorCall("earlier", self.at)] if before - self.at <= timedelta(hours=within_hours) else []

    meta = RecordingMeta("c2", customer_phone="+8613800138000", started_at=now)
    transcript = call(GREETING, None)
    assert [(f.rule_id, f.severity) for f in findings(transcript, meta, History(5))] == [("repeat_call", "major")]
    assert [(f.rule_id, f.severity) for f in findings(transcript, meta, History(50))] == [("repeat_call", "minor")]
    assert findings(transcript, meta, History(100)) == []


def test_call_reason_from_the_customers_opening_turns() -> None:
    def intent(text: str) -> tuple[str | None, float]:
        return ("card.lost", 0.9) if "lost" in text else (None, 0.1)

    inspector = Inspector(RULES, intent=intent)
    transcript = call(GREETING, t("customer", "Hello, I think I lost my credit card yesterday.", 5, 8), None)
    reason = [f for f in inspector.inspect(transcript, RecordingMeta("c3")) if f.rule_id == "call_reason"]
    assert [(f.detail, f.severity, f.channel) for f in reason] == [("card.lost", "info", "customer")]
    unknown = inspector.inspect(call(GREETING, t("customer", "Hmm, well.", 5, 6), None), RecordingMeta("c4"))
    assert [f.detail for f in unknown if f.rule_id == "call_reason"] == ["unknown"]


def test_word_times_locate_a_phrase() -> None:
    words = (Word(" It", 1000, 1200), Word(" is", 1200, 1400), Word(" risk", 1400, 1700), Word(" free.", 1700, 2100))
    turn = Turn("agent", "It is risk free.", 1000, 2100, "en", words)
    assert span_ms(turn, 6, 15) == (1400, 2100)


def test_every_finding_carries_a_known_rule_id() -> None:
    fs = findings(
        call(t("agent", "Your balance is 5 yuan. Guaranteed returns!", 0, 3), t("customer", "Terrible service.", 4, 6))
    )
    assert fs and all(f.rule_id in RULE_IDS for f in fs)


def test_bad_rules_files_name_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("silence:\n  agent_max_s: -3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"silence\.agent_max_s"):
        load_rules(bad)
    bad.write_text("required:\n  steps:\n    - {id: x, rule: nonsense, phrases: {en: [hi]}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown rule"):
        load_rules(bad)
    bad.write_text("forbidden: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_rules(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_rules(tmp_path / "missing.yaml")
