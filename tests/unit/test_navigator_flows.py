"""Navigator flow files: the shipped flows load and validate; bad files fail with a ConfigError naming file, flow
and step; slot parsing of digits, dates, amounts and yes/no in Chinese and English."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from agent.navigator.banking import DemoCoreBanking, demo_card_last4
from agent.navigator.flow_loader import load_flows, shipped_flow_paths
from agent.navigator.flows import AskStep, IntentStep, SayStep, parse_condition
from agent.navigator.slots import is_agent_request, parse_amount, parse_date, parse_digits, parse_yes_no
from agent.testing import sample_customer
from core.errors import ConfigError, NotFoundError
from profiles.models import Customer

pytestmark = pytest.mark.unit

TODAY = date(2026, 12, 2)  # a Wednesday


def test_shipped_flows_load_and_cover_the_four_intents() -> None:
    paths = shipped_flow_paths()
    assert {p.name for p in paths} >= {"main.yaml", "lost_card.yaml", "balance.yaml", "appointment.yaml"}
    flows = load_flows(paths)
    for qid in ("cards.report_lost_card", "accounts.balance_inquiry", "general.branch_appointment",
                "cards.bill_instalment"):  # fmt: skip
        assert flows.for_intent(qid) is not None, qid
    greet = flows.main.steps[0]
    assert isinstance(greet, SayStep) and greet.interruptible is False
    assert any(isinstance(s, IntentStep) and s.keypad.get("0") == "agent" for s in flows.main.steps)
    for flow in flows.flows.values():
        for step in flow.steps:
            if isinstance(step, AskStep):
                assert step.max_reprompts <= 2
    for text in flows.prompts.values():
        assert text.zh and text.en


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "flows.yaml"
    path.write_text(body, encoding="utf-8")
    return path


_HEAD = """
prompts:
  hi: {zh: 你好, en: Hello}
flows:
  - id: main
    steps:
