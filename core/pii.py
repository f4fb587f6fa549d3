"""Detection and masking of customer PII: card numbers, Chinese resident ID numbers, account and phone numbers, names.

:func:`mask_text` masks free text (log messages, exception text, export cells); :func:`mask_value` masks
structured data recursively and also applies key-based rules (names under ``name``/``customer_name``/…, and
whole values under ``phone``/``card_number``/…). Detection is deliberately conservative for ordinary numbers:
card numbers must pass the Luhn check and start like a payment card, ID numbers must carry a valid
ISO 7064 MOD 11-2 check character and a real date of birth. Free-text names cannot be detected: put them in
structured fields.

Everything here is pure and thread-safe.
"""

from __future__ import annotations

import re
from datetime import date

__all__ = [
    "NAME_KEYS",
    "SECRET_KEYS",
    "cn_id_valid",
    "luhn_valid",
    "mask_name",
    "mask_text",
    "mask_value",
]

_CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_ID_CHECK = "10X98765432"
_MAX_DEPTH = 32


def _norm_key(key: object) -> str:
    """``"customerName"``, ``"Customer-Name"`` and ``"customer_name"`` all become ``"customername"``."""
    return re.sub(r"[^0-9a-z]", "", str(key).lower())


NAME_KEYS = frozenset(
    _norm_key(k)
    for k in (
        "name", "customer_name", "full_name", "caller_name", "callee_name", "first_name", "last_name",
        "given_name", "family_name", "surname", "name_zh", "name_en", "contact_name", "holder_name",
        "cardholder_name",
    )
)  # fmt: skip
"""Normalised field keys whose string values are personal names (masked to ``张*`` / ``J*** D**``).
Staff ``username`` is deliberately absent."""

SECRET_KEYS = frozenset(
    _norm_key(k)
    for k in (
        "phone", "phones", "phone_number", "mobile", "msisdn", "caller", "callee", "id_number", "id_no",
        "id_card", "card_number", "card_no", "account_number", "account_no",
    )
)  # fmt: skip
"""Normalised field keys whose values are masked entirely (``***``), whatever they look like."""


def luhn_valid(number: str) -> bool:
    """True when ``number`` (decimal digits; spaces and dashes ignored) has at least 2 digits and passes the
    Luhn (mod 10) check used by payment card numbers."""
    digits = number.replace(" ", "").replace("-", "")
    if len(digits) < 2 or not digits.isdecimal():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def cn_id_valid(value: str) -> bool:
    """True when ``value`` is an 18-character PRC resident ID number (17 digits and a digit or ``X``) whose
    ISO 7064 MOD 11-2 check character is right and whose birth date (characters 7–14, ``YYYYMMDD``) is a real
    date from 1900 to 2099."""
    if len(value) != 18 or not value[:17].isdecimal() or not (value[17].isdecimal() or value[17] in "xX"):
        return False
    body = [int(c) for c in value[:17]]
    check = _CN_ID_CHECK[sum(d * w for d, w in zip(body, _CN_ID_WEIGHTS, strict=True)) % 11]
    last = "X" if value[17] in "xX" else str(int(value[17]))
    if check != last:
        return False
    year, month, day = int(value[6:10]), int(value[10:12]), int(value[12:14])
    if not 1900 <= year <= 2099:
        return False
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _card_like(digits: str) -> bool:
    """13–19 digits, a payment-card first digit (Mastercard 2-series 22–27, 3 Amex/JCB/Diners, 4 Visa,
    5 Mastercard, 6 UnionPay/Discover/Maestro, 9 legacy PRC domestic debit) and a valid Luhn check. Leading
    1 (ms/µs timestamps), 20/21 (``YYYYMMDD…`` stamps), 0, 7 and 8 are never taken for cards."""
    if not 13 <= len(digits) <= 19:
        return False
    if not (digits[0] in "34569" or "22" <= digits[:2] <= "27"):
        return False
    return luhn_valid(digits)


def _mask_card_digits(digits: str) -> str:
    return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]


def mask_name(name: str) -> str:
    """Keep the first character of each whitespace-separated word, star the rest: ``张三`` → ``张*``,
    ``John Doe`` → ``J*** D**``."""
    return " ".join(w[0] + "*" * (len(w) - 1) for w in name.split())


