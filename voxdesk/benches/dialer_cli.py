"""The ``voxdesk bench dialer`` command: runs :func:`voxdesk.benches.dialer.run_dialer_bench`, prints the figures and
with ``--json`` one JSON object as the last line (``attempts_per_min``, ``double_dials``, ``channel_utilisation``
and more)."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from voxdesk.benches.dialer import DialerBenchResult

__all__ = ["register", "render_result"]


def render_result(result: DialerBenchResult, console: Console) -> None:
    """One table of the run's figures and one of its outcomes."""
    table = Table(title=f"voxdesk bench dialer — {result.channels} channels over {result.media_workers} media workers")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("window", f"{result.seconds:.1f} s")
    table.add_row("attempts placed in the window", str(result.attempts))
    table.add_row("[bold]attempts per minute[/bold]", f"{result.attempts_per_min:.1f}")
    table.add_row("channel utilisation", f"{100 * result.channel_utilisation:.1f}%")
    table.add_row("[bold]double dials[/bold]", str(result.double_dials))
    table.add_row("INVITEs seen on the bus / calls sipp received", f"{result.invites_seen} / {result.sipp_calls}")
    console.print(table)
    outcomes = Table(title="attempt outcomes")
    outcomes.add_column("state")
    outcomes.add_column("attempts", justify="right")
    for state, count in sorted(result.outcomes.items()):
        outcomes.add_row(state, str(count))
    console.print(outcomes)


def register(bench_app: typer.Typer) -> None:
    """Add the ``dialer`` command to the ``voxdesk bench`` group."""

    @bench_app.command("dialer")
    def bench_dialer(
        channels: Annotated[int, typer.Option(min=1, max=64, help="Concurrent calls (4 per media worker).")] = 16,
        seconds: Annotated[float, typer.Option(min=10, max=3600, help="How long to dial (s).")] = 60.0,
        hold_ms: Annotated[int, typer.Option(min=200, help="How long the callee talks before hanging up (ms).")] = 3000,
        ring_ms: Annotated[int, typer.Option(min=0, help="How long the callee rings before answering (ms).")] = 300,
        keep: Annotated[bool, typer.Option(help="Keep the work folder (logs, recordings, database).")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
    ) -> None:
        """The real dialer and media workers calling a sipp callee on 127.0.0.1: attempts/min, utilisation, double
        dials."""
        from core.errors import VoxdeskError
        from voxdesk.benches.dialer import DialerBenchPlan, run_dialer_bench
        from voxdesk.cli import _fail, _settings

        settings = _settings()
        console = Console(width=None if sys.stdout.isatty() else 200)
        plan = DialerBenchPlan(channels=channels, seconds=seconds, hold_ms=hold_ms, ring_ms=ring_ms)
        work = Path(tempfile.mkdtemp(prefix="voxdesk-bench-dialer-"))
        try:
            with console.status(f"dialing with {channels} channels for {seconds:.0f} s…"):
                result = run_dialer_bench(settings, plan, work)
        except VoxdeskError as exc:
            _fail(exc)
        finally:
            if keep:
                console.print(f"work folder kept: {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)
        render_result(result, console)
        if as_json:
            sys.stdout.write(json.dumps(result.as_json(), ensure_ascii=False) + "\n")
