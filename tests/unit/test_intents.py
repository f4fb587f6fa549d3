"""The intent classifier with the hashing fake embedder: top-k, calibration, out-of-scope, bad input."""

from __future__ import annotations

import pytest

from core.errors import InvalidInputError
from knowledge.testing import HashingEmbedder
from nlu.intents import IntentClassifier, IntentConfig

pytestmark = pytest.mark.unit

LIBRARY = {
    "lost_card": ["I lost my card", "my card was stolen", "how do I block my lost card", "report a stolen card",
                  "信用卡丢了怎么挂失", "银行卡被偷了", "我的卡丢了", "挂失银行卡"],
    "balance": ["what is my balance", "how much money is in my account", "check my account balance",
                "show my balance please", "查询余额", "我的账户还有多少钱", "卡里余额多少", "查一下余额"],
    "transfer_limit": ["raise my transfer limit", "how much can I transfer per day", "daily transfer limit",
                       "increase the limit for transfers", "转账限额是多少", "提高转账额度", "每天能转多少钱",
                       "调整转账限额"],
}  # fmt: skip
OOS = ["what's the weather tomorrow", "play some music", "明天天气怎么样", "推荐一部电影", "tell me a joke"]


def fitted(**kwargs: object) -> IntentClassifier:
    texts = [t for examples in LIBRARY.values() for t in examples]
    labels = [label for label, examples in LIBRARY.items() for _ in examples]
    clf = IntentClassifier([HashingEmbedder(dim=256)], IntentConfig(holdout_fraction=0.25))
    return clf.fit(texts, labels, **kwargs)  # type: ignore[arg-type]


def test_classifies_both_languages_with_top_k_confidences() -> None:
    clf = fitted()
    assert set(clf.labels) == set(LIBRARY)
    for text, label in [("someone stole my card", "lost_card"), ("余额查询", "balance"), ("转账额度", "transfer_limit"),
                        ("check balance", "balance")]:  # fmt: skip
        result = clf.predict(text, k=3)
        assert result.top[0].label == label, (text, result)
        assert len(result.top) == 3 and [s.confidence for s in result.top] == sorted(
            (s.confidence for s in result.top), reverse=True
        )
        assert abs(sum(s.confidence for s in clf.predict(text, k=10).top) - 1.0) < 1e-6  # a distribution
    assert clf.temperature > 0 and 0.0 <= clf.threshold <= 1.0


def test_out_of_scope_threshold_comes_from_held_out_data() -> None:
    clf = fitted(oos_texts=OOS)
    in_scope = clf.predict_many(["I lost my card", "查询余额", "daily transfer limit"])
    assert all(r.label is not None for r in in_scope)
    unrelated = clf.predict("zebra quantum violin")  # no word in common with the library
    assert unrelated.out_of_scope and unrelated.label is None


def test_bad_training_data_is_refused() -> None:
    clf = IntentClassifier([HashingEmbedder()])
    with pytest.raises(InvalidInputError):
        clf.fit(["a", "b"], ["x"])
    with pytest.raises(InvalidInputError):
        clf.fit(["a", "b"], ["x", "x"])  # one label
    with pytest.raises(InvalidInputError):
        clf.fit(["a", "b", "c"], ["x", "x", "y"])  # y has a single example
    with pytest.raises(InvalidInputError):
        clf.predict("not fitted yet")
    assert fitted().predict_many([]) == []
