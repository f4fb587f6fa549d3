"""``voxdesk qa``: quality inspection of recorded calls — ``run`` and ``worker`` (:mod:`voxdesk.qa_batch_cli`) and
``make-set`` (the labelled call set of :mod:`voxdesk.benches.qa_set`). Commands block in the CLI process."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["qa_app"]

qa_app = typer.Typer(help="Quality inspection of recorded calls.", no_args_is_help=True)


@qa_app.command("make-set")
def make_set(
    out: Annotated[Path, typer.Option("--out", help="folder to write the recordings, metadata.csv, labels.jsonl")],
    limit: Annotated[int | None, typer.Option(min=1, help="only the first N calls")] = None,
    workers: Annotated[int, typer.Option(min=1, help="synthesis processes")] = 2,
) -> None:
    """Synthesise the labelled QA call set (scripted calls with planted violations) as recordings."""
    from collections import Counter

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.table import Table

    from core.errors import VoxdeskError
    from voxdesk.benches.qa_scripts import load_scripts
    from voxdesk.benches.qa_set import BuiltCall, build_set
    from voxdesk.cli import _fail

    console = Console()
    audio_s = [0.0]

    def advance(call: BuiltCall) -> None:
        audio_s[0] += call.duration_ms / 1000
        bar.update(task, advance=1, last=call.call_id, audio=audio_s[0] / 60)

    try:
        total = len(load_scripts()[:limit] if limit else load_scripts())
        columns = (
            TextColumn("synthesising"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[audio]:.1f} min of audio, last {task.fields[last]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("calls", total=total, last="-", audio=0.0)
            summary = build_set(out, limit=limit, workers=workers, progress=advance)
    except VoxdeskError as exc:
        _fail(exc)
    positives: Counter[str] = Counter()
    for call in summary.calls:
        expected = call.label["expected"]
        assert isinstance(expected, list)
        positives.update(str(e["rule"]) for e in expected)
    table = Table("rule", "expected findings", title="planted findings")
    for rule, n in sorted(positives.items()):
        table.add_row(rule, str(n))
    console.print(table)
    lengths = [c.duration_ms / 1000 for c in summary.calls]
    console.print(
        f"{len(summary.calls)} calls ({min(lengths):.0f}-{max(lengths):.0f} s each), {summary.audio_s / 60:.1f} min "
        f"of audio in {summary.seconds:.0f} s → {out}"
    )


from voxdesk.qa_batch_cli import register  # noqa: E402

register(qa_app)
