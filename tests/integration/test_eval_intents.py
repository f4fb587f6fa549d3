"""``voxdesk eval intents --json`` on a slice of real Banking77 data with the real MiniLM embeddings."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.models]

ROOT = Path(__file__).resolve().parents[2]
LABELS = ("card_arrival", "lost_or_stolen_card", "exchange_rate", "top_up_failed", "balance_not_updated_after_cheque_or_cash_deposit")  # fmt: skip


def _slice(source: Path, target: Path, per_label: int) -> None:
    with source.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    kept: dict[str, int] = {}
    with target.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "category"])
        for row in rows:
            label = row["category"]
            if label in LABELS and kept.get(label, 0) < per_label:
                kept[label] = kept.get(label, 0) + 1
                writer.writerow([row["text"], label])


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "VOXDESK_VAR_DIR": str(tmp_path / "var")}
    return subprocess.run(
        [sys.executable, "-m", "voxdesk.cli", "eval", "intents", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.mark.skipif(importlib.util.find_spec("sentence_transformers") is None, reason="needs voxdesk[embeddings]")
@pytest.mark.timeout(300)
def test_eval_intents_json_on_real_banking77(tmp_path: Path, shared_data: Path) -> None:
    data = shared_data / "intents" / "banking77"
    if not (data / "train.csv").is_file():
        pytest.skip(f"Banking77 not found under {data}")
    _slice(data / "train.csv", tmp_path / "train.csv", 40)
    _slice(data / "test.csv", tmp_path / "test.csv", 20)
    done = _run(tmp_path, "--train", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.csv"),
                "--backend", "minilm", "--latency-n", "20", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"accuracy", "macro_f1", "p50_ms", "n"} <= result.keys()
    assert result["n"] == 100 and result["labels"] == 5 and result["train_n"] == 200
    assert result["accuracy"] > 0.85 and result["macro_f1"] > 0.85
    assert 0 < result["p50_ms"] < 1000


def test_eval_intents_names_bad_rows(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nhello,greet\n,greet\nbye,\n", encoding="utf-8")
    done = _run(tmp_path, "--train", str(bad), "--test", str(bad), "--backend", "none")
    assert done.returncode == 2
    assert "row 3 [text]: empty value" in done.stdout and "row 4 [label]: empty value" in done.stdout
