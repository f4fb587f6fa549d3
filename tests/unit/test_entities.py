"""Entities and number words, Chinese and English, against a fixed 'today' (Tuesday 2026-12-01)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from nlu.entities import extract_entities
from nlu.numbers import parse_en_number, parse_zh_number

pytestmark = pytest.mark.unit

TODAY = date(2026, 12, 1)  # a Tuesday


@pytest.mark.parametrize(
    ("text", "value"),
    [("三", 3), ("十五", 15), ("三百零五", 305), ("一千零五", 1005), ("三千五", 3500), ("两万三", 23_000),
     ("一万零三", 10_003), ("五百万", 5_000_000), ("1.5万", 15_000), ("3千", 3000), ("一亿二千万", 120_000_000)],
)  # fmt: skip
def test_chinese_numbers(text: str, value: int) -> None:
    assert parse_zh_number(text) == Decimal(value)


def test_english_numbers_and_junk() -> None:
    assert parse_en_number("1,500.50") == Decimal("1500.50")
    assert parse_en_number("2.5k") == Decimal(2500)
    assert parse_en_number("three thousand five hundred") == Decimal(3500)
    assert parse_en_number("two hundred and ten") == Decimal(210)
    assert parse_en_number("lots") is None and parse_zh_number("很多") is None and parse_zh_number("") is None


def values(text: str, **kwargs: object) -> list[tuple[str, str, str]]:
    return [(e.kind, e.text, e.value) for e in extract_entities(text, today=TODAY, **kwargs)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我想转账两万三千块给我妈", [("amount", "两万三千块", "23000 CNY")]),
        ("帮我转5000元", [("amount", "5000元", "5000 CNY")]),
        ("1.5万元够吗", [("amount", "1.5万元", "15000 CNY")]),
        ("换五百美元", [("amount", "五百美元", "500 USD")]),
        ("I want to send $1,500 to my son", [("amount", "$1,500", "1500 USD")]),
        ("RMB 3,000 please", [("amount", "RMB 3,000", "3000 CNY")]),
        ("下周五下午三点来网点", [("date", "下周五", "2026-12-11"), ("time", "下午三点", "15:00")]),
        ("明天上午十点半", [("date", "明天", "2026-12-02"), ("time", "上午十点半", "10:30")]),
        ("周一可以吗", [("date", "周一", "2026-12-07")]),  # this week's Monday has passed
        ("3月5日到期", [("date", "3月5日", "2027-03-05")]),
        ("三天后还款", [("date", "三天后", "2026-12-04")]),
        ("next Friday at 3pm", [("date", "next Friday", "2026-12-11"), ("time", "3pm", "15:00")]),
        ("tomorrow at 15:30", [("date", "tomorrow", "2026-12-02"), ("time", "15:30", "15:30")]),
        ("can you call me on Monday", [("date", "on Monday", "2026-12-07")]),
        ("in 3 days", [("date", "in 3 days", "2026-12-04")]),
    ],
)
def test_amounts_dates_and_times(text: str, expected: list[tuple[str, str, str]]) -> None:
    assert values(text) == expected


def test_numbers_that_identify_people_and_cards() -> None:
    assert values("尾号1234的卡") == [("card_last4", "尾号1234", "1234")]
    assert values("my card ending in 9876") == [("card_last4", "ending in 9876", "9876")]
    assert values("我的手机号是138 0013 8000") == [("phone", "138 0013 8000", "+8613800138000")]
    assert values("身份证110101199003074514") == [("cn_id", "110101199003074514", "110101199003074514")]
    assert values("身份证110101199003074515") == []  # bad check digit: not an ID number
    card = "4111 1111 1111 1111"  # Luhn-valid test card number
    assert values(f"卡号{card}") == [("card_number", card, "4111111111111111")]
    assert values("account number 1234567890123")[0][::2] == ("account_number", "1234567890123")


def test_product_names_from_the_gazetteer() -> None:
    products = {"稳健增长基金": "FND-001", "Platinum Card": "CC-002"}
    found = values("我想了解稳健增长基金和platinum card", products=products)
    assert found == [("product", "稳健增长基金", "FND-001"), ("product", "platinum card", "CC-002")]
