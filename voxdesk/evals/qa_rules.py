"""``voxdesk eval qa-rules --dir DIR``: precision and recall of every QA rule on the labelled call set.

Builds the pipeline of the settings (:func:`voxdesk.qa_wiring.build_pipeline`, with ``--rules`` as the rules
file when given), inspects every recording of ``DIR`` in start-time order with the set's own earlier calls as the
call history, and scores the findings against ``labels.jsonl`` (:mod:`voxdesk.evals.qa_match`). The call reason
needs the question library in the database: when it is empty, the demo bank's knowledge is loaded first.
With ``--transcripts CACHE`` each call's transcript is saved there (keyed by call id and the recording's SHA-256)
and reused by later runs, so a change to the rules is re-scored in seconds instead of minutes of Whisper.
Blocking and CPU-bound (Whisper on every call), in the CLI process.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from core.errors import InvalidInputError, VoxdeskError
from qa.models import CallTranscript, Finding, Inspection
from qa.rules_base import PriorCall
from voxdesk.evals.qa_match import ExpectedFinding, RuleCounts, summarise

if TYPE_CHECKING:
    from qa.imports import ImportedRecording
    from qa.pipeline import QaPipeline

__all__ = ["SetHistory", "load_labels", "register", "run_eval"]


@dataclass(frozen=True)
class SetHistory:
    """The call history of the set: the calls of its metadata, by phone number."""

    calls: tuple[tuple[str, str, datetime], ...]
    """``(phone, call_id, started_at)`` of every call."""

    def prior_calls(self, phone: str, before: datetime, within_hours: float) -> list[PriorCall]:
        since = before - timedelta(hours=within_hours)
        found = [PriorCall(cid, at) for p, cid, at in self.calls if p == phone and since <= at < before]
        return sorted(found, key=lambda c: c.started_at, reverse=True)


def load_labels(folder: Path) -> dict[str, list[ExpectedFinding]]:
    """``call_id`` → its expected findings, from ``labels.jsonl``; raises :class:`InvalidInputError`."""
    path = folder / "labels.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines if line.strip()]
        return {str(r["call_id"]): [ExpectedFinding.from_json(e) for e in r["expected"]] for r in rows}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInputError(f"cannot read the labels of the call set: {path}") from exc


def _ensure_questions(container: Any) -> int:
    """Load the demo knowledge when the question library is empty; the number of questions loaded (0: none)."""
    if container.library.count() > 0:
        return 0
    from voxdesk.demo import load_products
    from voxdesk.demo.knowledge import load_demo_knowledge

    container.catalog.upsert_many(load_products())
    return int(load_demo_knowledge(container).questions)


def _inspect(
    pipeline: QaPipeline, rec: ImportedRecording, history: SetHistory, cache: Path | None
) -> tuple[Inspection, bool]:
    """Inspect one recording, through the transcript cache when given: ``(inspection, transcript was cached)``."""
    from qa.transcript_io import transcript_from_json, transcript_to_json

    if cache is None:
        return pipeline.inspect_file(rec.path, rec.meta, history), False
    sha = hashlib.sha256(rec.path.read_bytes()).hexdigest()
    saved = cache / f"{rec.meta.call_id}.{sha[:16]}.json"
    transcript: CallTranscript | None = None
    if saved.is_file():
        try:
            transcript = transcript_from_json(json.loads(saved.read_text(encoding="utf-8")))
        except (ValueError, InvalidInputError):
            transcript = None  # a damaged cache entry is transcribed again
    hit = transcript is not None
    timings: dict[str, float] = {}
    if transcript is None:
        transcript, sha, timings = pipeline.transcribe_file(rec.path, rec.meta)
        cache.mkdir(parents=True, exist_ok=True)
        tmp = saved.with_suffix(".tmp")
        tmp.write_text(json.dumps(transcript_to_json(transcript), ensure_ascii=False), encoding="utf-8")
        tmp.replace(saved)
    inspection = pipeline.inspect_transcript(transcript, rec.meta, history, path=rec.path, sha256=sha, timings=timings)
    return inspection, hit


def run_eval(
    folder: Path, *, rules: Path | None = None, transcripts: Path | None = None, progress: Any = None
) -> tuple[dict[str, RuleCounts], dict[str, Any], list[tuple[str, list[ExpectedFinding], list[Finding]]]]:
    """Inspect and score the set in ``folder``: ``(counts, JSON summary, per-call results)``. A recording the
    pipeline cannot inspect (e.g. a mono file without the diarization model) is left out and named in the
    summary's ``skipped``. ``transcripts`` is the transcript cache folder (created when missing)."""
    from qa.imports import scan_folder
    from voxdesk.cli import _container, _settings
    from voxdesk.qa_wiring import build_pipeline

    settings = _settings()
    if rules is not None:
        settings = settings.model_copy(update={"qa": settings.qa.model_copy(update={"rules_path": rules})})
    container = _container()
    loaded = _ensure_questions(container)
    found = scan_folder(folder, default_region=settings.qa.default_region, default_tz=settings.qa.import_timezone)
    labels = load_labels(folder)
    recs: Sequence[ImportedRecording] = sorted(
        found.recordings, key=lambda r: (r.meta.started_at or datetime.min, r.meta.call_id)
    )
    history = SetHistory(
        tuple((r.meta.customer_phone or "", r.meta.call_id, r.meta.started_at) for r in recs if r.meta.started_at)
    )
    pipeline = build_pipeline(settings, container)
    results: list[tuple[str, list[ExpectedFinding], list[Finding]]] = []
    audio_ms = 0
    skipped: dict[str, str] = {}
    cached = 0
    stage_s: dict[str, float] = {}
    for rec in recs:
        try:
            inspection, hit = _inspect(pipeline, rec, history, transcripts)
            cached += hit
        except VoxdeskError as exc:  # one unusable file is reported, not fatal
            skipped[rec.meta.call_id] = f"{exc.code}: {exc}"
            if progress is not None:
                progress(rec.meta.call_id)
            continue
        audio_ms += inspection.audio_ms
        for stage, seconds in inspection.timings.items():
            stage_s[stage] = stage_s.get(stage, 0.0) + seconds
        results.append((rec.meta.call_id, labels.get(rec.meta.call_id, []), list(inspection.findings)))
        if progress is not None:
            progress(rec.meta.call_id)
    counts, summary = summarise(results)
    summary["audio_s"] = audio_ms / 1000
    summary["questions_loaded"] = loaded
    summary["skipped"] = skipped
    summary["transcripts_cached"] = cached
    summary["stage_s"] = {k: round(v, 2) for k, v in stage_s.items()}
    return counts, summary, results


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


