"""agent.assist: the live compliance check of the agent's own speech, and its YAML rule set."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from agent.assist.compliance import RULE_DISCLOSURE_MISSING, AgentSpeechMonitor, ComplianceLexicon
from agent.assist.rules import GROUPS, load_rules
from core.errors import ConfigError
from core.events import ComplianceAlert, FinalTranscript, Lang, Leg
from core.ids import CallId
from knowledge.catalog import Product
from knowledge.testing import sample_products

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def lexicon() -> ComplianceLexicon:
    return ComplianceLexicon()


@pytest.fixture(scope="module")
def products() -> list[Product]:
    return sample_products()  # T-DEP-1Y deposit, T-WM-R3 wealth 稳健增利理财, T-FD-R5 fund, T-CC-PLAT card, ...


def monitor(lexicon: ComplianceLexicon, products: list[Product], lang: Lang = "zh") -> AgentSpeechMonitor:
    counter = itertools.count(1)
    return AgentSpeechMonitor(products, lang=lang, rules=lexicon, new_id=lambda: f"a{next(counter)}")


def final(text: str, start_ms: int = 0, leg: Leg = "agent") -> FinalTranscript:
    return FinalTranscript(call_id=CallId("c1"), leg=leg, text=text, start_ms=start_ms, end_ms=start_ms + 1500)


def rule_ids(alerts: list[ComplianceAlert]) -> list[str]:
    return [a.rule_id for a in alerts]


# --- rule set -------------------------------------------------------------------------------------------------


def test_default_rules_are_bilingual_and_complete() -> None:
    rules = load_rules()
    assert all(getattr(rules, group) for group in GROUPS)
    all_rules = [rule for _, rule in rules.rules()]
    assert sum(len(r.phrases) for r in all_rules) >= 40
    assert all(r.id.startswith("agent.") for r in all_rules)
    assert rules.disclosure_alert is not None and rules.disclosure_alert.id == RULE_DISCLOSURE_MISSING
    assert rules.disclosure_alert.severity == "critical"
    guaranteed = rules.get("agent.promises.guaranteed_return")
    assert guaranteed is not None and "保证收益" in guaranteed.phrases  # from knowledge BANNED_RULES
    assert {"wealth", "fund", "insurance"} <= set(rules.disclosure_categories)


def test_bank_file_replaces_adds_and_disables(tmp_path: Path, products: list[Product]) -> None:
    bank = tmp_path / "bank.yaml"
    bank.write_text(
        """
rude:
  - id: agent.rude.impatient
    severity: critical
    message_zh: 态度！
    message_en: Tone!
    phrases_zh: [你怎么又来了]
forbidden:
  - id: agent.forbidden.competitor
    severity: info
    message_zh: 请勿评论同业。
    message_en: Do not comment on other banks.
    phrases_zh: [别家银行]
