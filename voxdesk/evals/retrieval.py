"""``voxdesk eval retrieval``, ``voxdesk bench retrieval`` and ``voxdesk knowledge retrieval-set``.

eval: ``--corpus C.jsonl`` (``{"id", "text"}`` per line) is indexed with the chosen embedder (FAISS, plus BM25 when
``--lexical-weight`` > 0); each query of ``--queries Q.jsonl`` (``{"text", "relevant": [ids]}``) is searched
once. ``recall_at_k`` is the share of queries with at least one relevant id among the first k results (hit rate),
``mrr`` the mean reciprocal rank of the first relevant id (0 when none in the first 10); ``p50_ms`` is the search
time of one query, embedding included.

bench: ``--passages N`` synthetic passages (random unit vectors, dimension 384, as the embedders give) in the index
kind the product uses for that size (exact up to 20 000, HNSW above); reports the top-5 search latency of single
queries (no embedding) and the recall@5 of the approximate index against exact search.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from core.errors import ImportRejectedError, InvalidInputError, RowError, VoxdeskError

__all__ = ["bench_search", "evaluate_retrieval", "load_jsonl", "register"]


def load_jsonl(path: Path, required: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file with the ``required`` keys; raises :class:`ImportRejectedError` (line numbers)."""
    rows, errors = [], []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError("file cannot be read as UTF-8 text", path=str(path)) from exc
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            errors.append(RowError(n, None, "not valid JSON"))
            continue
        missing = [k for k in required if not isinstance(row, dict) or k not in row]
        if missing:
            errors.append(RowError(n, missing[0], "missing"))
            continue
        rows.append(row)
    if errors:
        raise ImportRejectedError(f"{path.name} was rejected", errors)
    if not rows:
        raise InvalidInputError("file has no rows", path=str(path))
    return rows


def evaluate_retrieval(
    embedder: Any, corpus: list[dict[str, Any]], queries: list[dict[str, Any]], *, lexical_weight: float
) -> dict[str, Any]:
    """Index ``corpus`` and score ``queries`` (see the module docstring); returns the JSON summary."""
    from knowledge.index import FaissIndex, Passage
    from knowledge.retrieval import HybridSearcher

    passages = [Passage(str(r["id"]), str(r["text"])) for r in corpus]
    index = FaissIndex(embedder)
    built = index.update(passages)
    searcher = HybridSearcher(index, [p.text for p in passages], lexical_weight=lexical_weight)
    hits1 = hits5 = 0
    reciprocal, timings = [], []
    for q in queries:
        relevant = {str(r) for r in q["relevant"]}
        started = time.perf_counter()
        ranked = [pid for pid, _ in searcher.search(str(q["text"]), 10)]
        timings.append((time.perf_counter() - started) * 1000.0)
        first = next((i for i, pid in enumerate(ranked) if pid in relevant), None)
        hits1 += first == 0
        hits5 += first is not None and first < 5
        reciprocal.append(0.0 if first is None else 1.0 / (first + 1))
    n = len(queries)
    return {
        "recall_at_1": hits1 / n,
        "recall_at_5": hits5 / n,
        "mrr": float(np.mean(reciprocal)),
        "p50_ms": float(np.percentile(timings, 50)),
        "p95_ms": float(np.percentile(timings, 95)),
        "n": n,
        "passages": len(passages),
        "index_s": round(built.seconds, 2),
        "lexical_weight": lexical_weight,
        "embedder": embedder.name,
    }


