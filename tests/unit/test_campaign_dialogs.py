"""Campaign dialogs on the shipped flows: each kind in Chinese and English, opt-out at any point, voicemail."""

from __future__ import annotations

from datetime import date

import pytest

from agent.navigator.actions import Action, Hangup, Listen, Say, Transfer
from agent.navigator.campaign import CampaignEngine, campaign_variables, is_opt_out
from agent.navigator.flow_loader import load_flows, shipped_flow_paths
from agent.navigator.flows import FlowSet
from agent.navigator.testing import FakeCoreBanking

TODAY = date(2026, 12, 3)


@pytest.fixture(scope="module")
def flows() -> FlowSet:
    return load_flows(shipped_flow_paths())


def _engine(flows: FlowSet, kind: str, lang: str = "zh", **fields: str) -> CampaignEngine:
    dialog = {
        "callback_number": "95500",
        "product_name_zh": "稳盈理财",
        "product_name_en": "Steady Growth Fund",
        "product_script": "稳盈理财是一款中低风险产品。" if lang == "zh" else "Steady Growth is a low-risk fund.",
    }
    return CampaignEngine(flows, kind=kind, fields=fields, dialog=dialog, banking=FakeCoreBanking(), questions={},
                          lang=lang, customer_id="C-TEST-0001", today=TODAY)  # type: ignore[arg-type]  # fmt: skip


def _said(actions: list[Action]) -> str:
    return " ".join(a.text for a in actions if isinstance(a, Say))


def test_collection_promise_to_pay_in_chinese(flows: FlowSet) -> None:
    e = _engine(flows, "collection", "zh", amount_due="3200.50", due_date="2026-12-20", card_last4="1234")
    first = e.start()
    assert "沃思德演示银行" in _said(first) and "还款提醒" in _said(first)
    assert "3200" not in _said(first)  # no data before the callee says they are the holder
    assert isinstance(first[-1], Listen) and first[-1].slot == "is_holder"
    due = e.on_utterance("是的，我是")
    assert "尾号1234" in _said(due) and "3200.50元" in _said(due) and "2026年12月20日" in _said(due)
    bye = e.on_utterance("我二十五号还")
    assert "2026年12月25日" in _said(bye) and isinstance(bye[-1], Hangup)
    assert (e.final, e.opt_out, e.captured) == ("promised", False, {"promise_date": "2026-12-25"})


def test_collection_in_english_offers_an_agent_when_no_date_comes(flows: FlowSet) -> None:
    e = _engine(flows, "collection", "en", amount_due="99", due_date="2026-12-20", card_last4="9876")
    e.start()
    assert "ending 9876" in _said(e.on_utterance("yes"))
    for _ in range(3):
        out = e.on_utterance("I really don't know")
    assert "agent" in _said(out)
    out = e.on_utterance("yes please")
    assert isinstance(out[-1], Transfer) and out[-1].skill_group == "collections"
    assert e.final == "transferred"


def test_wrong_person_hears_no_account_data(flows: FlowSet) -> None:
    e = _engine(flows, "collection", "en", amount_due="3200", due_date="2026-12-20", card_last4="1234")
    e.start()
    out = e.on_utterance("no, wrong number")
    assert "3200" not in _said(out) and "1234" not in _said(out) and isinstance(out[-1], Hangup)
    assert e.final == "wrong_party"


@pytest.mark.parametrize("text", ["不要再给我打电话了", "别再打了", "stop calling me", "please remove my number",
                                  "Don't call me again"])  # fmt: skip
def test_opt_out_is_honoured_at_any_step(flows: FlowSet, text: str) -> None:
    assert is_opt_out(text)
    e = _engine(flows, "marketing", "zh" if not text.isascii() else "en")
    e.start()
    e.on_utterance("可以" if not text.isascii() else "sure")
    out = e.on_utterance(text)
    assert isinstance(out[-1], Hangup) and out[-1].reason == "opt_out"
    assert e.opt_out and e.final == "opted_out"


def test_plain_no_is_not_an_opt_out() -> None:
    assert not is_opt_out("no, I'm not interested")
    assert not is_opt_out("不需要，谢谢")
    assert not is_opt_out("you can call me back later")