disabled: [agent.rude.insult]
""",
        encoding="utf-8",
    )
    rules = load_rules(bank)
    impatient = rules.get("agent.rude.impatient")
    assert impatient is not None and impatient.severity == "critical" and impatient.phrases == ("你怎么又来了",)
    assert rules.get("agent.forbidden.competitor") is not None
    assert rules.get("agent.rude.insult") is None
    assert rules.get("agent.promises.risk_free") is not None  # untouched defaults stay
    mon = AgentSpeechMonitor(products, rules=rules)
    alerts = mon.check(final("你怎么又来了，别家银行更差，闭嘴，你听不懂吗"))
    assert [(a.rule_id, a.severity) for a in alerts] == [
        ("agent.rude.impatient", "critical"),
        ("agent.forbidden.competitor", "info"),
    ]


def test_malformed_yaml_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rude:\n  - id: agent.rude.x\n    phrases_zh: [a, b\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_rules(bad)
    assert str(bad) in str(info.value) and info.value.details["file"] == str(bad)
    assert info.value.details["problem"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (
            "rude:\n  - id: agent.rude.x\n    severity: fatal\n    message_zh: a\n    message_en: b\n    phrases_zh: [c]\n",
            "severity",
        ),
        ("rude:\n  - id: agent.rude.x\n    message_zh: a\n    message_en: b\n", "no phrases"),
        ("rude:\n  - id: agent.rude.x\n    role: disclosure\n    phrases_zh: [c]\n", "disclosure group"),
        (
            "promises:\n  - id: agent.promises.x\n    message_zh: a\n    message_en: b\n    script_rules: [nope]\n",
            "nope",
        ),
        ("- just a list\n", "mapping"),
        ("colour: red\n", "colour"),
    ],
)
def test_invalid_rule_files_name_the_problem(tmp_path: Path, body: str, problem: str) -> None:
    path = tmp_path / "bank.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    assert problem in str(info.value) and info.value.details["file"] == str(path)


def test_missing_bank_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_rules(tmp_path / "absent.yaml")


# --- forbidden words, promises, rude language -----------------------------------------------------------------


def test_promise_with_asr_error_raises_critical_alert(lexicon: ComplianceLexicon, products: list[Product]) -> None:
    alerts = monitor(lexicon, products).check(final("这款产品保证收义的，您放心", start_ms=5000))
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.rule_id == "agent.promises.guaranteed_return" and alert.severity == "critical"
    assert (alert.leg, alert.audience, alert.start_ms, alert.end_ms) == ("agent", "agent", 5000, 6500)
    assert alert.alert_id == "a1" and "保证收义" in alert.quote
    assert alert.message.startswith("不得承诺收益")


def test_english_promise_and_message_language(lexicon: ComplianceLexicon, products: list[Product]) -> None:
    alerts = monitor(lexicon, products, lang="en").check(final("Honestly, you get guarantied returns with this one"))
    assert rule_ids(alerts) == ["agent.promises.guaranteed_return"]
    assert alerts[0].message.startswith("Never promise returns")


def test_negated_promises_do_not_fire(lexicon: ComplianceLexicon, products: list[Product]) -> None:
    mon = monitor(lexicon, products)
    for i, text in enumerate(
        [
            "这个产品不保本",
            "我们不能保证收益",
            "I can't promise returns",
            "Returns are not guaranteed",
            "并不是没有风险",
        ]
    ):
        assert mon.check(final(text, start_ms=i * 40_000)) == [], text


def test_near_but_different_text_does_not_fire(lexicon: ComplianceLexicon, products: list[Product]) -> None:
    mon = monitor(lexicon, products)
    for i, text in enumerate(
        ["请先缴纳保证金", "办理时需要保证本人到场", "我保证收到款后马上处理", "你可以登录手机银行查看"]
    ):
        assert mon.check(final(text, start_ms=i * 40_000)) == [], text


def test_rude_language_in_both_languages(lexicon: ComplianceLexicon, products: list[Product]) -> None:
    mon = monitor(lexicon, products)
    assert rule_ids(mon.check(final("你听不懂吗？", start_ms=0))) == ["agent.rude.impatient"]
    assert rule_ids(mon.check(final("Oh shut up.", start_ms=1000))) == ["agent.rude.insult"]
    assert rule_ids(mon.check(final("What's wrong with you?", start_ms=2000))) == ["agent.rude.impatient"]


def test_asking_for_a_verification_code(lexicon: ComplianceLexicon, products: list[Product]) -> None:
    mon = monitor(lexicon, products)
    assert rule_ids(mon.check(final("麻烦您把验证码告诉我"))) == ["agent.forbidden.credentials"]
    assert mon.check(final("请千万不要把验证码告诉我们", start_ms=40_000)) == []


def test_traditional_characters_are_matched(lexicon: ComplianceLexicon, products: list[Product]) -> None:
    assert rule_ids(monitor(lexicon, products).check(final("這個產品絕對安全"))) == ["agent.promises.risk_free"]


def test_other_legs_are_ignored(lexicon: ComplianceLexicon, products: list[Product]) -> None:
    mon = monitor(lexicon, products)
    assert mon.check(final("你们保证收益吗？", leg="customer")) == []
    assert mon.check(final("   ")) == []


def test_principal_protection_is_allowed_for_deposits_only(lexicon: ComplianceLexicon, products: list[Product]) -> None:
    mon = monitor(lexicon, products)
    assert mon.check(final("一年期定期存款是保本的")) == []
    mon.note_products(["T-WM-R3"])
    assert rule_ids(mon.check(final("这款也是保本的", start_ms=1000))) == ["agent.promises.principal_protection"]


def test_dedupe_window_uses_call_time(lexicon: ComplianceLexicon, products: list[Product]) -> None:
    mon = monitor(lexicon, products)
    assert len(mon.check(final("稳赚不赔", start_ms=1_000))) == 1
    assert mon.check(final("真的稳赚不赔", start_ms=20_000)) == []
    assert rule_ids(mon.check(final("保证回报", start_ms=25_000))) == ["agent.promises.guaranteed_return"]
    assert len(mon.check(final("稳赚不赔", start_ms=31_000))) == 1
    assert len(mon.check(final("稳赚不赔，稳赚不赔", start_ms=90_000))) == 1


def test_quote_is_the_match_with_short_context(lexicon: ComplianceLexicon, products: list[Product]) -> None:
    text = (
        "您好，关于您刚才问的这款产品的情况我跟您详细介绍一下，" * 2
        + "它是保证收益的，"
        + "后面还有很多内容需要跟您说明一下。" * 3
    )
    alert = monitor(lexicon, products).check(final(text))[0]
    assert len(alert.quote) <= 40 and "保证收益" in alert.quote


# --- disclosure before confirmation ---------------------------------------------------------------------------


def test_confirmation_before_disclosure_alerts(lexicon: ComplianceLexicon, products: list[Product]) -> None:
    mon = monitor(lexicon, products)
    assert mon.check(final("这款稳健增利理财期限180天", start_ms=0)) == []
    alerts = mon.check(final("好的，我现在帮您下单", start_ms=10_000))
    assert rule_ids(alerts) == [RULE_DISCLOSURE_MISSING]
    assert alerts[0].severity == "critical" and "稳健增利理财" in alerts[0].message
    assert "帮您下单" in alerts[0].quote


def test_disclosure_then_confirmation_is_fine(lexicon: ComplianceLexicon, products: list[Product]) -> None:
    mon = monitor(lexicon, products, lang="en")
    mon.check(final("The Steady Plus Wealth product has a 180-day term.", start_ms=0))
    assert mon.check(final("Please note investment involves risk.", start_ms=5_000)) == []
    assert mon.disclosed
    assert mon.check(final("OK, I'll go ahead and place the order.", start_ms=9_000)) == []


def test_fuzzy_disclosure_counts(lexicon: ComplianceLexicon, products: list[Product]) -> None:
    mon = monitor(lexicon, products)
    mon.note_products(["T-FD-R5"])
    assert mon.check(final("基金有风险，投资需谨甚", start_ms=0)) == []
    assert mon.check(final("我现在帮您下单", start_ms=3_000)) == []


def test_order_within_one_utterance_matters(lexicon: ComplianceLexicon, products: list[Product]) -> None:
    before = monitor(lexicon, products)
    before.note_products(["T-WM-R3"])
    assert before.check(final("理财非存款，产品有风险，投资须谨慎。我帮您办理购买")) == []
    after = monitor(lexicon, products)
    after.note_products(["T-WM-R3"])
    alerts = after.check(final("我帮您办理购买，理财非存款，产品有风险"))
    assert rule_ids(alerts) == [RULE_DISCLOSURE_MISSING]
    assert after.disclosed  # later confirmations are fine


def test_product_context_decides_generic_confirmations(lexicon: ComplianceLexicon, products: list[Product]) -> None:
    nothing = monitor(lexicon, products)
    assert nothing.check(final("好的，我现在帮您下单")) == []  # no product known, generic phrase
    card = monitor(lexicon, products)
    card.check(final("白金信用卡年费首年免"))
    assert card.check(final("我现在帮您下单", start_ms=2_000)) == []  # a credit card needs no risk disclosure
    wealth_specific = monitor(lexicon, products)
    assert rule_ids(wealth_specific.check(final("那我帮您申购一万元"))) == [RULE_DISCLOSURE_MISSING]


def test_customer_mentions_and_suggestions_put_products_in_discussion(
    lexicon: ComplianceLexicon, products: list[Product]
) -> None:
    by_customer = monitor(lexicon, products)
    by_customer.note_customer(final("我想买那个科技成长股票基金", leg="customer"))
    assert by_customer.products_discussed == ("T-FD-R5",)
    assert rule_ids(by_customer.check(final("好的，帮您下单", start_ms=1_000))) == [RULE_DISCLOSURE_MISSING]
    by_card = monitor(lexicon, products)
    by_card.note_products(["T-WM-R3", "unknown-id"])
    assert by_card.products_discussed == ("T-WM-R3",)
    assert rule_ids(by_card.check(final("let me complete the purchase"))) == [RULE_DISCLOSURE_MISSING]


def test_one_disclosure_alert_per_utterance(lexicon: ComplianceLexicon, products: list[Product]) -> None:
    mon = monitor(lexicon, products)
    mon.note_products(["T-WM-R3"])
    alerts = mon.check(final("我帮您购买这款理财，现在帮您下单"))
    assert rule_ids(alerts) == [RULE_DISCLOSURE_MISSING]
