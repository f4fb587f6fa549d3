"""Chinese sentiment from SnowNLP's shipped naive-Bayes model (``snownlp`` 0.12.3, trained on product reviews).

SnowNLP gives P(positive) in [0, 1]; this returns ``2p - 1`` in [-1, 1]. The model file ships in the package and is
loaded once on first import. ~1 ms per utterance; thread-safe (read-only model).
"""

from __future__ import annotations

from typing import Any

from core.errors import ModelMissingError

__all__ = ["SnowNlpSentiment"]


class SnowNlpSentiment:
    """``text → score`` with SnowNLP's sentiment model."""

    name = "snownlp-0.12.3"

    def __init__(self) -> None:
        try:
            from snownlp import sentiment
        except ImportError as exc:
            raise ModelMissingError("snownlp is not installed", remedy="pip install snownlp==0.12.3") from exc
        self._classifier: Any = sentiment.classifier

    def __call__(self, text: str) -> float:
        return 2.0 * float(self._classifier.classify(text)) - 1.0
