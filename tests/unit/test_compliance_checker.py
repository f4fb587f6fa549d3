"""The script compliance checker: each rule in Chinese and English, negations, whitelist, spans."""

from __future__ import annotations

import pytest

from core.errors import InvalidInputError
from knowledge.compliance import ComplianceChecker, ComplianceRules, ScriptContext, ScriptProduct
from knowledge.compliance_rules import BANNED_RULES

pytestmark = pytest.mark.unit

CHECKER = ComplianceChecker()
FUND = ScriptProduct("FND-001", "稳健增长基金", "fund", "R3")
WEALTH_EN = ScriptProduct("WM-002", "Steady Income Plan", "wealth", "R2")
CARD = ScriptProduct("CC-001", "Platinum Card", "credit_card", None)


def rule_ids(text: str, context: ScriptContext | None = None) -> list[str]:
    return [f.rule_id for f in CHECKER.check(text, context)]


@pytest.mark.parametrize(
    ("rule_id", "zh", "en"),
    [
        ("claim.guaranteed_return", "这款产品保本保息，放心买。", "This plan offers guaranteed returns every year."),
        ("claim.guaranteed_return", "跟着买就是稳赚。", "With us you simply can't lose."),
        ("claim.risk_free", "本产品零风险。", "It is completely risk-free."),
        ("claim.risk_free", "这个理财绝对安全。", "There is no risk at all."),
        ("claim.superlative", "我们的利率全行最高。", "We have the best rate in town."),
        ("claim.superlative", "收益是市场第一。", "Our fund is number one for returns."),
        ("claim.pressure", "今天是最后一天，赶紧办理。", "Act now, this offer is for today only."),
        ("claim.pressure", "名额有限，马上购买。", "Hurry, only a few left!"),
    ],
)
def test_each_banned_claim_is_caught_in_both_languages(rule_id: str, zh: str, en: str) -> None:
    for text in (zh, en):
        findings = [f for f in CHECKER.check(text) if f.rule_id == rule_id]
        assert findings, (rule_id, text)
        for f in findings:  # the span points at the phrase
            assert text[f.start : f.end] == f.matched and f.matched and f.message


def test_every_default_rule_has_phrases_in_both_languages() -> None:
    for rule in BANNED_RULES:
        assert rule.zh and rule.en, rule.rule_id
        for phrase in (rule.zh[0], rule.en[0]):
            assert rule.rule_id in rule_ids(f"xx {phrase} yy"), (rule.rule_id, phrase)


@pytest.mark.parametrize(
    "text",
    [
        "本产品不保本保息，收益可能为零。",
        "理财产品并非无风险。",
        "这不是最好的选择，请根据需要决定。",
        "Returns are not guaranteed returns; you may lose money.",
        "This is not risk-free.",
        "There is no hurry: take the terms home and decide later.",
        "信用卡最高额度为五万元。",  # whitelisted factual term
        "最低还款额为账单金额的百分之十。",
    ],
)
def test_negated_and_whitelisted_phrases_pass(text: str) -> None:
    assert [r for r in rule_ids(text) if r.startswith("claim.")] == []


def test_words_that_only_look_like_negations_do_not_excuse_a_claim() -> None:
    assert "claim.guaranteed_return" in rule_ids("这款产品非常稳赚。")  # 非常 = very
    assert "claim.guaranteed_return" in rule_ids("不仅稳赚，还送礼品。")  # 不仅 = not only


def test_a_bank_can_whitelist_a_phrase() -> None:
    checker = ComplianceChecker(ComplianceRules(whitelist=("最佳服务银行奖",)))
    assert checker.check("我行荣获最佳服务银行奖。") == []
    assert [f.rule_id for f in checker.check("我们的收益最佳。")] == ["claim.superlative"]


def test_wealth_fund_and_insurance_scripts_need_the_risk_disclosure() -> None:
    ctx = ScriptContext(kind="marketing", products=(FUND,), audience_risk="C4")
    assert rule_ids("稳健增长基金，长期持有，分散配置。", ctx) == ["disclosure.risk_missing"]
    assert rule_ids("稳健增长基金，长期持有。理财非存款、产品有风险、投资须谨慎。", ctx) == []
    en = ScriptContext(kind="marketing", products=(WEALTH_EN,), audience_risk="C2")
    assert rule_ids("The Steady Income Plan pays quarterly.", en) == ["disclosure.risk_missing"]
    assert rule_ids("The Steady Income Plan pays quarterly. Investment involves risk.", en) == []
    cards = ScriptContext(kind="answer", products=(CARD,))
    assert rule_ids("The Platinum Card has no annual fee in the first year.", cards) == []  # cards need none


def test_no_product_above_the_audience_risk_grade() -> None:
    text = "推荐您了解稳健增长基金。理财非存款、产品有风险、投资须谨慎。"
    findings = CHECKER.check(text, ScriptContext(products=(FUND,), audience_risk="C2"))
    assert [f.rule_id for f in findings] == ["suitability.above_audience"]
    assert text[findings[0].start : findings[0].end] == "稳健增长基金" and "R3" in findings[0].message
    assert CHECKER.check(text, ScriptContext(products=(FUND,), audience_risk="C3")) == []
    unassessed = CHECKER.check(text, ScriptContext(products=(FUND,), audience_risk=None))
    assert [f.rule_id for f in unassessed] == ["suitability.above_audience"]
    with pytest.raises(InvalidInputError):
        CHECKER.check(text, ScriptContext(audience_risk="R3"))


def test_outbound_scripts_must_identify_the_bank() -> None:
    ctx = ScriptContext(kind="outbound", bank_names=("沃克斯银行", "Voxdesk Demo Bank"))
    assert rule_ids("您好，您的信用卡账单已出，请按时还款。", ctx) == ["outbound.bank_identification"]
    assert rule_ids("您好，这里是沃克斯银行，您的信用卡账单已出。", ctx) == []
    assert rule_ids("Hello, this is Voxdesk Demo Bank calling about your card.", ctx) == []
    with pytest.raises(InvalidInputError):
        CHECKER.check("hello", ScriptContext(kind="outbound"))


def test_findings_come_in_order_with_missing_text_first() -> None:
    ctx = ScriptContext(kind="outbound", products=(FUND,), audience_risk="C5", bank_names=("沃克斯银行",))
    findings = CHECKER.check("稳赚！名额有限。", ctx)
    assert [f.rule_id for f in findings] == [
        "disclosure.risk_missing",
        "outbound.bank_identification",
        "claim.guaranteed_return",
        "claim.pressure",
    ]
    assert [f.start for f in findings] == [0, 0, 0, 3]
