"""FAISS vector indexes over passages (question paraphrases, approved scripts, products), persisted with a version.

:class:`FaissIndex` holds ``(id, text)`` passages embedded by one :class:`knowledge.embeddings.Embedder`. Search is
by inner product of unit vectors (= cosine similarity). Up to ``hnsw_above`` passages the index is exact
(``IndexFlatIP``); above that it is an HNSW graph (``IndexHNSWFlat``, M=32, efSearch=``ef_search``), which keeps a
top-5 query over 100 000 passages well under a millisecond on one core.

:meth:`FaissIndex.update` is incremental: a passage whose text is unchanged keeps its vector, only new or changed
texts are embedded, removed ids are dropped. :meth:`FaissIndex.save` writes a folder (``index.faiss``,
``vectors.npy``, ``manifest.json``) with a format version, the embedder's name and the content revision;
:meth:`FaissIndex.load` refuses a folder written by another embedder or format so vectors of different models never
mix. Blocking, CPU-bound: run on a worker thread. Searches may run from several threads; updates must not overlap
with searches (the owner swaps in a new index instead, see :class:`knowledge.retrieval.KnowledgeIndexes`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import InvalidInputError, StorageError
from knowledge.embeddings import Embedder, Vectors

__all__ = ["INDEX_FORMAT", "FaissIndex", "IndexUpdate", "Passage", "text_hash"]

INDEX_FORMAT = 1
"""Bumped whenever the folder layout or the vector recipe changes (old folders are then rebuilt)."""


@dataclass(frozen=True)
class Passage:
    """A text to index; ``id`` is unique within one index."""

    id: str
    text: str


@dataclass(frozen=True)
class IndexUpdate:
    """What :meth:`FaissIndex.update` did: passages embedded anew, reused, removed, and the time it took (s)."""

    embedded: int
    reused: int
    removed: int
    seconds: float


def text_hash(text: str) -> str:
    """Short content hash of a passage text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _faiss() -> Any:
    import faiss  # heavy-ish native module: imported when an index is first used

    return faiss