# Boundaries: no ASCII letter, digit or underscore on either side (CJK text may touch the number directly).
_ID_RE = re.compile(r"(?<![\dA-Za-z_])\d{17}[\dXx](?![\dA-Za-z_])")
# A maximal run of digit groups joined by single spaces or dashes; not the fraction or integer part of a
# decimal number.
_DIGIT_RUN_RE = re.compile(r"(?<![\dA-Za-z_])(?<!\d[ .-])\d++(?:[ -]\d++)*+(?![\dA-Za-z_])(?!\.\d)")
_PHONE_RE = re.compile(
    r"""(?<![\dA-Za-z_+])(?:
        (?:(?:\+|00)86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}    # PRC mobile, optional +86 / 0086
      | \+\d(?:[ ()-]{0,2}\d){7,14}                       # international: +, 8-15 digits, e.g. +1 415-555-0100
      | \(\d{3}\)[ ]?\d{3}[ .-]\d{4}                      # (415) 555-0100
      | \d{3}[.-]\d{3}[.-]\d{4}                           # 415-555-0100
      | 0\d{2,3}-\d{7,8}                                  # PRC landline 010-12345678
    )(?![\dA-Za-z_])""",
    re.VERBOSE,
)
_HAS_DIGIT_RE = re.compile(r"\d")
# A bank account number said or written after its keyword (账号 / 账户 / 帐号 / 户号 / account number / a/c):
# 8–30 digits, possibly in groups.
_ACCOUNT_RE = re.compile(
    r"(账号|账户(?:号码?)?|帐号|户号|卡号|account(?:\s+(?:number|no\.?|#))?|acct\.?|a/c)(\s*(?:is|是|为|:|：)?\s*)"
    r"(\d(?:[ -]?\d){7,29})(?![\dA-Za-z_])",
    re.IGNORECASE,
)


def _mask_id_match(m: re.Match[str]) -> str:
    s = m.group(0)
    return s[:3] + "*" * 13 + s[-2:] if cn_id_valid(s) else s


def _mask_card_match(m: re.Match[str]) -> str:
    run = m.group(0)
    parts = re.split(r"([ -])", run)
    groups, seps = parts[0::2], parts[1::2]
    if _card_like("".join(groups)):
        return _mask_card_digits("".join(groups))
    if len(groups) == 1:
        return run
    # Neighbouring numbers may be joined by spaces ("ids 1 4111 1111 1111 1111"): mask the longest card-like
    # sub-runs of whole groups, left to right.
    pieces: list[str] = []
    i = 0
    while i < len(groups):
        for j in range(len(groups), i, -1):
            candidate = "".join(groups[i:j])
            if _card_like(candidate):
                pieces.append(_mask_card_digits(candidate))
                break
        else:
            j = i + 1
            pieces.append(groups[i])
        if j < len(groups):
            pieces.append(seps[j - 1])
        i = j
    return "".join(pieces)


def _mask_phone_match(m: re.Match[str]) -> str:
    s = m.group(0)
    keep = len(re.findall(r"\d", s)) - 4
    out = []
    for ch in s:
        if ch.isdecimal() and keep > 0:
            out.append("*")
            keep -= 1
        else:
            out.append(ch)
    return "".join(out)


def _mask_account_match(m: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", m.group(3))
    return m.group(1) + m.group(2) + "*" * (len(digits) - 4) + digits[-4:]


def mask_text(text: str) -> str:
    """Mask PII in free text: resident ID numbers (``110*************3X``), Luhn-valid card numbers, also
    written in groups of digits (``622202******1234``), bank account numbers after their keyword (``账号
    ************5678``, ``account number ********5678``) and phone numbers, all digits but the last 4 starred
    (``*******8000``, ``+* ***-***-0100``). Amounts, durations, timestamps, UUIDs and call ids are left alone.
    """
    if not _HAS_DIGIT_RE.search(text):
        return text
    text = _ID_RE.sub(_mask_id_match, text)
    text = _DIGIT_RUN_RE.sub(_mask_card_match, text)
    text = _ACCOUNT_RE.sub(_mask_account_match, text)
    return _PHONE_RE.sub(_mask_phone_match, text)


def mask_value(value: object, key: object = None) -> object:
    """Mask PII in ``value`` found under field ``key``, recursively through dicts, lists, tuples and sets.

    Strings go through :func:`mask_text`; under a :data:`NAME_KEYS` key they are masked with
    :func:`mask_name`; under a :data:`SECRET_KEYS` key every string and number becomes ``"***"`` (``None`` and
    booleans stay). Integers of 11 or more digits that look like a phone or card number become masked
    strings. Other objects are replaced by their masked ``str()``. Nesting deeper than 32 levels is cut off.
    """
    return _mask(value, _key_rule(key), 0)


def _key_rule(key: object) -> str | None:
    if key is None:
        return None
    k = _norm_key(key)
    return "secret" if k in SECRET_KEYS else "name" if k in NAME_KEYS else None


def _mask(value: object, rule: str | None, depth: int) -> object:
    if depth > _MAX_DEPTH:
        return "[truncated]"
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return "***" if rule == "secret" else mask_name(value) if rule == "name" else mask_text(value)
    if isinstance(value, int | float):
        if rule == "secret":
            return "***"
        if isinstance(value, int) and abs(value) >= 10**10:
            masked = mask_text(str(value))
            return masked if masked != str(value) else value
        return value
    if isinstance(value, dict):
        return {k: _mask(v, _key_rule(k) or rule, depth + 1) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_mask(v, rule, depth + 1) for v in value)
    if isinstance(value, list | set | frozenset):
        return [_mask(v, rule, depth + 1) for v in value]
    return _mask(str(value), rule, depth + 1)