def register(eval_app: typer.Typer) -> None:
    """Add ``voxdesk eval qa-rules``."""

    @eval_app.command("qa-rules")
    def eval_qa_rules(
        folder: Annotated[Path, typer.Option("--dir", exists=True, file_okay=False, help="the call set folder")],
        rules: Annotated[Path | None, typer.Option(exists=True, dir_okay=False, help="rules YAML")] = None,
        transcripts: Annotated[
            Path | None,
            typer.Option(file_okay=False, help="transcript cache folder: reused when present, filled when not"),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
    ) -> None:
        """Per-rule precision and recall of the QA rules on a labelled call set (voxdesk qa make-set)."""
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        from rich.table import Table

        from voxdesk.cli import _fail

        console = Console(stderr=as_json, width=None if sys.stdout.isatty() else 160)
        try:
            n = len(load_labels(folder))
            columns = (TextColumn("inspecting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=console) as bar:
                task = bar.add_task("calls", total=n)
                counts, summary, _ = run_eval(
                    folder, rules=rules, transcripts=transcripts, progress=lambda _c: bar.advance(task)
                )
        except VoxdeskError as exc:
            _fail(exc)
        if summary["questions_loaded"]:
            console.print(f"the question library was empty: loaded {summary['questions_loaded']} demo questions")
        table = Table("rule", "TP", "FP", "FN", "precision", "recall", "errors", title="QA rules on the call set")
        for rule, c in counts.items():
            table.add_row(rule, str(c.tp), str(c.fp), str(c.fn), _pct(c.precision), _pct(c.recall), " ".join(c.misses))
        table.add_row("micro", "", "", "", _pct(summary["micro_precision"]), _pct(summary["micro_recall"]), "")
        console.print(table)
        console.print(
            f"{summary['n_calls']} calls scored, {summary['audio_s'] / 60:.1f} min of audio, "
            f"{summary['transcripts_cached']} transcripts from the cache; seconds per stage: "
            + ", ".join(f"{k} {v:.1f}" for k, v in summary["stage_s"].items())
        )
        for call_id, why in summary["skipped"].items():
            console.print(f"[yellow]skipped {call_id}: {why}[/yellow]")
        if as_json:
            sys.stdout.write(json.dumps(summary) + "\n")
