"""``voxdesk qa run DIR`` (inspect a folder of recordings, with progress bars and ETA) and ``voxdesk qa worker``.

``run`` validates the folder's metadata CSV first (all-or-nothing, row numbers in the error), registers every
recording, then inspects them on the configured backend. Recordings already inspected are skipped (``--force``
re-inspects those nobody has reviewed yet); a file that cannot be inspected is reported and the batch goes on.
Exit code 0 when every file was inspected or skipped, 1 when some failed, 2 for bad input.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from core.errors import ImportRejectedError, VoxdeskError
from core.logging import get_logger
from qa.imports import scan_folder
from qa.tasks import JobOutcome, QaJob

__all__ = ["register"]

log = get_logger(__name__)
_COLUMNS = ("files", "inspected", "skipped", "failed", "flagged", "findings", "audio_s", "wall_s", "x_realtime")


def _audio_seconds(paths: list[Path]) -> float:
    import soundfile as sf

    total = 0.0
    for p in paths:
        try:
            total += sf.info(str(p)).duration
        except (RuntimeError, OSError, ValueError):  # unreadable: the job will report it
            continue
    return total


def register(qa_app: typer.Typer) -> None:
    """Add ``run`` and ``worker`` to the ``voxdesk qa`` group."""

    @qa_app.command("run")
    def run(
        folder: Annotated[Path, typer.Argument(help="folder of WAV/FLAC/MP3 recordings (with metadata.csv)")],
        metadata: Annotated[Path | None, typer.Option(help="metadata CSV (default: DIR/metadata.csv)")] = None,
        backend: Annotated[str | None, typer.Option(help="local | celery (default: [qa] backend)")] = None,
        workers: Annotated[int | None, typer.Option(min=1, help="local pool size (default: [qa] workers)")] = None,
        force: Annotated[bool, typer.Option(help="re-inspect recordings not yet reviewed")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="print one JSON summary line at the end")] = False,
    ) -> None:
        """Inspect every recording of a folder: transcribe, apply the rules, score, flag for review."""
        from voxdesk.cli import _settings
        from voxdesk.container import build_container
        from voxdesk.db import upgrade
        from voxdesk.qa_runner import register_jobs, run_batch

        console = Console(stderr=as_json)
        settings = _settings()
        chosen = backend or settings.qa.backend
        if chosen not in ("local", "celery"):
            console.print(f"[red]unknown backend {chosen!r}: use local or celery[/red]")
            raise typer.Exit(2)
        try:
            found = scan_folder(
                folder,
                metadata=metadata,
                default_region=settings.qa.default_region,
                default_tz=settings.qa.import_timezone,
            )
        except ImportRejectedError as exc:
            console.print(f"[red]{exc}[/red]")
            for row in exc.rows[:50]:
                console.print(f"  line {row.row}: {row.column or ''} {row.reason}")
            raise typer.Exit(2) from exc
        except VoxdeskError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
        if found.unlisted:
            console.print(f"[yellow]{len(found.unlisted)} audio file(s) have no metadata row and are skipped[/yellow]")
        jobs = [QaJob(str(r.path), r.meta, "import", force) for r in found.recordings]
        container = build_container(settings)
        try:
            upgrade(container.engine)
            from qa.store import QaStore

            register_jobs(QaStore(container.sessions, clock=container.clock), jobs)
        finally:
            container.close()
        total_audio = _audio_seconds([Path(j.path) for j in jobs])
        outcomes: list[JobOutcome] = []
        started = time.perf_counter()
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console, transient=False) as progress:
            files = progress.add_task("recordings", total=len(jobs))
            audio = progress.add_task("audio (s)", total=max(total_audio, 1.0))

            def on_outcome(outcome: JobOutcome) -> None:
                outcomes.append(outcome)
                progress.advance(files)
                progress.advance(audio, outcome.audio_ms / 1000 if outcome.status == "done" else 0)
                if outcome.status == "failed":
                    progress.console.print(f"[red]failed[/red] {outcome.call_id}: {outcome.error}")

            run_batch(settings, jobs, on_outcome=on_outcome, backend=chosen, workers=workers)  # type: ignore[arg-type]
        wall = time.perf_counter() - started
        summary = _summary(outcomes, wall, chosen)  # type: ignore[arg-type]
        _print_summary(console, summary)
        if as_json:
            print(json.dumps(summary))  # noqa: T201 - the JSON line of --json
        if summary["failed"]:
            raise typer.Exit(1)

    @qa_app.command("worker")
    def worker(
        concurrency: Annotated[int | None, typer.Option(min=1, help="worker processes (default: [qa] workers)")] = None,
        pool: Annotated[str, typer.Option(help="Celery pool: prefork | solo")] = "prefork",
    ) -> None:
        """Run a Celery worker for the QA queue (backend ``celery``), until stopped."""
        from voxdesk.cli import _settings
        from voxdesk.qa_celery import run_worker

        run_worker(_settings(), concurrency=concurrency, pool=pool)


def _summary(outcomes: list[JobOutcome], wall: float, backend: Literal["local", "celery"]) -> dict[str, object]:
    done = [o for o in outcomes if o.status == "done"]
    audio_s = sum(o.audio_ms for o in done) / 1000
    return {
        "backend": backend,
        "files": len(outcomes),
        "inspected": len(done),
        "skipped": sum(1 for o in outcomes if o.status == "skipped"),
        "failed": sum(1 for o in outcomes if o.status == "failed"),
        "flagged": sum(1 for o in done if o.flagged),
        "findings": sum(o.findings for o in done),
        "audio_s": round(audio_s, 1),
        "wall_s": round(wall, 1),
        "x_realtime": round(audio_s / wall, 2) if wall > 0 and audio_s else 0.0,
        "errors": {o.call_id: o.error for o in outcomes if o.status == "failed"},
    }


def _print_summary(console: Console, s: dict[str, object]) -> None:
    table = Table(title=f"QA batch ({s['backend']})")
    for col in _COLUMNS:
        table.add_column(col, justify="right")
    table.add_row(*(str(s[c]) for c in _COLUMNS))
    console.print(table)
