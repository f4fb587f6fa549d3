"""Reading slot values from a caller's words (Chinese and English) or keypad digits. Pure; any thread.

* :func:`parse_digits` — a digit string read digit by digit: ``幺二三四``, ``一二三四``, ``1234``,
  ``one two three four`` (``oh`` = 0), with surrounding words (``尾号是幺二三四``) ignored;
* :func:`parse_date` — ``1980年5月1日``, ``一九八零年五月一日``, ``May 1st 1980``, ``1 May 1980``, ``19800501``,
  ``1980-05-01``, ``1980/5/1``; without a year, relative and weekday dates via :func:`nlu.entities.extract_entities`
  (``明天``, ``下周三``, ``next Friday``, ``3月5日``); a day of the month alone (``25号``, ``the 25th``) is its next
  occurrence;
* :func:`parse_amount` — money (``5000元``, ``两万三``, ``RMB 3,000``, ``five thousand``);
* :func:`parse_whole_number` — one whole number (a survey score: ``四分``, ``five``, ``4``);
* :func:`parse_yes_no` — 是/对/好的/可以 · 不/不是/不用, yes/yeah/correct · no/nope/wrong;
* :func:`match_choice` — an option whose synonym occurs in the text;
* :func:`is_agent_request` — 人工 / 转人工 / agent / operator / a human.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from agent.navigator.flows import Choice, Slot
from nlu.entities import extract_entities
from nlu.numbers import parse_en_number, parse_zh_number

__all__ = [
    "is_agent_request",
    "match_choice",
    "parse_amount",
    "parse_date",
    "parse_digits",
    "parse_slot",
    "parse_slot_keys",
    "parse_whole_number",
    "parse_yes_no",
]

_ZH_DIGITS = {"零": "0", "〇": "0", "洞": "0", "幺": "1", "一": "1", "二": "2", "两": "2", "三": "3", "四": "4",
              "五": "5", "六": "6", "七": "7", "拐": "7", "八": "8", "九": "9", "勾": "9"}  # fmt: skip
_EN_DIGITS = {"zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
              "six": "6", "seven": "7", "eight": "8", "nine": "9"}  # fmt: skip
_MONTHS = {m: i + 1 for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                            "nov", "dec"))}  # fmt: skip
_AGENT = re.compile(r"人工|转接客服|真人|\b(?:agent|operator|representative|human|real person)\b", re.IGNORECASE)
_NO_ZH = re.compile(r"不是|不对|不用|不要|不需要|没有|错了|^不|否|算了")
_YES_ZH = re.compile(r"是|对|好|可以|没错|嗯|确认|要|行|有|方便")
_NO_EN = re.compile(r"\b(?:no|nope|nah|not|wrong|don't|incorrect)\b", re.IGNORECASE)
_AMOUNT_TAIL = re.compile(r"\s*(?:元|块钱|块|人民币|yuan|rmb|kuai)?[，。,.!?？！\s]*$", re.IGNORECASE)
_YES_EN = re.compile(
    r"\b(?:yes|yeah|yep|yup|right|correct|sure|ok|okay|confirm|please do|speaking|that's me|it's me"
    r"|this is (?:he|she|me))\b",
    re.IGNORECASE,
)


def parse_slot(slot: Slot, text: str, *, today: date) -> object | None:
    """The value of ``slot`` in the caller's words: a digit string, a date, a Decimal (CNY), a bool or a
    :class:`Choice`; ``None`` when there is none."""
    if slot.type == "digits":
        return parse_digits(text, slot.length)
    if slot.type == "date":
        return parse_date(text, today=today)
    if slot.type == "amount":
        return parse_amount(text)
    if slot.type == "yes_no":
        return parse_yes_no(text)
    if slot.type == "number":
        return parse_whole_number(text, slot.minimum, slot.maximum)
    if slot.type == "text":
        return text.strip() or None
    return match_choice(text, slot.options)


def parse_slot_keys(slot: Slot, keys: str, *, today: date) -> object | None:
    """The value of ``slot`` from keypad digits: a date is ``YYYYMMDD``, yes/no is 1/2, a choice its DTMF key."""
    if slot.type == "digits":
        return parse_digits(keys, slot.length)
    if slot.type == "date":
        return parse_date(keys, today=today) if len(keys) == 8 else None
    if slot.type == "amount":
        return Decimal(keys) if keys.isdigit() and int(keys) > 0 else None
    if slot.type == "yes_no":
        return {"1": True, "2": False}.get(keys)
    if slot.type == "number":
        return parse_whole_number(keys, slot.minimum, slot.maximum) if keys.isdigit() else None
    if slot.type == "text":
        return None
    return next((o for o in slot.options if o.dtmf == keys), None)


def parse_whole_number(text: str, minimum: int | None = None, maximum: int | None = None) -> int | None:
    """One whole number said or keyed (``4``, ``四分``, ``four``, ``I'd give it a five``) within ``minimum`` and
    ``maximum``; ``None`` when there is none, several different ones, or it is out of range."""
    scored = re.findall(r"([0-9]{1,3}|[零一二两三四五六七八九十百]+)\s*分", text)  # "三分": the score itself
    text = " ".join(scored) if scored else text.replace("一般", " ")  # 一般 ("so-so") is not a one
    found: set[int] = {int(d) for d in re.findall(r"(?<![0-9])[0-9]{1,3}(?![0-9])", text)}
    for token in re.findall(r"[零一二两三四五六七八九十百]+", text):
        value = parse_zh_number(token)
        if value is not None and value == value.to_integral_value():
            found.add(int(value))
    for token in re.findall(r"[a-zA-Z]+", text):
        value = parse_en_number(token.lower())
        if value is not None and value == value.to_integral_value():
            found.add(int(value))
    if len(found) != 1:
        return None
    number = found.pop()
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        return None
    return number


def is_agent_request(text: str) -> bool:
    """Whether the caller asks for a human (人工, 转人工, agent, operator, representative)."""
    return _AGENT.search(text) is not None


def parse_digits(text: str, length: int | None = None) -> str | None:
    """The digits spoken or typed in ``text``; ``None`` when there are none or not exactly ``length``. A caller
    who says the digits twice ("6167, 6167"; speech recognition also writes a repetition like that) gives them once."""
    out: list[str] = []
    for token in re.findall(r"[0-9]|[a-zA-Z]+|[\u3400-\u9fff]", text):
        lowered = token.lower()
        if token.isdigit():
            out.append(token)
        elif lowered in _EN_DIGITS:
            out.append(_EN_DIGITS[lowered])
        elif token in _ZH_DIGITS:
            out.append(_ZH_DIGITS[token])
    digits = "".join(out)
    if length is not None and len(digits) == 2 * length and digits[:length] == digits[length:]:
        digits = digits[:length]
    if not digits or (length is not None and len(digits) != length):
        return None
    return digits


def parse_date(text: str, *, today: date) -> date | None:
    """The date in ``text`` (see the module docstring); ``None`` when there is none or it is not a real day."""
    cleaned = text.strip()
    m = re.search(r"((?:[0-9]|[零〇一二三四五六七八九]){4})\s*年\s*([0-9零一二两三四五六七八九十]{1,3})\s*月\s*"
                  r"([0-9零一二两三四五六七八九十]{1,3})\s*[日号]?", cleaned)  # fmt: skip
    if m:
        year = parse_digits(m.group(1), 4)
        month, day = parse_zh_number(m.group(2)), parse_zh_number(m.group(3))
        if year and month is not None and day is not None:
            return _day(int(year), int(month), int(day))
    m = re.search(r"(?<![0-9])(19[0-9]{2}|20[0-9]{2})[-/.]?([01]?[0-9])[-/.]?([0-3]?[0-9])(?![0-9])", cleaned)
    if m and (len(m.group(0)) == 8 or not m.group(0).isdigit()):
        return _day(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    lowered = cleaned.lower().replace(",", " ")
    month_name = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?"
    day_word = r"([0-9]{1,2}|[a-z]+(?:[ -][a-z]+)?)(?:st|nd|rd|th)?"
    m = re.search(rf"\b{month_name}\s+(?:the\s+)?{day_word}\s+([0-9]{{4}})\b", lowered)
    if m:
        return _en_day(m.group(3), m.group(1), m.group(2))
    m = re.search(rf"\b(?:the\s+)?{day_word}\s+(?:of\s+)?{month_name}\s+([0-9]{{4}})\b", lowered)
    if m:
        return _en_day(m.group(3), m.group(2), m.group(1))
    for entity in extract_entities(cleaned, today=today):
        if entity.kind == "date":
            return date.fromisoformat(entity.value)
    return _day_of_month(cleaned, lowered, today)


def _day_of_month(cleaned: str, lowered: str, today: date) -> date | None:
    """A day of the month alone (``25号``, ``二十五日``, ``the 25th``, ``on the twenty-fifth``): its next
    occurrence from ``today`` on (this month, else the next one that has that day)."""
    day: Decimal | None = None
    m = re.search(r"(?<![0-9月])([0-9]{1,2}|[一二三四五六七八九十]{1,3})\s*[号日](?!本)", cleaned)
    if m:
        day = Decimal(m.group(1)) if m.group(1).isdigit() else parse_zh_number(m.group(1))
    else:
        m = re.search(r"\bthe\s+([0-9]{1,2}|[a-z]+(?:[ -][a-z]+)?)(?:st|nd|rd|th)?\b", lowered) or re.search(
            r"\b([0-9]{1,2})(?:st|nd|rd|th)\b", lowered
        )
        if m:
            text = m.group(1)
            day = Decimal(text) if text.isdigit() else _ordinal(text)
    if day is None or not 1 <= day <= 31:
        return None
    year, month = today.year, today.month
    for _ in range(3):
        found = _day(year, month, int(day))
        if found is not None and found >= today:
            return found
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return None


def parse_amount(text: str) -> Decimal | None:
    """An amount of money in CNY (see the module docstring); ``None`` when there is none or it is not positive."""
    for entity in extract_entities(text, today=date(2000, 1, 1)):
        if entity.kind == "amount":
            found = Decimal(entity.value.split()[0])
            return found if found > 0 else None
    cleaned = re.sub(
        r"\s*(?:元|块钱|块|人民币|yuan|rmb|kuai)?[，。,.!?？！\s]*$", "", text.strip(), flags=re.IGNORECASE
    )
    cleaned = re.sub(r"^(?:大概|大约|差不多|是|about|around|it's|it is)\s*", "", cleaned, flags=re.IGNORECASE)
    value = parse_zh_number(cleaned) or parse_en_number(cleaned)
    return value if value is not None and value > 0 else None


def parse_yes_no(text: str) -> bool | None:
    """``True`` for yes, ``False`` for no, ``None`` when unclear; a "no" word wins over a "yes" word (不是)."""
    if _NO_ZH.search(text) or _NO_EN.search(text):
        return False
    if _YES_ZH.search(text) or _YES_EN.search(text):
        return True
    return None


def match_choice(text: str, options: tuple[Choice, ...]) -> Choice | None:
    """The option with the longest synonym (zh or en, case-insensitive) found in ``text``; ``None`` if none."""
    lowered = text.lower()
    best: tuple[int, Choice] | None = None
    for option in options:
        for synonym in (*option.synonyms_zh, *option.synonyms_en, option.label.zh, option.label.en):
            if synonym and synonym.lower() in lowered and (best is None or len(synonym) > best[0]):
                best = (len(synonym), option)
    return None if best is None else best[1]


def _en_day(year: str, month: str, day_text: str) -> date | None:
    day: Decimal | None = parse_en_number(day_text) if not day_text.isdigit() else Decimal(day_text)
    if day is None:
        ordinals = {"first": 1, "second": 2, "third": 3, "fifth": 5, "eighth": 8, "ninth": 9, "twelfth": 12}
        day = Decimal(ordinals.get(day_text, 0)) or _ordinal(day_text)
    return None if day is None else _day(int(year), _MONTHS[month[:3]], int(day))


def _ordinal(text: str) -> Decimal | None:
    """``twenty first`` → 21, ``fourth`` → 4."""
    words = re.split(r"[ -]", text)
    last = {"first": "one", "second": "two", "third": "three", "fifth": "five", "eighth": "eight", "ninth": "nine",
            "twelfth": "twelve", "twentieth": "twenty", "thirtieth": "thirty"}.get(words[-1])  # fmt: skip
    if last is None and words[-1].endswith("th"):
        last = words[-1][:-2]
    return parse_en_number(" ".join([*words[:-1], last])) if last else None


def _day(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None
