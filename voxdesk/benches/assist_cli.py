"""The ``voxdesk bench assist`` command: runs :func:`voxdesk.benches.assist.run_assist_bench`, prints the stages
and the end-to-end latency table, and with ``--json`` one JSON object as the last line (``p50_ms``, ``p95_ms``,
``n`` and more)."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["register", "render_rows", "render_summary"]


def _ms(value: object) -> str:
    return "—" if value is None else f"{value:.0f} ms" if isinstance(value, float | int) else str(value)


def render_summary(summary: dict[str, Any], console: Console) -> None:
    """One table: the end-to-end figures and each stage's p50/p95."""
    table = Table(title=f"voxdesk bench assist — {summary['calls']} call(s)")
    for name in ("measure", "p50", "p95"):
        table.add_column(name, justify="left" if name == "measure" else "right")
    table.add_row("end of speech → final on the bus", _ms(summary["final_p50_ms"]), _ms(summary["final_p95_ms"]))
    table.add_row("final → suggestion on the bus", _ms(summary["suggestion_p50_ms"]), _ms(summary["suggestion_p95_ms"]))
    table.add_row("suggestion → painted in the browser", _ms(summary["paint_p50_ms"]), _ms(summary["paint_p95_ms"]))
    table.add_row("[bold]end of speech → painted[/bold]", _ms(summary["p50_ms"]), _ms(summary["p95_ms"]))
    console.print(table)
    accuracy = summary["intent_accuracy"]
    console.print(
        f"utterances {summary['utterances']}, cards measured {summary['n']}, without a card {summary['missed']}, "
        f"right question {'—' if accuracy is None else f'{100 * accuracy:.1f}%'}, max {_ms(summary['max_ms'])}"
    )


def render_rows(rows: list[dict[str, Any]], console: Console) -> None:
    """One row per measured card: the call, the question, its end of speech (call ms) and the stages."""
    table = Table(title="cards")
    for name in ("call", "question", "end of speech", "→ final", "→ suggestion", "→ painted", "total"):
        table.add_column(name, justify="left" if name in ("call", "question") else "right")
    for r in sorted(rows, key=lambda r: (r["call_id"], r["end_ms"])):
        table.add_row(
            r["call_id"][:13], str(r["question_id"]), f"{r['end_ms']} ms", _ms(r["to_final_ms"]),
            _ms(r["to_suggestion_ms"]), _ms(r["to_paint_ms"]), _ms(r["latency_ms"]),
        )  # fmt: skip
    console.print(table)


def register(bench_app: typer.Typer) -> None:
    """Add the ``assist`` command to the ``voxdesk bench`` group."""

    @bench_app.command("assist")
    def bench_assist(
        calls: Annotated[int, typer.Option(min=1, max=8, help="Concurrent assisted calls.")] = 1,
        utterances: Annotated[int, typer.Option(min=1, help="Customer questions in all (shared by the calls).")] = 30,
        gap_ms: Annotated[int, typer.Option(min=1500, help="Silence between two questions (ms).")] = 4000,
        per_utterance: Annotated[bool, typer.Option(help="Print one row per measured card.")] = False,
        keep: Annotated[bool, typer.Option(help="Keep the work folder (logs, pcaps, database).")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
    ) -> None:
        """Real SIP calls on assisted lines, a real browser per agent: end of utterance → suggestion painted."""
        from core.errors import VoxdeskError
        from voxdesk.benches.assist import AssistBenchPlan, run_assist_bench
        from voxdesk.cli import _STATE, _fail, _settings

        settings = _settings()
        console = Console(width=None if sys.stdout.isatty() else 200)
        plan = AssistBenchPlan(calls=calls, utterances=utterances, gap_ms=gap_ms)
        try:
            with console.status(f"{calls} assisted call(s), {utterances} questions…"):
                rows, summary = run_assist_bench(settings, plan, config_file=_STATE["config"], keep=keep)
        except VoxdeskError as exc:
            _fail(exc)
        if per_utterance:
            render_rows(rows, console)
        render_summary(summary, console)
        if as_json:
            sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")
