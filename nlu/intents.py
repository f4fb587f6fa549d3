"""Intent classification of a caller's utterance against the question library, with calibrated confidence and an
out-of-scope decision.

Features: TF-IDF of words (1–2-grams) and characters (2–5-grams inside word boundaries; a Chinese character is a
"word" of its own), plus the sentence embeddings of one or more :class:`TextEncoder` (scaled by
``embedding_weight``), all in one sparse matrix; the head is a linear SVM (scikit-learn ``LinearSVC``). Confidence
is the softmax of the SVM scores divided by a temperature fitted on a held-out split (temperature scaling); the
out-of-scope threshold on the top confidence is chosen on that held-out split as well — never on test data: with
out-of-scope examples in the training data it maximises the mean of in-scope accuracy and out-of-scope recall,
without them it rejects ``reject_rate`` of held-out in-scope utterances. The head is then refitted on all examples.

``fit`` is blocking and CPU-bound (seconds for ~10k examples on 2 cores, most of it embedding); ``predict`` takes a
few ms plus the encoders' time. Not thread-safe while fitting; ``predict`` is safe from several threads once fitted.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from core.errors import InvalidInputError
from nlu.intent_head import FastLinearHead, knn_vote

__all__ = ["CachedEncoder", "IntentClassifier", "IntentConfig", "IntentResult", "IntentScore", "TextEncoder"]

_CJK = re.compile(r"([\u3400-\u9fff])")
_TOKEN = r"\S+"  # noqa: S105 - a regular expression, not a secret
"""Word tokens for TF-IDF after :func:`_spaced`: anything between spaces."""


class TextEncoder(Protocol):
    """What the classifier needs of an embedder (``knowledge.embeddings.Embedder`` fits it)."""

    name: str
    dim: int

    def embed_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True)
class IntentConfig:
    """Hyper-parameters (chosen on a split of Banking77's training data, see ``docs/nlu.md``)."""

    embedding_weight: float = 2.0
    svm_c: float = 0.5
    char_ngrams: tuple[int, int] = (2, 5)
    holdout_fraction: float = 0.1
    """Share of the examples held out to fit the temperature and the out-of-scope threshold."""
    reject_rate: float = 0.02
    """Without out-of-scope examples: share of held-out in-scope utterances the threshold may reject."""
    knn_weight: float = 2.0
    """Weight of the nearest-neighbour score (each label's best cosine similarity to the utterance) added to the
    SVM scores; 0 turns it off. Both are absolute, so an utterance unlike every example stays unsure."""
    seed: int = 0


@dataclass(frozen=True)
class IntentScore:
    label: str
    confidence: float
    """Calibrated probability in [0, 1]."""


@dataclass(frozen=True)
class IntentResult:
    """Top-k intents (best first) and whether the utterance is out of scope (top confidence under the threshold)."""

    top: tuple[IntentScore, ...]
    out_of_scope: bool

    @property
    def label(self) -> str | None:
        """The predicted label, ``None`` when out of scope."""
        return None if self.out_of_scope or not self.top else self.top[0].label


def _spaced(text: str) -> str:
    """Chinese characters as separate tokens, so word n-grams work for both languages."""
    return _CJK.sub(r" \1 ", text.lower())


class IntentClassifier:
    """Fits on labelled examples, predicts top-k intents (see the module docstring)."""

    def __init__(self, encoders: Sequence[TextEncoder] = (), config: IntentConfig | None = None) -> None:
        self.encoders = tuple(encoders)
        self.config = config if config is not None else IntentConfig()
        self.labels: tuple[str, ...] = ()
        self.temperature = 1.0
        self.threshold = 0.0
        self.fit_seconds = 0.0
        self._words: Any = None
        self._chars: Any = None
        self._svm: Any = None
        self._fast: FastLinearHead | None = None
        self._threadpools: Any = None
        self._bank: npt.NDArray[np.float32] | None = None
        self._bank_labels: npt.NDArray[np.intp] | None = None

    # --- features -------------------------------------------------------------------------------------------

    def _vectorizers(self) -> tuple[Any, Any]:
        from sklearn.feature_extraction.text import TfidfVectorizer

        words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, preprocessor=_spaced, token_pattern=_TOKEN)
        chars = TfidfVectorizer(
            analyzer="char_wb", ngram_range=self.config.char_ngrams, sublinear_tf=True, min_df=2, lowercase=True
        )
        return words, chars

    def _embed(self, texts: Sequence[str]) -> list[npt.NDArray[np.float32]]:
        return [np.asarray(e.embed_queries(list(texts)), dtype=np.float32) for e in self.encoders]

    def _features(self, texts: Sequence[str], embedded: Sequence[npt.NDArray[np.float32]], fit: bool) -> Any:
        from scipy.sparse import csr_matrix, hstack

        if fit:
            self._words, self._chars = self._vectorizers()
            parts = [self._words.fit_transform(texts), self._chars.fit_transform(texts)]
        else:
            parts = [self._words.transform(texts), self._chars.transform(texts)]
        parts += [csr_matrix(e * self.config.embedding_weight) for e in embedded]
        return hstack(parts).tocsr()

    # --- fitting --------------------------------------------------------------------------------------------

    def fit(self, texts: Sequence[str], labels: Sequence[str], *, oos_texts: Sequence[str] = ()) -> IntentClassifier:
        """Fit on ``texts``/``labels`` (every label at least twice); ``oos_texts`` are known out-of-scope
        utterances used only to choose the threshold. Raises :class:`InvalidInputError` for unusable data."""
        started = time.perf_counter()
        if len(texts) != len(labels) or not texts:
            raise InvalidInputError("intent training needs as many labels as texts, and at least one", n=len(texts))
        counts = Counter(labels)
        if len(counts) < 2:
            raise InvalidInputError("intent training needs at least two labels")
        rare = sorted(label for label, n in counts.items() if n < 2)
        if rare:
            raise InvalidInputError("every intent needs at least two examples", labels=rare[:10])
        y = np.asarray(labels)
        embedded = self._embed(texts)
        oos_embedded = self._embed(oos_texts) if oos_texts else []
        fit_idx, hold_idx = self._split(y)
        self._fit_head([texts[i] for i in fit_idx], [e[fit_idx] for e in embedded], y[fit_idx])
        hold_scores = self._scores([texts[i] for i in hold_idx], [e[hold_idx] for e in embedded])
        self.temperature = _fit_temperature(hold_scores, np.searchsorted(self._svm.classes_, y[hold_idx]))
        hold_conf = _softmax(hold_scores / self.temperature).max(axis=1)
        if oos_texts:
            oos_conf = _softmax(self._scores(oos_texts, oos_embedded) / self.temperature).max(axis=1)
            correct = self._svm.classes_[hold_scores.argmax(axis=1)] == y[hold_idx]
            self.threshold = _balanced_threshold(hold_conf, correct, oos_conf)
        else:
            self.threshold = float(np.quantile(hold_conf, self.config.reject_rate))
        self._fit_head(texts, embedded, y)
        self.labels = tuple(str(c) for c in self._svm.classes_)
        self.fit_seconds = time.perf_counter() - started
        return self

    def _split(self, y: npt.NDArray[np.str_]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
        """A stratified held-out split: about ``holdout_fraction`` of each label, at least one, never all."""
        rng = np.random.default_rng(self.config.seed)
        fit, hold = [], []
        for label in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == label))
            n = min(len(idx) - 1, max(1, round(len(idx) * self.config.holdout_fraction)))
            hold += list(idx[:n])
            fit += list(idx[n:])
        return np.asarray(sorted(fit)), np.asarray(sorted(hold))

    def _fit_head(self, texts: Sequence[str], embedded: Sequence[npt.NDArray[np.float32]], y: Any) -> None:
        from sklearn.svm import LinearSVC

        self._svm = LinearSVC(C=self.config.svm_c)
        self._svm.fit(self._features(texts, embedded, fit=True), y)
        dims = [e.shape[1] for e in embedded]
        self._fast = FastLinearHead(self._words, self._chars, self._svm, dims, self.config.embedding_weight)
        if embedded and self.config.knn_weight > 0:
            self._bank = _joined(embedded)
            self._bank_labels = np.searchsorted(self._svm.classes_, y).astype(np.intp)
        else:
            self._bank = self._bank_labels = None

    def _scores(self, texts: Sequence[str], embedded: Sequence[npt.NDArray[np.float32]]) -> npt.NDArray[np.float64]:
        """SVM scores, blended with the nearest-neighbour vote when there are embeddings (both z-scored)."""
        if len(texts) == 1 and self._fast is not None:
            scores = self._fast.scores(texts[0], [e[0] for e in embedded])[None, :]
        else:
            features = self._features(texts, embedded, fit=False)
            scores = np.asarray(self._svm.decision_function(features), dtype=np.float64)
            if scores.ndim == 1:  # two classes: scikit-learn gives one margin, positive for classes_[1]
                scores = np.stack([-scores, scores], axis=1) / 2
        if self._bank is None or self._bank_labels is None:
            return scores
        nearest = knn_vote(_joined(embedded), self._bank, self._bank_labels, scores.shape[1])
        return scores + self.config.knn_weight * nearest

    # --- prediction -----------------------------------------------------------------------------------------

    def _one_blas_thread(self) -> Any:
        """Numpy's BLAS limited to one thread while scoring: its worker threads otherwise keep spinning after the
        small products here and starve the encoder's threads (measured: 66 ms instead of 21 ms per utterance)."""
        if self._threadpools is None:
            from threadpoolctl import ThreadpoolController

            self._threadpools = ThreadpoolController()
        return self._threadpools.limit(limits=1, user_api="blas")

    def predict_many(self, texts: Sequence[str], k: int = 3) -> list[IntentResult]:
        """Top-``k`` intents of each text."""
        if self._svm is None:
            raise InvalidInputError("the intent classifier is not fitted")
        if not texts:
            return []
        embedded = self._embed(texts)
        with self._one_blas_thread():
            probs = _softmax(self._scores(texts, embedded) / self.temperature)
        out = []
        for row in probs:
            best = np.argsort(-row)[:k]
            top = tuple(IntentScore(self.labels[i], float(row[i])) for i in best)
            out.append(IntentResult(top, out_of_scope=top[0].confidence < self.threshold))
        return out

    def predict(self, text: str, k: int = 3) -> IntentResult:
        """Top-``k`` intents of one utterance."""
        return self.predict_many([text], k)[0]


