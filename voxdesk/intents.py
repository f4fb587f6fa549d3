"""Intent classification against the question library: labels are question ids.

:class:`LibraryIntents` trains :class:`nlu.intents.IntentClassifier` on every active question's standard texts and
paraphrases (both languages), and retrains when the active questions' content revision changes. The
encoders are wrapped in :class:`nlu.intents.CachedEncoder`, so a retrain after an edit embeds only new texts and
takes seconds; with ``cache_dir`` the vectors are kept on disk between processes too. It lives in ``voxdesk/``
because it joins two rooms (``nlu`` never imports ``knowledge``).

``classify`` is blocking (a few ms plus the encoder); call it from a worker thread. Thread-safe: a retrain builds a
new classifier and swaps it in.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import InvalidInputError
from knowledge.library import QuestionReader, library_revision
from nlu.intents import CachedEncoder, IntentClassifier, IntentConfig, IntentResult, TextEncoder

__all__ = ["LibraryIntents", "TrainingSet"]


@dataclass(frozen=True)
class TrainingSet:
    """Texts and their question ids, as taken from the library."""

    texts: tuple[str, ...]
    labels: tuple[str, ...]
    revision: str


class LibraryIntents:
    """The process's intent classifier over the question library."""

    def __init__(
        self,
        library: QuestionReader,
        encoders: Sequence[TextEncoder],
        config: IntentConfig | None = None,
        *,
        cache_dir: Path | None = None,
    ) -> None:
        self._library = library
        self._encoders = [CachedEncoder(e) for e in encoders]
        self._cache_dir = cache_dir
        if cache_dir is not None:
            for e in self._encoders:
                e.load(self._cache_file(e))
        self._config = config
        self._classifier: IntentClassifier | None = None
        self._revision: str | None = None
        self._lock = threading.Lock()

    def training_set(self) -> TrainingSet:
        """Every example of every active question that has at least two (others cannot be learnt); the revision is
        that of the active questions read here (one read of the library)."""
        questions = self._library.list()
        texts: list[str] = []
        labels: list[str] = []
        for q in questions:
            examples = list(dict.fromkeys(q.examples()))
            if len(examples) >= 2:
                texts += examples
                labels += [q.question_id] * len(examples)
        return TrainingSet(tuple(texts), tuple(labels), library_revision(questions))

    def refresh(self) -> bool:
        """Retrain if the library changed since the last fit; returns whether it retrained."""
        with self._lock:
            data = self.training_set()
            if self._classifier is not None and data.revision == self._revision:
                return False
            if len(set(data.labels)) < 2:
                raise InvalidInputError("the question library needs at least two questions with examples")
            classifier = IntentClassifier(self._encoders, self._config).fit(list(data.texts), list(data.labels))
            self._classifier, self._revision = classifier, data.revision
            if self._cache_dir is not None:
                self._cache_dir.mkdir(parents=True, exist_ok=True)
                for e in self._encoders:
                    e.save(self._cache_file(e))
            return True

    def _cache_file(self, encoder: CachedEncoder) -> Path:
        assert self._cache_dir is not None
        return self._cache_dir / f"intent-vectors-{encoder.name}.npz"

    @property
    def classifier(self) -> IntentClassifier:
        """The fitted classifier (fits on first use)."""
        if self._classifier is None:
            self.refresh()
        assert self._classifier is not None
        return self._classifier

    def classify(self, text: str, k: int = 3) -> IntentResult:
        """Top-``k`` question ids for an utterance with calibrated confidence and the out-of-scope decision."""
        return self.classifier.predict(text, k)
