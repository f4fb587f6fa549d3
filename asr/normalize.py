"""Text normalisation of recognised speech, for display and for scoring.

* :func:`normalize_for_display` is what users see: Simplified Chinese (Whisper base often writes Traditional
  characters), full-width letters and digits made half-width, Chinese punctuation made full-width, no stray spaces
  between Chinese characters, collapsed whitespace.
* :func:`normalize_for_scoring` is applied identically to a reference and to a hypothesis before WER/CER: the display
  steps, then lowercase, no punctuation, English contractions expanded, English number words made digits
  (``eighteen thirteen`` → ``1813``, ``two hundred and five`` → ``205``), Arabic digits in Chinese spelt as Chinese
  numerals (``2015年`` → ``二零一五年``, ``25`` → ``二十五``). It never looks at the other side.

Traditional → Simplified uses ``opencc-python-reimplemented`` (pure Python, offline dictionaries in the wheel),
imported lazily and built once per process. All functions are pure and thread-safe.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable
from typing import Literal

__all__ = [
    "TextLang",
    "cjk_chars",
    "digits_to_chinese",
    "english_numbers_to_digits",
    "normalize_for_display",
    "normalize_for_scoring",
    "to_simplified",
]

TextLang = Literal["zh", "en"]

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_RE = re.compile(f"[{_CJK}]")
_SPACE_BETWEEN_CJK = re.compile(f"(?<=[{_CJK}])\\s+(?=[{_CJK}])")
_WS = re.compile(r"\s+")

_converter: Callable[[str], str] | None = None
_converter_lock = threading.Lock()


def to_simplified(text: str) -> str:
    """Traditional Chinese characters to Simplified (OpenCC ``t2s``); other characters are left as they are."""
    global _converter
    if not _CJK_RE.search(text):
        return text
    if _converter is None:
        with _converter_lock:
            if _converter is None:
                from opencc import OpenCC  # type: ignore[import-untyped]

                _converter = OpenCC("t2s").convert
    assert _converter is not None
    return _converter(text)


def cjk_chars(text: str) -> int:
    """Number of CJK ideographs in ``text``."""
    return len(_CJK_RE.findall(text))


# ------------------------------------------------------------------------------------------------ width

_HALF_TO_FULL_PUNCT = str.maketrans({",": "，", "?": "？", "!": "！", ":": "：", ";": "；", "(": "（", ")": "）"})
_CJK_SENTENCE_DOT = re.compile(f"(?<=[{_CJK}])\\.(?!\\d)")


def _unify_width(text: str) -> str:
    """Full-width ASCII letters, digits and symbols (U+FF01–FF5E) and the ideographic space to half-width."""
    out = []
    for ch in text:
        code = ord(ch)
        if 0xFF01 <= code <= 0xFF5E:
            out.append(chr(code - 0xFEE0))
        elif code == 0x3000:
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def normalize_for_display(text: str, lang: TextLang) -> str:
    """Clean recogniser output for people: Simplified Chinese, half-width letters/digits, tidy spaces.

    For ``zh`` the punctuation ``, ? ! : ; ( )`` and a sentence-final ``.`` after a Chinese character become
    their full-width Chinese forms and spaces between Chinese characters go; for ``en`` whitespace is collapsed.
    """
    text = _WS.sub(" ", _unify_width(unicodedata.normalize("NFC", text))).strip()
    if lang == "zh" or _CJK_RE.search(text):
        text = to_simplified(text)
        text = _SPACE_BETWEEN_CJK.sub("", text)
        if lang == "zh":
            text = _CJK_SENTENCE_DOT.sub("。", text).translate(_HALF_TO_FULL_PUNCT)
            text = re.sub(r"\s*([，。？！：；（）、])\s*", r"\1", text)
    return collapse_repeats(text)


_KEY_CHARS = re.compile(r"[^\w]")


def collapse_repeats(text: str, *, min_units: int = 4, max_units: int = 400) -> str:
    """Remove Whisper's decoding loops: a run of at least ``min_units`` words (characters for Chinese) said twice
    in a row keeps only its first copy ("… ask what you can do for your country what you can do for your country"
    → one copy). Punctuation and case are ignored when comparing. Texts longer than ``max_units`` are returned as
    they are (the search is quadratic)."""
    cjk = bool(_CJK_RE.search(text))
    pieces = list(text) if cjk else text.split(" ")
    if len(pieces) < 2 * min_units or len(pieces) > max_units:
        return text
    changed = True
    while changed:
        changed = False
        units = [(i, key) for i, p in enumerate(pieces) if (key := _KEY_CHARS.sub("", p.lower()))]
        keys = [key for _, key in units]
        for k in range(len(keys) // 2, min_units - 1, -1):
            at = next((i for i in range(len(keys) - 2 * k + 1) if keys[i : i + k] == keys[i + k : i + 2 * k]), None)
            if at is not None:
                first, last = units[at + k][0], units[at + 2 * k - 1][0]
                del pieces[first : last + 1]
                changed = True
                break
    out = "".join(pieces) if cjk else " ".join(p for p in pieces if p)
    return _WS.sub(" ", out).strip()


# -------------------------------------------------------------------------------------- English numbers

_UNITS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)  # fmt: skip
_UNIT_VALUE = {w: i for i, w in enumerate(_UNITS)}
_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_TENS_VALUE = {w: 10 * (i + 2) for i, w in enumerate(_TENS)}
_SCALE_VALUE = {"thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_CONTRACTIONS = {
    "won't": "will not", "can't": "can not", "cannot": "can not", "shan't": "shall not", "ain't": "is not",
    "let's": "let us", "i'm": "i am", "it's": "it is", "that's": "that is", "what's": "what is",
    "there's": "there is", "here's": "here is", "he's": "he is", "she's": "she is", "who's": "who is",
    "where's": "where is", "how's": "how is", "y'all": "you all", "o'clock": "oclock",
}  # fmt: skip
_SUFFIXES = (("n't", " not"), ("'re", " are"), ("'ve", " have"), ("'ll", " will"), ("'d", " would"))
_ABBREVIATIONS = {
    "mr": "mister", "mrs": "missus", "ms": "miss", "dr": "doctor", "st": "saint", "okay": "ok",
    "percent": "percent", "%": "percent", "&": "and", "vs": "versus",
}  # fmt: skip
_FILLERS = frozenset({"uh", "um", "umm", "uhm", "hmm", "mm", "mhm", "er", "erm", "ah"})


def _expand_contraction(word: str) -> str:
    if word in _CONTRACTIONS:
        return _CONTRACTIONS[word]
    for suffix, full in _SUFFIXES:
        if word.endswith(suffix) and len(word) > len(suffix):
            return word[: -len(suffix)] + full
    return word


def _is_number_word(word: str) -> bool:
    return word in _UNIT_VALUE or word in _TENS_VALUE or word in _SCALE_VALUE or word == "hundred"


def english_numbers_to_digits(words: list[str]) -> list[str]:
    """Replace runs of lowercase English cardinal number words by digit strings.

    ``["two", "hundred", "and", "five"]`` → ``["205"]``; ``["twenty", "one"]`` → ``["21"]``; a year said in
    two pairs, ``["eighteen", "thirteen"]`` or ``["nineteen", "hundred"]``, → ``["1813"]`` / ``["1900"]``;
    ``"a hundred"`` → ``"100"``. Ordinals (``first``) and anything else pass through unchanged.
    """
    groups: list[tuple[int, str]] = []  # (value, kind of the last word) of the run being read
    out: list[str] = []
    total = current = 0
    last = ""  # "", "unit", "teen", "tens", "hundred", "scale"

    def flush() -> None:
        nonlocal total, current, last
        if last:
            groups.append((total + current, last))
        total = current = 0
        last = ""

    def emit_groups() -> None:
        flush()
        merged: list[str] = []
        i = 0
        while i < len(groups):
            value = groups[i][0]
            nxt = groups[i + 1][0] if i + 1 < len(groups) else None
            if 10 <= value <= 99 and nxt is not None and 10 <= nxt <= 99:  # "eighteen thirteen" → 1813
                merged.append(f"{value}{nxt:02d}")
                i += 2
            else:
                merged.append(str(value))
                i += 1
        out.extend(merged)
        groups.clear()

    n = len(words)
    for i, word in enumerate(words):
        nxt = words[i + 1] if i + 1 < n else ""
        if word in _UNIT_VALUE:
            value = _UNIT_VALUE[word]
            if last in ("unit", "teen") or (last == "tens" and (value >= 10 or value == 0)):
                flush()
            current += value
            last = "teen" if value >= 10 else "unit"
        elif word in _TENS_VALUE:
            if last in ("unit", "teen", "tens"):
                flush()
            current += _TENS_VALUE[word]
            last = "tens"
        elif word == "hundred":
            if last == "hundred":
                flush()
            current = (current or 1) * 100  # "two hundred" 200, "nineteen hundred" 1900
            last = "hundred"
        elif word in _SCALE_VALUE:
            total += (current or 1) * _SCALE_VALUE[word]
            current = 0
            last = "scale"
        elif word == "a" and nxt in ("hundred", *_SCALE_VALUE) and not last:
            current, last = 1, "unit"
        elif word == "and" and last in ("hundred", "scale") and _is_number_word(nxt) and nxt not in _SCALE_VALUE:
            continue
        else:
            emit_groups()
            out.append(word)
    emit_groups()
    return out


def _english_scoring(text: str) -> str:
    text = text.lower().replace("’", "'").replace("‘", "'")
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 1,000 → 1000
    text = re.sub(r"\$(\d+(?:\.\d+)?)", r"\1 dollars", text)
    text = re.sub(r"(\d)%", r"\1 percent", text)
    text = re.sub(r"(\d)(st|nd|rd|th)\b", r"\1", text)  # 21st → 21 (the ordinal word stays a word)
    text = re.sub(r"[-‐‑–—/]", " ", text)  # hyphens and dashes separate words
    words: list[str] = []
    for raw in text.split():
        raw = raw.strip("\"'“”()[]{}<>,.;:!?…")
        for part in _expand_contraction(raw).split():
            part = re.sub(r"[^\w'%&.]", "", part)
            part = re.sub(r"\.(?!\d)", "", part).replace("'", "")
            part = _ABBREVIATIONS.get(part, part)
            if part and part not in _FILLERS:
                words.append(part)
    return " ".join(english_numbers_to_digits(words))


# -------------------------------------------------------------------------------------- Chinese numbers

_ZH_DIGITS = "零一二三四五六七八九"


def _cardinal_zh(n: int) -> str:
    """0 ≤ n < 10**8 as Chinese numerals: 15 → 十五, 105 → 一百零五, 20000 → 两万 is avoided (二万)."""
    if n == 0:
        return "零"
    if n >= 10_000:
        high, low = divmod(n, 10_000)
        rest = _cardinal_zh(low) if low else ""
        return _cardinal_zh(high) + "万" + ("零" if low and low < 1000 else "") + rest
    parts: list[str] = []
    zero = False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        digit = n // value % 10
        if digit:
            if zero and parts:
                parts.append("零")
            parts.append(_ZH_DIGITS[digit] + unit)
            zero = False
        elif parts:
            zero = True
    text = "".join(parts)
    return text[1:] if text.startswith("一十") else text


def digits_to_chinese(text: str) -> str:
    """Spell Arabic digits as Chinese numerals, the way the digits are read aloud.

    Runs of four or more digits and runs starting with ``0`` (years, phone and account numbers) are read digit by
    digit (``2015`` → ``二零一五``); shorter runs as cardinals (``25`` → ``二十五``); decimals as ``点`` plus digits;
    ``50%`` → ``百分之五十``.
    """

    def spell(match: re.Match[str]) -> str:
        whole, frac, percent = match.group(1), match.group(2), match.group(3)
        if len(whole) >= 4 or (whole.startswith("0") and len(whole) > 1):
            spoken = "".join(_ZH_DIGITS[int(d)] for d in whole)
        else:
            spoken = _cardinal_zh(int(whole))
        if frac:
            spoken += "点" + "".join(_ZH_DIGITS[int(d)] for d in frac[1:])
        return "百分之" + spoken if percent else spoken

    return re.sub(r"(\d+)(\.\d+)?(%)?", spell, text)


_ZH_TOKEN = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+")


def _chinese_scoring(text: str) -> str:
    text = digits_to_chinese(text.lower())
    text = text.replace("两", "二")  # 两 and 二 are the same number said two ways
    return " ".join(_ZH_TOKEN.findall(text))


def normalize_for_scoring(text: str, lang: TextLang) -> str:
    """Canonical text for WER/CER, applied identically to the reference and to the hypothesis.

    ``en``: lowercase words separated by single spaces, no punctuation, contractions expanded, number words as
    digits, fillers (uh, um) dropped. ``zh``: one token per Chinese character (space-separated) and one per run of
    Latin letters/digits, Simplified, Arabic digits spelt as Chinese numerals, ``两`` counted as ``二``, no
    punctuation. Mixed text is handled by the rules of ``lang``.
    """
    text = normalize_for_display(text, "en" if lang == "en" else "zh")
    text = unicodedata.normalize("NFKC", text)
    if lang == "zh":
        return _chinese_scoring(text)
    return _english_scoring(text)
