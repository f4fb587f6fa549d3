"""``voxdesk eval sentiment --data F.csv``: dissatisfaction detection and three-way sentiment per language.

The CSV has columns ``text,lang,label`` (label ``negative``/``neutral``/``positive``). ``--split dev`` scores the
even-numbered rows (where the scorer's parameters were chosen), ``--split test`` the odd-numbered ones (report
these), ``all`` every row. Reports ``accuracy`` (three-way), dissatisfaction ``precision``/``recall``/``f1``
(negative = dissatisfied), the same per language, and ``p50_ms`` per utterance.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from core.errors import ImportRejectedError, InvalidInputError, RowError, VoxdeskError
from nlu.sentiment import SentimentScorer

__all__ = ["load_sentiment_csv", "register", "score_rows"]
LABELS = ("negative", "neutral", "positive")


def load_sentiment_csv(path: Path) -> list[dict[str, str]]:
    """Rows ``{text, lang, label}``; raises :class:`ImportRejectedError` naming bad lines."""
    try:
        reader = csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines())
        rows: list[dict[str, str]] = []
        errors: list[RowError] = []
        for row in reader:
            text, lang, label = ((row.get(k) or "").strip() for k in ("text", "lang", "label"))
            if not text or lang not in ("zh", "en") or label not in LABELS:
                errors.append(
                    RowError(reader.line_num, None, "needs text, lang zh|en, label negative|neutral|positive")
                )
                continue
            rows.append({"text": text, "lang": lang, "label": label})
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInputError("sentiment file cannot be read", path=str(path)) from exc
    if errors:
        raise ImportRejectedError("sentiment file was rejected", errors)
    if not rows:
        raise InvalidInputError("sentiment file has no rows", path=str(path))
    return rows


def _rates(pairs: list[tuple[str, str, bool]]) -> dict[str, float]:
    """``pairs`` of (truth, predicted label, predicted dissatisfied)."""
    tp = sum(t == "negative" and d for t, _, d in pairs)
    fp = sum(t != "negative" and d for t, _, d in pairs)
    fn = sum(t == "negative" and not d for t, _, d in pairs)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    accuracy = float(np.mean([t == p for t, p, _ in pairs])) if pairs else 0.0
    return {"accuracy": accuracy, "precision": precision, "recall": recall, "f1": f1, "n": len(pairs)}


def score_rows(scorer: SentimentScorer, rows: list[dict[str, str]]) -> dict[str, Any]:
    """Score every row; the JSON summary (overall, ``zh_…`` and ``en_…`` keys, ``p50_ms``)."""
    pairs: dict[str, list[tuple[str, str, bool]]] = {"zh": [], "en": []}
    timings = []
    for row in rows:
        started = time.perf_counter()
        result = scorer.score(row["text"], row["lang"])
        timings.append((time.perf_counter() - started) * 1000.0)
        pairs[row["lang"]].append((row["label"], result.label, result.dissatisfied))
    summary: dict[str, Any] = dict(_rates(pairs["zh"] + pairs["en"]))
    for lang, items in pairs.items():
        if items:
            summary.update({f"{lang}_{k}": v for k, v in _rates(items).items()})
    summary["p50_ms"] = float(np.percentile(timings, 50))
    return summary


def register(eval_app: typer.Typer) -> None:
    """Add ``voxdesk eval sentiment``."""

    @eval_app.command("sentiment")
    def eval_sentiment(
        data: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="CSV text,lang,label.")],
        split: Annotated[str, typer.Option(help="dev (even rows), test (odd rows) or all.")] = "test",
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
    ) -> None:
        """Dissatisfaction precision/recall/F1 and three-way accuracy, per language."""
        from rich.console import Console
        from rich.table import Table

        from voxdesk.cli import _fail, _settings
        from voxdesk.registry import build_sentiment

        if split not in ("dev", "test", "all"):
            raise typer.BadParameter("choose dev, test or all", param_hint="--split")
        try:
            rows = load_sentiment_csv(data)
            chosen = rows if split == "all" else rows[0 if split == "dev" else 1 :: 2]
            summary = score_rows(build_sentiment(_settings()), chosen)
        except VoxdeskError as exc:
            _fail(exc)
        summary["split"] = split
        table = Table("metric", "all", "zh", "en", title=f"sentiment evaluation ({split} split)")
        for key in ("accuracy", "precision", "recall", "f1", "n"):
            cells = [summary.get(key), summary.get(f"zh_{key}"), summary.get(f"en_{key}")]
            table.add_row(key, *(str(c) if key == "n" else f"{100 * float(c or 0):.1f}%" for c in cells))
        table.add_row("p50_ms", f"{summary['p50_ms']:.2f}", "", "")
        Console(width=None if sys.stdout.isatty() else 160).print(table)
        if as_json:
            sys.stdout.write(json.dumps(summary) + "\n")
