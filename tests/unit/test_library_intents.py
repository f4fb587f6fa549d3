"""Intent classification against the question library (labels are question ids), retraining on change, and the
embedding cache that makes a retrain cheap."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from knowledge.embeddings import Vectors
from knowledge.testing import FakeQuestionLibrary, HashingEmbedder, sample_questions
from nlu.intents import CachedEncoder
from voxdesk.intents import LibraryIntents

pytestmark = pytest.mark.unit


class CountingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__(dim=64)
        self.embedded = 0

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        self.embedded += len(texts)
        return super().embed_queries(texts)


def test_classifies_against_the_library_and_retrains_on_change(tmp_path: Path) -> None:
    library = FakeQuestionLibrary(sample_questions())
    embedder = CountingEmbedder()
    intents = LibraryIntents(library, [embedder], cache_dir=tmp_path)
    result = intents.classify("I lost my credit card", k=2)
    assert result.top[0].label == "cards.report_lost_card" and len(result.top) == 2
    assert 0.0 <= result.top[1].confidence <= result.top[0].confidence <= 1.0
    assert intents.classify("一年定期利息多少").label == "deposits.time_deposit_rates"
    assert intents.refresh() is False  # unchanged library: no retrain
    first = embedder.embedded
    q = library.get("transfers.transfer_limit")
    library.upsert_many([q.model_copy(update={"paraphrases_en": (*q.paraphrases_en, "daily payment cap")})])
    assert intents.refresh() is True
    assert embedder.embedded - first <= 3  # only the new texts (plus the probes) were embedded
    assert (tmp_path / "intent-vectors-hashing-test.npz").exists()
    # A new process reads the cached vectors and embeds nothing to train.
    fresh_embedder = CountingEmbedder()
    again = LibraryIntents(library, [fresh_embedder], cache_dir=tmp_path)
    again.refresh()
    assert fresh_embedder.embedded == 0
    library.retire("transfers.transfer_limit")
    assert "transfers.transfer_limit" not in intents.classifier.labels or intents.refresh()
    assert "transfers.transfer_limit" not in intents.classifier.labels


def test_cached_encoder_returns_the_same_vectors() -> None:
    base = HashingEmbedder()
    cached = CachedEncoder(base, max_items=3)
    texts = ["a b", "c d", "a b", "e f", "g h"]
    np.testing.assert_allclose(cached.embed_queries(texts), base.embed_queries(texts))
    assert cached.embed_queries([]).shape == (0, base.dim)
