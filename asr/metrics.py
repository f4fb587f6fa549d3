"""Word and character error rates for recognised speech.

English is scored by words (WER), Chinese by characters (CER; a run of Latin letters or digits inside Chinese text
counts as one token). Both sides go through :func:`asr.normalize.normalize_for_scoring` first, identically.
:class:`ErrorCounts` keeps errors and reference length, so that a corpus rate is the sum of errors over the sum of
reference tokens (not a mean of per-clip rates). Pure Python, thread-safe.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from asr.normalize import TextLang, normalize_for_scoring

__all__ = ["ErrorCounts", "char_errors", "edit_ops", "error_counts", "word_errors"]


@dataclass(frozen=True)
class ErrorCounts:
    """Edit operations that turn a reference into a hypothesis, and the reference length (tokens)."""

    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    ref_len: int = 0

    @property
    def errors(self) -> int:
        """Substitutions + deletions + insertions."""
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """errors / ref_len; 0.0 for an empty reference with an empty hypothesis, else ``inf`` when empty."""
        if self.ref_len == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return self.errors / self.ref_len

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.ref_len + other.ref_len,
        )


def edit_ops(ref: Sequence[str], hyp: Sequence[str]) -> ErrorCounts:
    """Levenshtein alignment of token sequences (unit costs) with the operation counts of one best path.

    Ties between equal-cost paths prefer a match or substitution, then a deletion, then an insertion (the error
    total is the same either way). O(len(ref) × len(hyp)) time, O(len(hyp)) memory.
    """
    # each cell: (cost, substitutions, deletions, insertions)
    prev = [(j, 0, 0, j) for j in range(len(hyp) + 1)]
    for i in range(1, len(ref) + 1):
        cur = [(i, 0, i, 0)]
        r = ref[i - 1]
        for j in range(1, len(hyp) + 1):
            diag = prev[j - 1]
            best = diag if r == hyp[j - 1] else (diag[0] + 1, diag[1] + 1, diag[2], diag[3])
            up = prev[j]
            if up[0] + 1 < best[0]:
                best = (up[0] + 1, up[1], up[2] + 1, up[3])
            left = cur[j - 1]
            if left[0] + 1 < best[0]:
                best = (left[0] + 1, left[1], left[2], left[3] + 1)
            cur.append(best)
        prev = cur
    _, subs, dels, ins = prev[-1]
    return ErrorCounts(subs, dels, ins, len(ref))


def word_errors(ref: str, hyp: str) -> ErrorCounts:
    """Word-level errors between two already normalised strings (split on whitespace)."""
    return edit_ops(ref.split(), hyp.split())


def char_errors(ref: str, hyp: str) -> ErrorCounts:
    """Character-level errors between two already normalised strings; whitespace is ignored, except that a
    space-separated token of several characters (a Latin word or a number) counts as one token."""
    return edit_ops(_char_tokens(ref), _char_tokens(hyp))


def _char_tokens(text: str) -> list[str]:
    tokens: list[str] = []
    for word in text.split():
        if word.isascii():
            tokens.append(word)
        else:
            tokens.extend(word)
    return tokens


def error_counts(reference: str, hypothesis: str, lang: TextLang) -> ErrorCounts:
    """Normalise both sides with :func:`normalize_for_scoring` and count word (``en``) or character (``zh``)
    errors. Use ``sum`` of the results' counts for a corpus rate."""
    ref = normalize_for_scoring(reference, lang)
    hyp = normalize_for_scoring(hypothesis, lang)
    return word_errors(ref, hyp) if lang == "en" else char_errors(ref, hyp)