"""


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        ("      - {id: a, kind: say, prompt: hi, next: nowhere}\n", "step 'a': unknown step 'nowhere'"),
        (
            "      - {id: a, kind: ask, slot: {name: x, type: colour}, prompt: hi, reprompt: hi, no_input: hi}\n",
            "step 'a': unknown slot type",
        ),
        ("      - {id: a, kind: say, prompt: {zh: 你好}}\n", "step 'a': missing prompt in language 'en'"),
        ("      - {id: a, kind: say, prompt: bye}\n", "step 'a': unknown prompt 'bye'"),
        ("      - {id: a, kind: dance}\n", "step 'a': unknown step kind"),
        ("      - {id: a, kind: flow, flow: nope}\n", "step 'a': unknown flow 'nope'"),
        ("      - {id: a, kind: branch, cases: [{if: 'x is 1', goto: a}]}\n", "step 'a': bad condition"),
        (
            "      - {id: a, kind: ask, slot: {name: x, type: digits}, prompt: hi, reprompt: hi, no_input: hi}\n",
            "step 'a': a digits slot needs a length",
        ),
        (
            "      - {id: a, kind: ask, slot: {name: x, type: yes_no}, prompt: hi, reprompt: hi, no_input: hi,"
            " max_reprompts: 3}\n",
            "step 'a': ask.max_reprompts: Input should be less than or equal to 2",
        ),
        (
            "      - {id: a, kind: call, operation: balance, args: {customer_id: $who}, result: b}\n",
            "unknown variable '$who'",
        ),
        ("      - {id: a, kind: say, prompt: hi}\n      - {id: a, kind: say, prompt: hi}\n", "step id is used twice"),
    ],
)
def test_bad_flow_files_name_file_flow_and_step(tmp_path: Path, steps: str, expected: str) -> None:
    path = _write(tmp_path, _HEAD + steps)
    with pytest.raises(ConfigError) as info:
        load_flows([path])
    assert expected in str(info.value)
    assert str(path) in str(info.value) and "flow 'main'" in str(info.value)


def test_prompt_missing_a_language_and_missing_main(tmp_path: Path) -> None:
    path = _write(tmp_path, "prompts:\n  hi: {zh: 你好}\nflows: []\n")
    with pytest.raises(ConfigError, match="prompt 'hi' is missing in language 'en'"):
        load_flows([path])
    path = _write(tmp_path, "prompts: {}\nflows:\n  - {id: other, steps: [{id: a, kind: end}]}\n")
    with pytest.raises(ConfigError, match="no 'main' flow"):
        load_flows([path])


def test_choice_options_need_distinct_keys_and_synonyms(tmp_path: Path) -> None:
    option = "{{id: {0}, dtmf: '1', label: {{zh: 甲, en: A}}, synonyms_zh: [甲], synonyms_en: [a]}}"
    steps = (
        f"      - {{id: a, kind: ask, slot: {{name: x, type: choice, options: [{option.format('p')}, "
        f"{option.format('q')}]}}, prompt: hi, reprompt: hi, no_input: hi}}\n"
    )
    with pytest.raises(ConfigError, match="two options share a DTMF key"):
        load_flows([_write(tmp_path, _HEAD + steps)])


def test_conditions() -> None:
    assert parse_condition("verified").holds({"verified": True})
    assert parse_condition("not verified").holds({})
    assert parse_condition("amount >= 1000").holds({"amount": Decimal("1500")})
    assert not parse_condition("amount < 1000").holds({"amount": Decimal("1500")})
    assert parse_condition("branch == BR-SH-JA").holds({"branch": "BR-SH-JA"})
    with pytest.raises(ValueError, match="bad condition"):
        parse_condition("not x == 1")


@pytest.mark.parametrize(
    ("text", "length", "digits"),
    [
        ("幺二三四", 4, "1234"),
        ("一二三四", 4, "1234"),
        ("尾号是零八六七", 4, "0867"),
        ("one two three four", 4, "1234"),
        ("It's oh five five nine", 4, "0559"),
        ("1234", 4, "1234"),
        ("一二三", 4, None),
        ("不知道", 4, None),
    ],
)
def test_parse_digits(text: str, length: int, digits: str | None) -> None:
    assert parse_digits(text, length) == digits


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("1980年5月1日", date(1980, 5, 1)),
        ("我是一九八零年五月一号出生的", date(1980, 5, 1)),
        ("一九九二年十二月三十一日", date(1992, 12, 31)),
        ("May 1st 1980", date(1980, 5, 1)),
        ("the twenty first of March, 1975", date(1975, 3, 21)),
        ("1 May 1980", date(1980, 5, 1)),
        ("19800501", date(1980, 5, 1)),
        ("1980-05-01", date(1980, 5, 1)),
        ("明天", date(2026, 12, 3)),
        ("下周一", date(2026, 12, 7)),
        ("next Monday", date(2026, 12, 7)),
        ("1980年2月30日", None),
        ("随便", None),
    ],
)
def test_parse_date(text: str, day: date | None) -> None:
    assert parse_date(text, today=TODAY) == day


@pytest.mark.parametrize(
    ("text", "amount"),
    [("五千元", Decimal(5000)), ("两万三", Decimal(23000)), ("RMB 3,000", Decimal(3000)),
     ("five thousand yuan", Decimal(5000)), ("大概一万二", Decimal(12000)), ("不清楚", None)],
)  # fmt: skip
def test_parse_amount(text: str, amount: Decimal | None) -> None:
    assert parse_amount(text) == amount


@pytest.mark.parametrize(
    ("text", "answer"),
    [("是的", True), ("对", True), ("还有", True), ("不是", False), ("没有了", False), ("yes please", True),
     ("yeah", True), ("no thanks", False), ("that's wrong", False), ("嗯……", True), ("什么", None)],
)  # fmt: skip
def test_parse_yes_no(text: str, answer: bool | None) -> None:
    assert parse_yes_no(text) is answer


@pytest.mark.parametrize(
    ("text", "wanted"),
    [("转人工", True), ("我要人工服务", True), ("agent please", True), ("Operator!", True),
     ("let me talk to a human", True), ("我的卡丢了", False), ("my agency card", False)],
)  # fmt: skip
def test_agent_requests(text: str, wanted: bool) -> None:
    assert is_agent_request(text) is wanted


class _Profiles:
    def __init__(self, customer: Customer) -> None:
        self.customer = customer

    def get(self, customer_id: str) -> Customer:
        if customer_id != self.customer.customer_id:
            raise NotFoundError("unknown customer")
        return self.customer


def test_demo_core_banking_on_profiles() -> None:
    customer = sample_customer()
    bank = DemoCoreBanking(_Profiles(customer))
    last4 = demo_card_last4(customer.customer_id)
    assert len(last4) == 4 and last4 == demo_card_last4(customer.customer_id)
    assert bank.verify_identity(customer.customer_id, last4, date(1985, 6, 15))
    assert not bank.verify_identity(customer.customer_id, last4, date(1985, 6, 16))
    assert not bank.verify_identity("C-NOBODY", last4, date(1985, 6, 15))
    assert bank.balance(customer.customer_id) == Decimal("100000.00")
    q = bank.installment_quote(customer.customer_id, Decimal(5000), 3)
    assert (q.principal_per_period, q.fee_per_period, q.per_period, q.total_fee) == (
        Decimal("1666.67"), Decimal("37.50"), Decimal("1704.17"), Decimal("112.50"))  # fmt: skip
    assert bank.report_lost_card(customer.customer_id, last4).startswith("LC")


def test_digits_said_twice_count_once() -> None:
    from agent.navigator.slots import parse_digits

    assert parse_digits("6167 6167", 4) == "6167"
    assert parse_digits("six one six seven, six one six seven", 4) == "6167"
    assert parse_digits("6167 6168", 4) is None and parse_digits("61676167") == "61676167"
