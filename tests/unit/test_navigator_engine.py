"""The navigator's dialog engine end to end with scripted caller turns (zh and en, speech and DTMF): the four
self-service flows, answer and transfer routing, low-confidence confirmation, reprompts then transfer, "人工" with
context, and the non-interruptible disclosure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

import pytest

from agent.navigator import (
    Action,
    DialogEngine,
    FlowSet,
    Hangup,
    Listen,
    PlayAnswer,
    Say,
    Transfer,
    load_flows,
    shipped_flow_paths,
)
from agent.navigator.flows import Lang
from agent.navigator.testing import FakeCoreBanking, ScriptedIntents, demo_questions, intent, out_of_scope
from core.errors import InvalidInputError, StorageError

pytestmark = pytest.mark.unit

TODAY = date(2026, 12, 2)  # a Wednesday
LOST, BALANCE = "cards.report_lost_card", "accounts.balance_inquiry"
APPOINTMENT, INSTALMENT = "general.branch_appointment", "cards.bill_instalment"


@pytest.fixture(scope="module")
def flows() -> FlowSet:
    return load_flows(shipped_flow_paths())


def _engine(flows: FlowSet, lang: Lang = "zh", bank: FakeCoreBanking | None = None) -> DialogEngine:
    return DialogEngine(
        flows, banking=bank or FakeCoreBanking(), questions=demo_questions(), lang=lang,
        customer_id="C-TEST-0001", today=TODAY,
    )  # fmt: skip


def _said(actions: Sequence[Action]) -> str:
    return " | ".join(a.text for a in actions if isinstance(a, Say))


def _listen(actions: Sequence[Action]) -> Listen:
    last = actions[-1]
    assert isinstance(last, Listen), actions
    return last


def _keys(engine: DialogEngine, keys: str) -> list[Action]:
    out: list[Action] = []
    for key in keys:
        out += engine.on_dtmf(key)
    return out


def test_greeting_disclosure_is_not_interruptible(flows: FlowSet) -> None:
    actions = _engine(flows).start()
    first = actions[0]
    assert isinstance(first, Say) and first.interruptible is False and first.prompt_key == "disclosure"
    assert "录音" in first.text
    assert all(a.interruptible for a in actions[1:] if isinstance(a, Say))
    assert _listen(actions) == Listen("intent", 6000, 1)
    en = _engine(flows, "en").start()
    assert isinstance(en[0], Say) and "recorded" in en[0].text and not en[0].interruptible


def test_lost_card_zh_by_speech(flows: FlowSet) -> None:
    bank = FakeCoreBanking()
    e = _engine(flows, bank=bank)
    e.start()
    out = e.on_utterance("喂，我要挂失，卡丢了", intent(LOST))
    assert "核实" in _said(out) and _listen(out) == Listen("card_last4", 5000, 4)
    assert _listen(e.on_utterance("尾号幺二三四")).slot == "birth_date"
    out = e.on_utterance("一九八零年五月一号")
    assert "尾号1234" in _said(out) and _listen(out).slot == "confirm_block"
    out = e.on_utterance("是的")
    assert "挂失成功" in _said(out) and "LC0001" in _said(out)
    assert ("report_lost_card", ("C-TEST-0001", "1234")) in bank.calls
    assert _listen(out).slot == "more"
    out = e.on_utterance("没有了，谢谢")
    assert isinstance(out[-1], Hangup) and out[-1].reason == "completed" and e.finished
    assert e.on_utterance("还在吗") == []


def test_lost_card_en_by_keypad(flows: FlowSet) -> None:
    bank = FakeCoreBanking()
    e = _engine(flows, "en", bank)
    e.start()
    out = e.on_dtmf("1")  # menu: report a lost card
    assert "verify your identity" in _said(out)
    assert _keys(e, "123") == []
    assert _listen(e.on_dtmf("4")).slot == "birth_date"
    out = _keys(e, "19800501")
    assert "ending in 1234" in _said(out)
    out = e.on_dtmf("1")
    assert "reported lost" in _said(out) and bank.calls[0] == ("verify_identity", ("C-TEST-0001", "1234",
                                                                                   date(1980, 5, 1)))  # fmt: skip


def test_balance_en_speech_after_identity_check(flows: FlowSet) -> None:
    bank = FakeCoreBanking()
    e = _engine(flows, "en", bank)
    e.start()
    e.on_utterance("what's my balance", intent(BALANCE))
    e.on_utterance("one two three four")
    out = e.on_utterance("May 1st 1980")
    assert "Your available balance is 12,345.60 yuan." in _said(out)
    assert [c[0] for c in bank.calls] == ["verify_identity", "balance"]
    assert e.variables["identity_verified"] is True
    # a second self-service request in the same call does not ask for identity again
    e.on_utterance("yes")
    out = e.on_utterance("and my balance again", intent(BALANCE))
    assert "12,345.60" in _said(out) and "verify" not in _said(out)


def test_balance_zh_wrong_identity_transfers_to_retail(flows: FlowSet) -> None:
    e = _engine(flows)
    e.start()
    e.on_utterance("帮我查一下余额", intent(BALANCE))
    e.on_utterance("一二三五")
    out = e.on_utterance("1980年5月1日")
    assert "未能通过核实" in _said(out)
    transfer = out[-1]
    assert isinstance(transfer, Transfer) and transfer.skill_group == "retail"
    assert transfer.context.reason == "identity_not_verified" and transfer.context.identity_verified is False
    assert transfer.context.intent == BALANCE


def test_appointment_zh_speech(flows: FlowSet) -> None:
    bank = FakeCoreBanking()
    e = _engine(flows, bank=bank)
    e.start()
    out = e.on_utterance("我想预约去网点办业务", intent(APPOINTMENT))
    assert _listen(out) == Listen("branch", 5000, 1)
    assert _listen(e.on_utterance("陆家嘴那个")).slot == "day"
    assert _listen(e.on_utterance("明天")).slot == "slot_time"
    out = e.on_utterance("下午吧")
    assert "上海陆家嘴支行，2026年12月3日下午两点半" in _said(out)
    out = e.on_utterance("对")
    assert "预约号是AP0001" in _said(out)
    assert ("book_appointment", ("C-TEST-0001", "BR-SH-LJZ", datetime(2026, 12, 3, 14, 30))) in bank.calls


def test_appointment_en_keypad_and_cancel(flows: FlowSet) -> None:
    bank = FakeCoreBanking()
    e = _engine(flows, "en", bank)
    e.start()
    e.on_dtmf("3")
    e.on_dtmf("2")  # Jing'an
    out = e.on_utterance("next Monday")
    out = e.on_dtmf("1")  # morning
    assert "the Shanghai Jing'an branch on December 7, 2026, 9:30 in the morning" in _said(out)
    out = e.on_utterance("no")
    assert "not booked" in _said(out) and not any(c[0] == "book_appointment" for c in bank.calls)


def test_instalment_zh_speech(flows: FlowSet) -> None:
    bank = FakeCoreBanking()
    e = _engine(flows, bank=bank)
    e.start()
    e.on_utterance("账单能分期吗", intent(INSTALMENT))
    e.on_utterance("幺二三四")
    out = e.on_utterance("1980年5月1日")
    assert _listen(out).slot == "amount"
    out = e.on_utterance("五千块")
    said = _said(out)
    assert "分3期，每期应还1704.17元，其中手续费37.50元" in said
    assert "分12期" in said and [c[1][2] for c in bank.calls if c[0] == "installment_quote"] == [3, 6, 12]
    disclaimer = [a for a in out if isinstance(a, Say) and "试算结果" in a.text]
    assert disclaimer and disclaimer[0].interruptible is False


def test_instalment_en_keypad_amount(flows: FlowSet) -> None:
    e = _engine(flows, "en")
    e.start()
    e.on_dtmf("4")
    _keys(e, "1234")
    _keys(e, "19800501")
    out = _keys(e, "5000#")
    assert "For 5,000.00 yuan: over 3 months you would pay 1,704.17 yuan a month" in _said(out)


def test_low_confidence_intent_is_confirmed(flows: FlowSet) -> None:
    e = _engine(flows)
    e.start()
    out = e.on_utterance("钱还有多少", intent(BALANCE, 0.5))
    assert "您是想问“怎么查询账户余额”，对吗？" in _said(out) and _listen(out).slot == "confirm_intent"
    out = e.on_utterance("是的")
    assert "查询账户余额" in _said(out) and _listen(out).slot == "card_last4"


def test_low_confidence_rejected_then_new_request(flows: FlowSet) -> None:
    e = _engine(flows, "en")
    e.start()
    out = e.on_utterance("money stuff", intent(BALANCE, 0.4))
    assert 'Did you want to ask "How can I check my balance?"' in _said(out)
    out = e.on_dtmf("2")
    assert "didn't quite catch" in _said(out) and _listen(out).slot == "intent"
    out = e.on_utterance("I lost my card", intent(LOST, 0.9))
    assert _listen(out).slot == "card_last4"


def test_two_reprompts_on_no_input_then_transfer(flows: FlowSet) -> None:
    e = _engine(flows)
    e.start()
    first, second = e.on_no_input(), e.on_no_input()
    assert "您还在吗" in _said(first) and "您还在吗" in _said(second)
    out = e.on_no_input()
    assert isinstance(out[-1], Transfer) and out[-1].skill_group == "general"
    assert out[-1].context.reason == "no_input"


def test_two_reprompts_on_no_match_then_transfer_with_skill_group(flows: FlowSet) -> None:
    e = _engine(flows)
    e.start()
    e.on_utterance("我的卡丢了", intent(LOST))
    assert "逐位" in _said(e.on_utterance("不记得了"))
    e.on_utterance("好像是十二")
    out = e.on_utterance("真的想不起来")
    assert isinstance(out[-1], Transfer) and out[-1].skill_group == "cards"
    assert out[-1].context.reason == "no_match" and out[-1].context.intent == LOST


def test_out_of_scope_utterances_reprompt_then_transfer(flows: FlowSet) -> None:
    e = _engine(flows, "en")
    e.start()
    for _ in range(2):
        assert "didn't quite catch" in _said(e.on_utterance("blah", out_of_scope()))
    out = e.on_utterance("blah", out_of_scope())
    assert isinstance(out[-1], Transfer) and out[-1].context.reason == "no_match"


def test_agent_request_transfers_with_context(flows: FlowSet) -> None:
    e = _engine(flows)
    e.start()
    e.on_utterance("卡丢了", intent(LOST))
    e.on_utterance("幺二三四")
    e.on_utterance("1980年5月1日")
    out = e.on_utterance("算了，给我转人工")
    transfer = out[-1]
    assert isinstance(transfer, Transfer) and transfer.skill_group == "cards"
    ctx = transfer.context
    assert ctx.reason == "caller_request" and ctx.intent == LOST and ctx.intent_confidence == pytest.approx(0.95)
    assert ctx.identity_verified is True and ctx.customer_id == "C-TEST-0001"
    assert ("card_last4", "1234") in ctx.slots and ("birth_date", "1980年5月1日") in ctx.slots
    caller = [t.text for t in ctx.transcript if t.speaker == "caller"]
    assert caller == ["卡丢了", "幺二三四", "1980年5月1日", "算了，给我转人工"]
    assert any(t.speaker == "bot" and "录音" in t.text for t in ctx.transcript)
    assert e.finished and e.on_dtmf("1") == []


@pytest.mark.parametrize("text", ["agent", "operator please", "人工"])
def test_agent_request_at_the_greeting(flows: FlowSet, text: str) -> None:
    e = _engine(flows, "en")
    e.start()
    out = e.on_utterance(text)
    assert isinstance(out[-1], Transfer) and out[-1].context.identity_verified is False
    assert out[-1].skill_group == "general"


def test_keypad_zero_is_an_agent(flows: FlowSet) -> None:
    e = _engine(flows)
    e.start()
    out = e.on_dtmf("0")
    assert isinstance(out[-1], Transfer) and out[-1].context.reason == "caller_request"


def test_answer_with_the_approved_script_then_anything_else(flows: FlowSet) -> None:
    e = _engine(flows)
    e.start()
    out = e.on_utterance("新卡怎么激活", intent("cards.activate_card"))
    assert PlayAnswer("ans.activate", "cards.activate_card") in out and _listen(out).slot == "more"
    out = e.on_utterance("还有")
    assert _listen(out).slot == "intent" and "请说出您要办理的业务" in _said(out)


def test_question_without_flow_or_script_is_routed(flows: FlowSet) -> None:
    e = _engine(flows)
    e.start()
    out = e.on_utterance("买什么理财好", intent("wealth.product_advice"))
    assert isinstance(out[-1], Transfer) and out[-1].skill_group == "wealth" and out[-1].context.reason == "routed"


def test_scripted_intents_drive_a_call(flows: FlowSet) -> None:
    nlu = ScriptedIntents([("丢", LOST, 0.9), ("余额", BALANCE, 0.9)])
    e = _engine(flows)
    e.start()
    for text in ("查余额", "一二三四", "19800501"):
        out = e.on_utterance(text, nlu.classify(text))
    assert "12345.60元" in _said(out)


class _BrokenBank(FakeCoreBanking):
    def balance(self, customer_id: str) -> Decimal:
        raise StorageError("core banking is down")


def test_backend_error_transfers(flows: FlowSet) -> None:
    e = _engine(flows, bank=_BrokenBank())
    e.start()
    e.on_utterance("余额", intent(BALANCE))
    e.on_utterance("一二三四")
    out = e.on_utterance("1980年5月1日")
    assert isinstance(out[-1], Transfer) and out[-1].context.reason == "backend_error"
    assert out[-1].skill_group == "retail"


def test_star_repeats_the_prompt_and_start_twice_fails(flows: FlowSet) -> None:
    e = _engine(flows)
    e.start()
    e.on_utterance("卡丢了", intent(LOST))
    _keys(e, "12")
    out = e.on_dtmf("*")
    assert "后四位" in _said(out) and _listen(out).slot == "card_last4"
    with pytest.raises(InvalidInputError):
        e.start()
