"""A BM25 lexical scorer for Chinese and English, to blend with vector search (hybrid ranking).

Tokens: Chinese runs are segmented with jieba (its bundled dictionary; no download), other text is split into
lower-cased words and numbers. BM25 with the usual ``k1 = 1.5``, ``b = 0.75``. Built in memory from the passages
(milliseconds for a few thousand); a query scores only passages that share a token with it (inverted lists).
Blocking, CPU-bound; thread-safe for searching once built.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import warnings
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

__all__ = ["Bm25Index", "tokenize"]

_CJK_RUN = re.compile(r"[\u3400-\u9fff]+")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_STOP_EN_WORDS = (
    "a an the i my me to of and or is are am be do does did can could would should how what i'm it in on for "
    "with you your we our this that there please want need"
)
_STOP_ZH_WORDS = "的 了 吗 呢 吧 啊 我 你 您 是 在 有 要 想 请问 一下 怎么 如何 可以 能 么"
_STOP_EN = frozenset(_STOP_EN_WORDS.split())
_STOP_ZH = frozenset(_STOP_ZH_WORDS.split())
_jieba_lock = threading.Lock()
_jieba: Any = None


def _segmenter() -> Any:
    global _jieba
    with _jieba_lock:
        if _jieba is None:
            with warnings.catch_warnings():  # jieba 0.42 imports the deprecated pkg_resources
                warnings.simplefilter("ignore", UserWarning)
                import jieba

            jieba.setLogLevel(logging.WARNING)
            jieba.initialize()
            _jieba = jieba
        return _jieba


def tokenize(text: str) -> list[str]:
    """Lexical tokens of ``text``: jieba words for Chinese runs, lower-cased words for the rest, stop words
    dropped."""
    tokens: list[str] = []
    lowered = text.lower()
    position = 0
    for run in _CJK_RUN.finditer(lowered):
        tokens += [w for w in _WORD.findall(lowered[position : run.start()]) if w not in _STOP_EN]
        tokens += [w for w in _segmenter().lcut(run.group()) if w.strip() and w not in _STOP_ZH]
        position = run.end()
    tokens += [w for w in _WORD.findall(lowered[position:]) if w not in _STOP_EN]
    return tokens


class Bm25Index:
    """BM25 over ``(id, text)`` passages (see the module docstring)."""

    def __init__(self, ids: Sequence[str], texts: Sequence[str], *, k1: float = 1.5, b: float = 0.75) -> None:
        if len(ids) != len(texts):
            raise ValueError("ids and texts differ in length")
        self.ids = list(ids)
        self._k1, self._b = k1, b
        docs = [Counter(tokenize(t)) for t in texts]
        self._lengths = [sum(d.values()) for d in docs]
        self._avg = (sum(self._lengths) / len(docs)) if docs else 0.0
        self._postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for row, doc in enumerate(docs):
            for token, tf in doc.items():
                self._postings[token].append((row, tf))
        n = len(docs)
        self._idf = {t: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for t, p in self._postings.items()}

    def scores(self, query: str) -> dict[int, float]:
        """BM25 score per passage row that shares a token with ``query`` (others score 0)."""
        out: dict[int, float] = defaultdict(float)
        for token in set(tokenize(query)):
            idf = self._idf.get(token)
            if idf is None:
                continue
            for row, tf in self._postings[token]:
                norm = 1 - self._b + self._b * self._lengths[row] / (self._avg or 1.0)
                out[row] += idf * tf * (self._k1 + 1) / (tf + self._k1 * norm)
        return out

    def search(self, query: str, k: int = 5) -> list[tuple[str, float]]:
        """Top-``k`` ``(id, score)``, best first."""
        ranked = sorted(self.scores(query).items(), key=lambda kv: -kv[1])[:k]
        return [(self.ids[r], s) for r, s in ranked]
