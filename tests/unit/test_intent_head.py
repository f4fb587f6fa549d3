"""The fast single-utterance head gives scikit-learn's scores; the nearest-neighbour vote."""

from __future__ import annotations

import numpy as np
import pytest

from knowledge.testing import HashingEmbedder
from nlu.intent_head import knn_vote, zscore
from nlu.intents import IntentClassifier

pytestmark = pytest.mark.unit

TEXTS = {
    "lost": ["I lost my card", "my card was stolen", "信用卡丢了", "卡被偷了怎么办", "card missing, block it"],
    "rate": ["deposit interest rate", "定期利率多少", "how much interest for a year", "存款利息", "rates on savings"],
    "limit": ["transfer limit", "一天能转多少钱", "raise my daily limit", "转账额度", "how much can I send"],
}


@pytest.mark.parametrize("n_labels", [2, 3])
def test_fast_head_matches_sklearn(n_labels: int) -> None:
    labels = list(TEXTS)[:n_labels]
    texts = [t for label in labels for t in TEXTS[label]]
    y = [label for label in labels for _ in TEXTS[label]]
    classifier = IntentClassifier([HashingEmbedder()]).fit(texts, y)
    assert classifier._fast is not None
    for probe in ["my card got stolen!!", "一年定期 利率", "unrelated words", "x"]:
        emb = [e.embed_queries([probe]) for e in classifier.encoders]
        features = classifier._features([probe], emb, fit=False)
        want = np.asarray(classifier._svm.decision_function(features), dtype=np.float64).reshape(-1)
        if n_labels == 2:
            want = np.array([-want[0], want[0]]) / 2
        got = classifier._fast.scores(probe, [e[0] for e in emb])
        np.testing.assert_allclose(got, want, atol=1e-9)
    single = classifier.predict("卡被偷了", k=n_labels)
    batch = classifier.predict_many(["卡被偷了", "transfer limit"], k=n_labels)[0]
    assert [s.label for s in single.top] == [s.label for s in batch.top]
    np.testing.assert_allclose([s.confidence for s in single.top], [s.confidence for s in batch.top], atol=1e-9)


def test_knn_vote_prefers_the_nearest_label() -> None:
    bank = np.eye(4, dtype=np.float32)
    labels = np.array([0, 0, 1, 2], dtype=np.intp)
    query = np.array([[0.9, 0.1, 0.0, 0.0]], dtype=np.float32)
    votes = knn_vote(query / np.linalg.norm(query), bank, labels, 4)
    assert votes.shape == (1, 4) and votes[0].argmax() == 0
    assert np.allclose(votes[0], [0.9 / np.linalg.norm(query), 0.0, 0.0, -1.0])  # label 3 has no rows
    z = zscore(np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]))
    assert np.allclose(z[0].mean(), 0) and np.allclose(z[1], 0)
