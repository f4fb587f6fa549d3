"""Chinese and English number words → numbers, for entity extraction (amounts, dates, times).

:func:`parse_zh_number` reads Chinese numerals with or without units (三, 十五, 两万三, 一千零五, 3千, 1.5万, 五百万)
and the colloquial elision of a trailing unit (两万三 = 23,000; 三千五 = 3,500). :func:`parse_en_number` reads digit
strings with separators and simple English number words (twenty five, one hundred, three thousand). Pure.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

__all__ = ["ZH_NUMBER", "parse_en_number", "parse_zh_number"]

_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "幺": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
}
_SMALL_UNITS = {"十": 10, "百": 100, "千": 1000}
_BIG_UNITS = {"万": 10_000, "亿": 100_000_000}
ZH_NUMBER = r"(?:[0-9]+(?:\.[0-9]+)?[十百千万亿]*|[零〇一幺二两三四五六七八九十百千万亿]+)"
"""A regular expression of one Chinese number (Chinese numerals, or digits with optional Chinese units)."""

_EN_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50,
    "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
_EN_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}


def _section(text: str) -> int | None:
    """A number below 10,000 written with 十/百/千; a digit right after 百 or 千 is the next unit's (三千五 = 3,500)."""
    total, digit, last_unit, after_unit = 0, None, 0, False
    for ch in text:
        if ch in _DIGITS:
            digit, after_unit = _DIGITS[ch], after_unit and ch not in "零〇"
        elif ch in _SMALL_UNITS:
            last_unit = _SMALL_UNITS[ch]
            total += (1 if digit is None else digit) * last_unit
            digit, after_unit = None, True
        else:
            return None
    if digit:
        total += digit * (last_unit // 10 if after_unit and last_unit >= 100 else 1)
    return total


def parse_zh_number(text: str) -> Decimal | None:
    """The value of a Chinese number (see the module docstring); ``None`` when ``text`` is not one."""
    text = text.strip()
    if not text:
        return None
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([十百千万亿]*)", text)
    if match:
        value = Decimal(match.group(1))
        for unit in match.group(2):
            value *= _SMALL_UNITS.get(unit) or _BIG_UNITS[unit]
        return value
    if all(ch in _DIGITS for ch in text) and len(text) > 1:  # digit by digit: 幺三八 (phone style)
        return Decimal("".join(str(_DIGITS[ch]) for ch in text))
    total = Decimal(0)
    rest = text
    for unit_char in ("亿", "万"):
        if unit_char in rest:
            head, rest = rest.split(unit_char, 1)
            head_value = parse_zh_number(head) if head else Decimal(1)
            if head_value is None:
                return None
            total += head_value * _BIG_UNITS[unit_char]
            if len(rest) == 1 and rest in _DIGITS and rest not in "零〇":
                return total + _DIGITS[rest] * _BIG_UNITS[unit_char] // 10  # 两万三 = 23,000
    if rest:
        section = _section(rest)
        if section is None:
            return None
        total += section
    return total


def parse_en_number(text: str) -> Decimal | None:
    """Digits (``1,500.50``, ``2.5k``) or English number words (``twenty five thousand``); ``None`` otherwise."""
    cleaned = text.strip().lower().replace(",", "")
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)\s*([km])?", cleaned)
    if match:
        try:
            value = Decimal(match.group(1))
        except InvalidOperation:
            return None
        return value * {"k": 1000, "m": 1_000_000, None: 1}[match.group(2)]
    words = re.split(r"[\s-]+", cleaned.replace(" and ", " "))
    if not words or any(w not in _EN_WORDS and w not in _EN_SCALES for w in words):
        return None
    total, current = 0, 0
    for w in words:
        if w in _EN_WORDS:
            current += _EN_WORDS[w]
        elif w == "hundred":
            current = max(current, 1) * 100
        else:
            total += max(current, 1) * _EN_SCALES[w]
            current = 0
    return Decimal(total + current)
