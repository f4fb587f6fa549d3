"""Entities in a caller's utterance, Chinese and English, with normalised values.

:func:`extract_entities` finds:

* ``amount`` — money: ``5000元``, ``两万三``/``两万三千块``, ``1.5万``, ``RMB 3,000``, ``$1,500``, ``2,000 dollars``;
  value ``"<amount> <currency>"`` (CNY unless a dollar sign or word says USD);
* ``date`` — ``今天/明天/后天/昨天``, ``下周五``, ``周三``/``星期三``, ``3月5日``/``3月5号``, ``三天后``, ``today``,
  ``tomorrow``, ``next Friday``, ``on Monday``, ``in 3 days``, ``2026-12-03``; value an ISO date relative to
  ``today`` (a weekday without "next"/下 is the next one from today on);
* ``time`` — ``下午三点``, ``三点半``, ``15:30``, ``3pm``, ``3:30 pm``; value ``HH:MM`` (24 h);
* ``card_last4`` — ``尾号1234``, ``ending in 1234``, ``last four digits 1234``;
* ``card_number`` (Luhn-valid 13–19 digits), ``cn_id`` (checksum-valid resident ID), ``phone`` (Chinese mobile,
  value E.164), ``account_number`` (other 10–20 digit numbers after 账号/账户/account);
* ``product`` — names from the ``products`` gazetteer (case-insensitive); value the product id.

Spans are character offsets into the text (end exclusive); overlapping matches keep the earlier, longer one. Pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from core.pii import cn_id_valid, luhn_valid
from nlu.numbers import ZH_NUMBER, parse_en_number, parse_zh_number

__all__ = ["Entity", "EntityKind", "extract_entities"]

EntityKind = Literal[
    "amount", "date", "time", "card_last4", "card_number", "cn_id", "phone", "account_number", "product"
]


@dataclass(frozen=True)
class Entity:
    kind: EntityKind
    start: int
    end: int
    text: str
    value: str
    """Normalised: ``"23000 CNY"``, ``"2026-12-04"``, ``"15:30"``, ``"1234"``, ``"+8613800138000"``, a product id."""


_WEEKDAYS_ZH = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6}
_WEEKDAYS_EN = {d: i for i, d in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                                             "sunday"))}  # fmt: skip
_RELATIVE_ZH = {"今天": 0, "明天": 1, "后天": 2, "大后天": 3, "昨天": -1, "前天": -2}
_RELATIVE_EN = {"today": 0, "tomorrow": 1, "yesterday": -1, "day after tomorrow": 2}
_NUM = ZH_NUMBER
_MONEY = r"[0-9][0-9,]*(?:\.[0-9]+)?"
_LAST4 = r"(?:尾号|末四位|后四位|ending (?:in|with)|last (?:four|4) digits(?: are| is)?)\s*[:：]?\s*([0-9]{4})(?![0-9])"
_AMOUNT = (
    rf"(?:(?:人民币|RMB|CNY|¥|￥)\s*({_MONEY})|(\$|USD\s*)({_MONEY})|({_MONEY}\s*[km]?)\s*(dollars?|yuan|rmb|bucks)"
    rf"|({_NUM})\s*(元|块钱|块|美元|美金))"
)
_DATE = (
    r"(大后天|今天|明天|后天|昨天|前天|(下+)?(?:周|星期|礼拜)([一二三四五六日天])"
    rf"|({_NUM})月({_NUM})[日号]|({_NUM})天(?:后|以后|之后)|[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}"
    r"|day after tomorrow|today|tomorrow|yesterday"
    r"|(?:(next|this|on) )?(monday|tuesday|wednesday|thursday|friday|saturday|sunday)|in ([0-9]+|[a-z]+) days?)"
)
_TIME = (
    rf"((上午|早上|中午|下午|晚上)?({_NUM})点(半|({_NUM})分?)?)"
    r"|(?<![0-9])([0-2]?[0-9]):([0-5][0-9])\s*(am|pm)?(?![0-9])|(?<![0-9:])([01]?[0-9])\s*(am|pm)\b"
)
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("cn_id", re.compile(r"(?<![0-9])[1-9][0-9]{16}[0-9Xx](?![0-9])")),
    ("card_number", re.compile(r"(?<![0-9])(?:[0-9][ -]?){12,18}[0-9](?![0-9])")),
    ("phone", re.compile(r"(?<![0-9])(?:\+?86[ -]?)?1[3-9][0-9](?:[ -]?[0-9]{4}){2}(?![0-9])")),
    ("account_number", re.compile(r"(?:账号|账户|帐号|account(?: number)?(?: is)?)[:：\s]*([0-9]{10,20})", re.I)),
    ("card_last4", re.compile(_LAST4, re.I)),
    ("amount", re.compile(_AMOUNT, re.I)),
    ("date", re.compile(_DATE, re.I)),
    ("time", re.compile(_TIME, re.I)),
]


def extract_entities(text: str, *, today: date, products: Mapping[str, str] | None = None) -> list[Entity]:
    """Every entity in ``text`` in order of position; ``products`` maps product names to ids."""
    found: list[Entity] = []
    for kind, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            value = _value(kind, match, today)
            if value is not None:
                start, end = match.span()
                found.append(Entity(kind, start, end, match.group(), value))  # type: ignore[arg-type]
    for name, product_id in (products or {}).items():
        for match in re.finditer(re.escape(name), text, re.I):
            found.append(Entity("product", match.start(), match.end(), match.group(), product_id))
    kept: list[Entity] = []
    for entity in sorted(found, key=lambda e: (e.start, -(e.end - e.start))):
        if not any(entity.start < k.end and k.start < entity.end for k in kept):
            kept.append(entity)
    return kept


def _value(kind: str, m: re.Match[str], today: date) -> str | None:
    digits = re.sub(r"[^0-9Xx]", "", m.group())
    if kind == "cn_id":
        return digits.upper() if cn_id_valid(digits) else None
    if kind == "card_number":
        return digits if 13 <= len(digits) <= 19 and luhn_valid(digits) else None
    if kind == "phone":
        national = digits[-11:]
        return f"+86{national}"
    if kind in ("account_number", "card_last4"):
        return m.group(1)
    if kind == "amount":
        return _amount(m)
    if kind == "date":
        day = _date(m, today)
        return day.isoformat() if day is not None else None
    return _time(m)


def _amount(m: re.Match[str]) -> str | None:
    cny, _usd_sign, usd_amount, en_amount, en_unit, zh_amount, zh_unit = m.groups()
    if cny:
        value, currency = parse_en_number(cny), "CNY"
    elif usd_amount:
        value, currency = parse_en_number(usd_amount), "USD"
    elif en_amount:
        value = parse_en_number(en_amount)
        currency = "USD" if en_unit.lower().startswith(("dollar", "buck")) else "CNY"
    else:
        value = parse_zh_number(zh_amount)
        currency = "USD" if zh_unit in ("美元", "美金") else "CNY"
    return None if value is None else f"{value.normalize():f} {currency}"


def _date(m: re.Match[str], today: date) -> date | None:
    word = m.group(1)
    lowered = word.lower()
    if word in _RELATIVE_ZH:
        return today + timedelta(days=_RELATIVE_ZH[word])
    if lowered in _RELATIVE_EN:
        return today + timedelta(days=_RELATIVE_EN[lowered])
    if m.group(3):  # 周三 / 下周五 / 下下周一
        weeks = len(m.group(2) or "")
        monday = today - timedelta(days=today.weekday())
        target = monday + timedelta(days=7 * weeks + _WEEKDAYS_ZH[m.group(3)])
        return target if weeks or target >= today else target + timedelta(days=7)
    if m.group(4):
        month, day = parse_zh_number(m.group(4)), parse_zh_number(m.group(5))
        if month is None or day is None:
            return None
        try:
            candidate = date(today.year, int(month), int(day))
        except ValueError:
            return None
        return candidate if candidate >= today - timedelta(days=180) else candidate.replace(year=today.year + 1)
    if m.group(6):
        n = parse_zh_number(m.group(6))
        return None if n is None else today + timedelta(days=int(n))
    if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", word):
        try:
            return date.fromisoformat(word)
        except ValueError:
            return None
    if m.group(8):
        wanted = _WEEKDAYS_EN[m.group(8).lower()]
        if (m.group(7) or "").lower() == "next":  # the Friday of next week, as 下周五
            return today - timedelta(days=today.weekday()) + timedelta(days=7 + wanted)
        return today + timedelta(days=(wanted - today.weekday()) % 7)
    if m.group(9):
        n = parse_en_number(m.group(9))
        return None if n is None else today + timedelta(days=int(n))
    return None


def _time(m: re.Match[str]) -> str | None:
    if m.group(1):
        period, hour_text, half, minute_text = m.group(2), m.group(3), m.group(4), m.group(5)
        hour, minute = parse_zh_number(hour_text), parse_zh_number(minute_text) if minute_text else 0
        if hour is None or minute is None:
            return None
        h, mi = int(hour), 30 if half == "半" else int(minute)
        if (period in ("下午", "晚上") and h < 12) or (period == "中午" and h < 11):
            h += 12
    elif m.group(6):
        h, mi = int(m.group(6)), int(m.group(7))
        h = _twelve_hour(h, m.group(8))
    else:
        h, mi = _twelve_hour(int(m.group(9)), m.group(10)), 0
    return f"{h:02d}:{mi:02d}" if 0 <= h < 24 and 0 <= mi < 60 else None


def _twelve_hour(hour: int, suffix: str | None) -> int:
    if suffix is None:
        return hour
    hour %= 12
    return hour + 12 if suffix.lower() == "pm" else hour
