"""Fast single-utterance scoring for the intent classifier's linear head, and the nearest-neighbour vote.

:class:`FastLinearHead` computes exactly what ``LinearSVC.decision_function`` gives on the classifier's TF-IDF +
embedding features, for one text, with vocabulary look-ups and small dense products instead of building sparse
matrices (~0.1 ms instead of ~3 ms per call). It reads the fitted scikit-learn vectorizers (word n-grams on a custom
preprocessor and token pattern; ``char_wb`` n-grams; sublinear tf, l2 norm) and the SVM's coefficients.

:func:`knn_vote` scores each label by its nearest training example in embedding space. Pure numpy; any thread.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["FastLinearHead", "knn_vote", "zscore"]

_WHITE = re.compile(r"\s\s+")


class FastLinearHead:
    """Scores of a fitted ``LinearSVC`` over ``[words | chars | embeddings * weight]`` features for one text."""

    def __init__(
        self, words: Any, chars: Any, svm: Any, embedding_dims: Sequence[int], embedding_weight: float
    ) -> None:
        coef = np.asarray(svm.coef_, dtype=np.float64)
        if coef.shape[0] == 1:  # two classes: one margin, positive for classes_[1]
            coef = np.vstack([-coef, coef]) / 2
            self._bias = np.array([-svm.intercept_[0], svm.intercept_[0]], dtype=np.float64) / 2
        else:
            self._bias = np.asarray(svm.intercept_, dtype=np.float64)
        n_words, n_chars = len(words.vocabulary_), len(chars.vocabulary_)
        self._word_vocab, self._char_vocab = words.vocabulary_, chars.vocabulary_
        self._word_idf, self._char_idf = words.idf_, chars.idf_
        self._word_w = np.ascontiguousarray(coef[:, :n_words].T)
        self._char_w = np.ascontiguousarray(coef[:, n_words : n_words + n_chars].T)
        self._emb_w = []
        offset = n_words + n_chars
        for dim in embedding_dims:
            self._emb_w.append(np.ascontiguousarray(coef[:, offset : offset + dim].T) * embedding_weight)
            offset += dim
        self._preprocess = words.build_preprocessor()
        self._token = re.compile(words.token_pattern)
        self._word_range = words.ngram_range
        self._char_range = chars.ngram_range

    @staticmethod
    def _block(grams: list[str], vocab: dict[str, int], idf: npt.NDArray[np.float64], weights: Any) -> Any:
        counts = Counter(g for g in grams if g in vocab)
        if not counts:
            return 0.0
        idx = np.fromiter((vocab[g] for g in counts), np.int64, len(counts))
        values = (1.0 + np.log(np.fromiter(counts.values(), np.float64, len(counts)))) * idf[idx]
        return (values / np.linalg.norm(values)) @ weights[idx]

    def _word_grams(self, text: str) -> list[str]:
        tokens = self._token.findall(self._preprocess(text))
        low, high = self._word_range
        grams = []
        for n in range(low, high + 1):
            grams += [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
        return grams

    def _char_grams(self, text: str) -> list[str]:
        low, high = self._char_range
        grams: list[str] = []
        for word in _WHITE.sub(" ", text.lower()).split():
            padded = f" {word} "
            for n in range(low, high + 1):
                grams.extend(padded[i : i + n] for i in range(max(1, len(padded) - n + 1)))
                if len(padded) <= n:
                    break
        return grams

    def scores(self, text: str, embeddings: Sequence[npt.NDArray[np.float32]]) -> npt.NDArray[np.float64]:
        """Decision scores (one per class, scikit-learn's class order) of ``text`` with its unit embeddings."""
        out = self._bias + self._block(self._word_grams(text), self._word_vocab, self._word_idf, self._word_w)
        out = out + self._block(self._char_grams(text), self._char_vocab, self._char_idf, self._char_w)
        for vector, weights in zip(embeddings, self._emb_w, strict=True):
            out = out + vector.astype(np.float64) @ weights
        return np.asarray(out, dtype=np.float64)


def knn_vote(
    queries: npt.NDArray[np.float32],
    bank: npt.NDArray[np.float32],
    bank_labels: npt.NDArray[np.intp],
    n_labels: int,
) -> npt.NDArray[np.float64]:
    """Per query row and label, the cosine similarity of the label's nearest bank row (rows are unit vectors;
    -1 for a label without rows). Absolute, not relative: an utterance far from every example scores low for all
    labels, which keeps the out-of-scope decision meaningful."""
    sims = (queries @ bank.T).astype(np.float64)
    out = np.full((len(queries), n_labels), -1.0, dtype=np.float64)
    for row in range(len(queries)):
        np.maximum.at(out[row], bank_labels, sims[row])
    return out


def zscore(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Each row shifted to mean 0 and scaled to unit standard deviation."""
    std = scores.std(axis=1, keepdims=True)
    result: npt.NDArray[np.float64] = (scores - scores.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1.0)
    return result
