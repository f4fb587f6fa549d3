"""The ``voxdesk bench navigator`` command: runs :func:`voxdesk.benches.navigator.run_navigator_bench`, prints the
turn latency with its stages, containment and intent accuracy, and with ``--json`` one JSON object as the last line
(``p50_ms``, ``p95_ms``, ``n``, ``containment``, ``intent_accuracy`` and more)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["register", "render_rows", "render_summary"]

_STAGES = (
    ("final", "caller end of speech → final transcript (endpoint + recognition)"),
    ("intent", "final → intent detected (bus + classifier)"),
    ("said", "→ first sentence of the answer sent (dialog + speech)"),
    ("audio", "→ first bot packet on the wire (play channel + bridge tick)"),
)


def _ms(value: object) -> str:
    return "—" if value is None else f"{value:.0f} ms" if isinstance(value, float | int) else str(value)


def _pct(value: object) -> str:
    return "—" if not isinstance(value, float | int) else f"{100 * value:.1f}%"


def render_summary(summary: dict[str, Any], console: Console) -> None:
    """The latency table (stages and end to end), then containment and intent accuracy."""
    table = Table(title=f"voxdesk bench navigator — {summary['calls']} call(s), {summary['concurrent']} at a time")
    for name in ("measure", "p50", "p95"):
        table.add_column(name, justify="left" if name == "measure" else "right")
    for key, label in _STAGES:
        table.add_row(label, _ms(summary.get(f"{key}_p50_ms")), _ms(summary.get(f"{key}_p95_ms")))
    table.add_row("[bold]caller end of speech → first bot audio packet[/bold]", _ms(summary["p50_ms"]),
                  _ms(summary["p95_ms"]))  # fmt: skip
    console.print(table)
    console.print(
        f"turns measured {summary['n']} of {summary['turns']}, max {_ms(summary['max_ms'])}; "
        f"containment {_pct(summary['containment'])} (calls routed as scripted {_pct(summary['expected_routing'])}); "
        f"intent accuracy {_pct(summary['intent_accuracy'])} over {summary['intent_turns']} requests"
    )
    for handoff in summary.get("handoffs", []):
        console.print(f"handed to a person: {handoff}")
    for error in summary.get("errors", []):
        console.print(f"[yellow]call problem:[/yellow] {error}")


def render_rows(rows: list[dict[str, Any]], console: Console) -> None:
    """One row per caller turn."""
    table = Table(title="turns")
    for name in ("call", "#", "caller said", "intent", "heard", "latency"):
        table.add_column(name, justify="right" if name in ("#", "latency") else "left")
    for r in rows:
        mark = "" if r["intent"] is None else ("✓" if r["heard"] == r["intent"] else "✗")
        table.add_row(r["call"], str(r["turn"]), r["say"], r["intent"] or "", f"{r['heard'] or ''} {mark}",
                      _ms(r["latency_ms"]))  # fmt: skip
    console.print(table)


def register(bench_app: typer.Typer) -> None:
    """Add the ``navigator`` command to the ``voxdesk bench`` group."""

    @bench_app.command("navigator")
    def bench_navigator(
        calls: Annotated[
            int | None, typer.Option(min=1, help="Scripted calls to run (default: the whole script).")
        ] = None,
        concurrent: Annotated[int, typer.Option(min=1, max=8, help="Calls at a time.")] = 2,
        script: Annotated[Path | None, typer.Option(help="A caller script YAML (default: the shipped one).")] = None,
        per_turn: Annotated[bool, typer.Option(help="Print one row per caller turn.")] = False,
        keep: Annotated[bool, typer.Option(help="Keep the work folder (logs, recordings, database).")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
    ) -> None:
        """Real SIP calls from scripted baresip callers to the voice navigator: turn latency, containment, intents."""
        from core.errors import VoxdeskError
        from voxdesk.benches.navigator import NavigatorBenchPlan, run_navigator_bench
        from voxdesk.benches.navigator_script import SCRIPT
        from voxdesk.cli import _STATE, _fail, _settings

        settings = _settings()
        console = Console(width=None if sys.stdout.isatty() else 200)
        plan = NavigatorBenchPlan(calls=calls, concurrent=concurrent, script=script or SCRIPT)
        try:
            with console.status("scripted calls to the navigator…"):
                rows, summary = run_navigator_bench(settings, plan, config_file=_STATE["config"], keep=keep)
        except VoxdeskError as exc:
            _fail(exc)
        if per_turn:
            render_rows(rows, console)
        render_summary(summary, console)
        if as_json:
            sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")