def test_identity_verification_checks_without_revealing(flows: FlowSet) -> None:
    e = _engine(flows, "identity_verification", "en")
    e.start()
    assert "last four digits" in _said(e.on_utterance("yes it's me"))
    e.on_utterance("one two three four")
    out = e.on_utterance("May 1st 1980")
    assert "verified" in _said(out) and isinstance(out[-1], Hangup)
    assert e.final == "verified"
    bad = _engine(flows, "identity_verification", "en")
    bad.start()
    bad.on_utterance("yes")
    bad.on_utterance("4321")
    out = bad.on_utterance("May 1st 1980")
    assert bad.final == "not_verified" and isinstance(out[-1], Hangup)


def test_suspicious_transaction_no_goes_to_the_fraud_team(flows: FlowSet) -> None:
    e = _engine(flows, "notification", "zh", notice="suspicious_transaction", card_last4="1234", amount="5000",
                merchant="某电商平台")  # fmt: skip
    e.start()
    ask = e.on_utterance("是")
    assert "某电商平台" in _said(ask) and "5000.00元" in _said(ask)
    out = e.on_utterance("不是我")
    assert isinstance(out[-1], Transfer) and out[-1].skill_group == "fraud"
    assert e.final == "reported_fraud" and e.captured == {"genuine": "false"}


def test_card_expiry_notice_and_repeat(flows: FlowSet) -> None:
    e = _engine(flows, "notification", "en", notice="card_expiry", card_last4="4321", expiry_date="2027-01-31")
    first = e.start()
    assert "January 31, 2027" in _said(first)
    again = e.on_utterance("yes please")
    assert "January 31, 2027" in _said(again)
    out = e.on_utterance("no thanks")
    assert isinstance(out[-1], Hangup) and e.final == "acknowledged"


def test_survey_score_by_keypad_and_spoken_reason(flows: FlowSet) -> None:
    e = _engine(flows, "survey", "zh")
    assert isinstance(e.start()[-1], Listen)
    e.on_dtmf("4")
    out = e.on_utterance("办理速度很快，客服也很耐心")
    assert isinstance(out[-1], Hangup)
    assert e.final == "surveyed" and e.captured == {"score": 4, "reason": "办理速度很快，客服也很耐心"}
    spoken = _engine(flows, "survey", "en")
    spoken.start()
    assert spoken.on_utterance("I'd give it a seven") and spoken.final is None  # out of range: asked again
    spoken.on_utterance("five")
    assert spoken.captured["score"] == 5


def test_marketing_interest_choices(flows: FlowSet) -> None:
    e = _engine(flows, "marketing", "en")
    assert "Steady Growth Fund" in _said(e.start())
    assert "low-risk" in _said(e.on_utterance("yes, go ahead"))
    out = e.on_utterance("call me back tomorrow")
    assert isinstance(out[-1], Hangup) and (e.final, e.captured) == ("interested", {"interest": "callback"})
    t = _engine(flows, "marketing", "zh")
    t.start()
    t.on_utterance("方便")
    out = t.on_dtmf("2")
    assert isinstance(out[-1], Transfer) and out[-1].skill_group == "sales"
    n = _engine(flows, "marketing", "zh")
    n.start()
    out = n.on_utterance("不方便")
    assert n.final == "not_interested" and isinstance(out[-1], Hangup)


def test_voicemail_message_names_the_bank_and_nothing_else(flows: FlowSet) -> None:
    e = _engine(flows, "collection", "en", amount_due="3200", due_date="2026-12-20", card_last4="1234")
    out = e.leave_voicemail()
    text = _said(out)
    assert "Voxdesk Demo Bank" in text and "95500" in text and "3200" not in text and "1234" not in text
    assert isinstance(out[-1], Hangup) and e.captured == {"voicemail": "message_left"} and e.final is None
    assert not e.on_utterance("stop calling me")  # the machine's words are not the callee's


def test_variables_are_typed() -> None:
    v = campaign_variables({"due_date": "2026-12-20", "amount_due": "1,200.5", "notice": "card_expiry"}, {}, "en")
    assert v["due_date"] == date(2026, 12, 20) and str(v["amount_due"]) == "1200.5"
    assert v["bank_name"] == "Voxdesk Demo Bank" and v["callback_number"] == "95500"