class FaissIndex:
    """A persisted, incrementally updated vector index (see the module docstring)."""

    def __init__(self, embedder: Embedder, *, hnsw_above: int = 20_000, ef_search: int = 64) -> None:
        self.embedder = embedder
        self.hnsw_above = hnsw_above
        self.ef_search = ef_search
        self.ids: list[str] = []
        self.hashes: list[str] = []
        self.vectors: Vectors = np.zeros((0, embedder.dim), dtype=np.float32)
        self.revision = ""
        self._index: Any = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def kind(self) -> str:
        """``flat`` (exact) or ``hnsw``."""
        return "hnsw" if len(self.ids) > self.hnsw_above else "flat"

    def update(self, passages: Sequence[Passage], *, revision: str = "") -> IndexUpdate:
        """Make the index hold exactly ``passages`` (order kept), embedding only new or changed texts."""
        started = time.perf_counter()
        ids = [p.id for p in passages]
        if len(set(ids)) != len(ids):
            raise InvalidInputError("duplicate passage id in one index")
        known = {(i, h): row for row, (i, h) in enumerate(zip(self.ids, self.hashes, strict=True))}
        hashes = [text_hash(p.text) for p in passages]
        rows = [known.get((p.id, h)) for p, h in zip(passages, hashes, strict=True)]
        fresh = [i for i, r in enumerate(rows) if r is None]
        vectors = np.zeros((len(passages), self.embedder.dim), dtype=np.float32)
        reused_rows = [(i, r) for i, r in enumerate(rows) if r is not None]
        if reused_rows:
            vectors[[i for i, _ in reused_rows]] = self.vectors[[r for _, r in reused_rows]]
        if fresh:
            vectors[fresh] = self.embedder.embed_passages([passages[i].text for i in fresh])
        removed = len(set(self.ids) - set(ids))
        self.ids, self.hashes, self.vectors, self.revision = ids, hashes, vectors, revision
        self._index = self._build(vectors)
        return IndexUpdate(len(fresh), len(reused_rows), removed, time.perf_counter() - started)

    def updated(self, passages: Sequence[Passage], *, revision: str = "") -> tuple[FaissIndex, IndexUpdate]:
        """A new index holding ``passages``, reusing this one's vectors for unchanged texts; this one is left as it
        is, so searches running on it are not disturbed (the owner swaps the new one in)."""
        fresh = FaissIndex(self.embedder, hnsw_above=self.hnsw_above, ef_search=self.ef_search)
        fresh.ids, fresh.hashes, fresh.vectors = self.ids, self.hashes, self.vectors
        return fresh, fresh.update(passages, revision=revision)

    @classmethod
    def from_vectors(cls, embedder: Embedder, ids: Sequence[str], vectors: Vectors, **options: Any) -> FaissIndex:
        """An index of precomputed unit ``vectors`` (one row per id), e.g. for benchmarks; texts are unknown so a
        later :meth:`update` re-embeds every passage."""
        if len(ids) != len(vectors) or len(set(ids)) != len(ids):
            raise InvalidInputError("ids and vectors do not match, or ids repeat")
        index = cls(embedder, **options)
        index.ids, index.hashes = list(ids), [""] * len(ids)
        index.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        index._index = index._build(index.vectors)
        return index

    def _build(self, vectors: Vectors) -> Any:
        faiss = _faiss()
        dim = self.embedder.dim
        if len(vectors) > self.hnsw_above:
            index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
            index.hnsw.efSearch = self.ef_search
        else:
            index = faiss.IndexFlatIP(dim)
        if len(vectors):
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return index

    def search_vectors(self, queries: Vectors, k: int = 5) -> list[list[tuple[str, float]]]:
        """Top-``k`` ``(id, cosine similarity)`` per query row, best first."""
        if self._index is None or not self.ids:
            return [[] for _ in range(len(queries))]
        scores, rows = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, len(self.ids)))
        return [
            [(self.ids[r], float(s)) for s, r in zip(srow, rrow, strict=True) if r >= 0]
            for srow, rrow in zip(scores, rows, strict=True)
        ]

    def search(self, text: str, k: int = 5) -> list[tuple[str, float]]:
        """Top-``k`` ``(id, cosine similarity)`` for one query text (embeds it: a few ms)."""
        return self.search_vectors(self.embedder.embed_queries([text]), k)[0]

    # --- persistence -------------------------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Write the index to ``folder`` atomically enough for one writer (files are replaced one by one, the
        manifest last, so a reader never sees a manifest newer than its vectors)."""
        folder.mkdir(parents=True, exist_ok=True)
        try:
            built = self._index if self._index is not None else self._build(self.vectors)
            _faiss().write_index(built, str(folder / "index.faiss.tmp"))
            (folder / "index.faiss.tmp").replace(folder / "index.faiss")
            with (folder / "vectors.npy.tmp").open("wb") as fh:
                np.save(fh, self.vectors)
            (folder / "vectors.npy.tmp").replace(folder / "vectors.npy")
            manifest = {
                "format": INDEX_FORMAT,
                "embedder": self.embedder.name,
                "dim": self.embedder.dim,
                "kind": self.kind,
                "revision": self.revision,
                "ids": self.ids,
                "hashes": self.hashes,
            }
            tmp = folder / "manifest.json.tmp"
            tmp.write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
            tmp.replace(folder / "manifest.json")
        except OSError as exc:
            raise StorageError("could not write the index", folder=str(folder)) from exc

    @classmethod
    def load(cls, folder: Path, embedder: Embedder, *, hnsw_above: int = 20_000, ef_search: int = 64) -> FaissIndex:
        """Read an index written by :meth:`save`; raises :class:`InvalidInputError` when it is missing, damaged, of
        another format or made by another embedder (the caller then rebuilds)."""
        index = cls(embedder, hnsw_above=hnsw_above, ef_search=ef_search)
        try:
            manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
            if manifest.get("format") != INDEX_FORMAT or manifest.get("embedder") != embedder.name:
                raise InvalidInputError("index was built by another format or embedder", folder=str(folder))
            vectors = np.load(folder / "vectors.npy", allow_pickle=False)
            faiss_index = _faiss().read_index(str(folder / "index.faiss"))
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise InvalidInputError("index folder is missing or damaged", folder=str(folder)) from exc
        ids, hashes = list(manifest["ids"]), list(manifest["hashes"])
        if vectors.shape != (len(ids), embedder.dim) or len(hashes) != len(ids) or faiss_index.ntotal != len(ids):
            raise InvalidInputError("index folder is inconsistent", folder=str(folder))
        if hasattr(faiss_index, "hnsw"):
            faiss_index.hnsw.efSearch = ef_search
        index.ids, index.hashes, index.vectors = ids, hashes, vectors.astype(np.float32, copy=False)
        index.revision = str(manifest.get("revision", ""))
        index._index = faiss_index
        return index