def _joined(embedded: Sequence[npt.NDArray[np.float32]]) -> npt.NDArray[np.float32]:
    """The encoders' vectors side by side, as unit rows (for the nearest-neighbour vote)."""
    joined = np.hstack(embedded).astype(np.float32)
    norms = np.linalg.norm(joined, axis=1, keepdims=True)
    result: npt.NDArray[np.float32] = (joined / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    return result


def _softmax(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    shifted = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    result: npt.NDArray[np.float64] = e / e.sum(axis=1, keepdims=True)
    return result


def _fit_temperature(scores: npt.NDArray[np.float64], truth: npt.NDArray[np.intp]) -> float:
    """The temperature (from a log grid) that minimises the negative log-likelihood of the held-out labels."""
    best, best_nll = 1.0, math.inf
    for t in np.geomspace(0.01, 10.0, 61):
        p = _softmax(scores / t)[np.arange(len(truth)), truth]
        nll = float(-np.mean(np.log(np.clip(p, 1e-12, 1.0))))
        if nll < best_nll:
            best, best_nll = float(t), nll
    return best


def _balanced_threshold(
    in_conf: npt.NDArray[np.float64], correct: npt.NDArray[np.bool_], oos_conf: npt.NDArray[np.float64]
) -> float:
    """The threshold maximising (in-scope accuracy + out-of-scope recall) / 2 on held-out data."""
    candidates = np.unique(np.concatenate([in_conf, oos_conf, [0.0]]))
    best, best_score = 0.0, -1.0
    for t in candidates:
        score = (float(np.mean(correct & (in_conf >= t))) + float(np.mean(oos_conf < t))) / 2
        if score > best_score:
            best, best_score = float(t), score
    return best


class CachedEncoder:
    """Wraps a :class:`TextEncoder` and remembers the vector of every text it embedded (up to ``max_items``), so
    refitting after a small library change embeds only the new texts. Thread-safe enough for one fitting thread
    and several predicting threads (dict operations are atomic under the GIL)."""

    def __init__(self, encoder: TextEncoder, *, max_items: int = 200_000) -> None:
        self.encoder = encoder
        self.name = encoder.name
        self.dim = encoder.dim
        self.max_items = max_items
        self._cache: dict[str, npt.NDArray[np.float32]] = {}

    def save(self, path: Path) -> None:
        """Write the cache (texts and vectors) to ``path`` (``.npz``); blocking file I/O."""
        texts = list(self._cache)
        vectors = np.stack([self._cache[t] for t in texts]) if texts else np.zeros((0, self.dim), np.float32)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, texts=np.asarray(texts, dtype=object).astype(str), vectors=vectors, name=np.asarray(self.name))
        tmp.replace(path)

    def load(self, path: Path) -> int:
        """Read a cache written by :meth:`save` for the same encoder; returns how many vectors were loaded (0 when
        the file is missing, damaged or from another encoder)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["name"]) != self.name or data["vectors"].shape[1:] != (self.dim,):
                    return 0
                self._cache.update(zip(data["texts"].tolist(), data["vectors"].astype(np.float32), strict=True))
                return len(data["texts"])
        except (OSError, ValueError, KeyError):
            return 0

    def embed_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if len(self._cache) + len(missing) > self.max_items:
            self._cache.clear()  # full: start over, keeping this call's texts
            missing = list(dict.fromkeys(texts))
        if missing:
            vectors = np.asarray(self.encoder.embed_queries(missing), dtype=np.float32)
            self._cache.update(zip(missing, vectors, strict=True))
        return np.stack([self._cache[t] for t in texts])