class _RandomEmbedder:
    """Unit vectors for the synthetic bench (never used to embed real text)."""

    name = "bench-random"

    def __init__(self, dim: int, seed: int) -> None:
        self.dim = dim
        self._rng = np.random.default_rng(seed)

    def embed_passages(self, texts: Any) -> Any:
        v = self._rng.standard_normal((len(texts), self.dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    embed_queries = embed_passages


def bench_search(passages: int, queries: int, *, dim: int = 384, k: int = 5, seed: int = 7) -> dict[str, Any]:
    """Build an index of ``passages`` random unit vectors and time ``queries`` single top-``k`` searches (ms)."""
    import faiss

    from knowledge.index import FaissIndex

    faiss.omp_set_num_threads(1)
    embedder = _RandomEmbedder(dim, seed)
    # Real embeddings cluster; perturbed copies of a few thousand centres give the index a realistic structure.
    centres = embedder.embed_passages(range(max(1, passages // 50)))
    vectors = centres[np.arange(passages) % len(centres)] + 0.35 * embedder.embed_passages(range(passages)) / np.sqrt(2)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    started = time.perf_counter()
    index = FaissIndex.from_vectors(embedder, [f"p{i}" for i in range(passages)], vectors.astype(np.float32))
    build_s = time.perf_counter() - started
    probes = vectors[embedder._rng.integers(0, passages, queries)] + 0.2 * embedder.embed_queries(range(queries))
    probes = (probes / np.linalg.norm(probes, axis=1, keepdims=True)).astype(np.float32)
    timings, found = [], []
    for q in probes:
        t0 = time.perf_counter()
        found.append(index.search_vectors(q[None, :], k)[0])
        timings.append((time.perf_counter() - t0) * 1000.0)
    exact = faiss.IndexFlatIP(dim)
    exact.add(index.vectors)
    _, truth = exact.search(probes, k)
    recall = np.mean([len({int(i[1:]) for i, _ in f} & set(t.tolist())) / k for f, t in zip(found, truth, strict=True)])
    return {
        "p50_ms": float(np.percentile(timings, 50)),
        "p95_ms": float(np.percentile(timings, 95)),
        "passages": passages,
        "queries": queries,
        "k": k,
        "index_kind": index.kind,
        "build_s": round(build_s, 1),
        "recall_at_5_vs_exact": float(recall),
    }


def register(eval_app: typer.Typer, bench_app: typer.Typer) -> None:
    """Add ``eval retrieval`` and ``bench retrieval``."""

    @eval_app.command("retrieval")
    def eval_retrieval(
        corpus: Annotated[Path, typer.Option(exists=True, dir_okay=False, help='JSONL {"id","text"}.')],
        queries: Annotated[Path, typer.Option(exists=True, dir_okay=False, help='JSONL {"text","relevant":[ids]}.')],
        backend: Annotated[str, typer.Option(help="Embedder: e5 or minilm.")] = "e5",
        lexical_weight: Annotated[
            float | None, typer.Option(help="BM25 weight (0 = vectors only); default knowledge.lexical_weight.")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
    ) -> None:
        """Retrieval recall@1, recall@5 and MRR of the knowledge indexes' search."""
        from voxdesk.cli import _fail, _settings
        from voxdesk.registry import build_embedder

        settings = _settings()
        weight = settings.knowledge.lexical_weight if lexical_weight is None else lexical_weight
        try:
            corpus_rows = load_jsonl(corpus, ("id", "text"))
            query_rows = load_jsonl(queries, ("text", "relevant"))
            embedder = build_embedder(settings, backend)
            summary = evaluate_retrieval(embedder, corpus_rows, query_rows, lexical_weight=weight)
        except ImportRejectedError as exc:
            for row in exc.rows:
                sys.stderr.write(f"line {row.row} [{row.column}]: {row.reason}\n")
            _fail(exc)
        except VoxdeskError as exc:
            _fail(exc)
        _table("retrieval evaluation", summary, ("recall_at_1", "recall_at_5", "mrr"))
        if as_json:
            sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")

    @bench_app.command("retrieval")
    def bench_retrieval(
        passages: Annotated[int, typer.Option(min=1, max=5_000_000, help="Synthetic passages in the index.")] = 100_000,
        queries: Annotated[int, typer.Option(min=1, help="Single queries timed.")] = 1000,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
    ) -> None:
        """FAISS top-5 search latency over N passages (one thread)."""
        summary = bench_search(passages, queries)
        _table("retrieval bench (top-5, 1 thread)", summary, ("recall_at_5_vs_exact",))
        if as_json:
            sys.stdout.write(json.dumps(summary) + "\n")


def _table(title: str, summary: dict[str, Any], rates: tuple[str, ...]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("metric", "value", title=title)
    for key, value in summary.items():
        text = f"{100 * value:.2f}%" if key in rates else f"{value:.3f}" if isinstance(value, float) else str(value)
        table.add_row(key, text)
    Console(width=None if sys.stdout.isatty() else 160).print(table)
