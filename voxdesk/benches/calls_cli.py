"""The ``voxdesk bench calls`` command: runs :func:`voxdesk.benches.calls.run_calls_bench` for one or more N,
prints a per-call table (one N) and the curve (N → frame gap, lost frames, latency, CPU), and with ``--json`` one
JSON object as the last line: the figures of the largest N that held (else of the largest N tried), with
``max_holding`` and every run in ``curve``."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from rich.table import Table

from voxdesk.benches.calls_report import CallRow

__all__ = ["register", "render_calls", "render_curve", "select_result"]


def _fmt(value: object, suffix: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.1f}{suffix}"
    return f"{value}{suffix}"


def render_calls(rows: Sequence[CallRow], console: Console) -> None:
    """One row per call: frames, gaps, losses, finals, latency and transcript accuracy."""
    table = Table(title="calls")
    for name in ("call", "lang", "frames", "gap p99", "gap max", "lost", "concealed", "finals", "latency p50",
                 "latency max", "WER/CER"):  # fmt: skip
        table.add_column(name, justify="left" if name in ("call", "lang") else "right")
    for r in rows:
        lat = sorted(r.latencies_ms)
        table.add_row(
            r.call_id, r.lang, str(r.frames), _fmt(r.gap_p99_ms, " ms"), _fmt(r.gap_max_ms, " ms"),
            str(r.lost_frames), str(r.jbuf_lost), str(r.finals),
            _fmt(lat[len(lat) // 2] if lat else None, " ms"), _fmt(lat[-1] if lat else None, " ms"),
            f"{100 * r.counts.rate:.1f}%" if r.counts.ref_len else "—",
        )  # fmt: skip
    console.print(table)


def render_curve(summaries: Sequence[dict[str, Any]], console: Console) -> None:
    """One row per N tried."""
    table = Table(title="voxdesk bench calls")
    for name in ("N", "workers m/s", "completed", "lost frames", "gap p99 (worst call)", "final p50", "final p95",
                 "partials/skipped", "max lag", "WER en", "CER zh", "CPU voxdesk", "CPU machine", "holds"):  # fmt: skip
        table.add_column(name, justify="right")
    for s in summaries:
        table.add_row(
            str(s["concurrent"]), f"{s['media_workers']}/{s['speech_workers']}",
            f"{s['calls_completed']}/{s['concurrent']}", str(s["lost_frames"]), _fmt(s["frame_gap_p99_ms"], " ms"),
            _fmt(s["final_latency_p50_ms"], " ms"), _fmt(s["final_latency_p95_ms"], " ms"),
            f"{s['partials']}/{s['partials_skipped']}", _fmt(s["speech_max_lag_ms"], " ms"),
            _rate(s["wer_en"]), _rate(s["cer_zh"]), _fmt(s["cpu_percent"], "%"), _fmt(s["machine_cpu_percent"], "%"),
            "yes" if s["holds"] else "no",
        )  # fmt: skip
    console.print(table)


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def select_result(summaries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The JSON object: the largest N that held (else the largest tried) plus ``max_holding`` and ``curve``."""
    holding = [s for s in summaries if s["holds"]]
    chosen = max(holding or summaries, key=lambda s: int(s["concurrent"]))
    result = dict(chosen)
    result["max_holding"] = max((int(s["concurrent"]) for s in holding), default=0)
    result["curve"] = [dict(s) for s in summaries]
    return result


def register(bench_app: typer.Typer) -> None:
    """Add the ``calls`` command to the ``voxdesk bench`` group."""

    @bench_app.command("calls")
    def bench_calls(
        concurrent: Annotated[
            list[int], typer.Option(help="Concurrent calls; repeat (--concurrent 4 --concurrent 8) for a curve.")
        ],
        seconds: Annotated[float, typer.Option(min=5, help="Length of each call's speech program (s).")] = 60.0,
        lang: Annotated[str, typer.Option(help="zh, en or mixed (calls alternate between the two lines).")] = "mixed",
        speech_workers: Annotated[int | None, typer.Option(min=1, help="Default: asr.speech_workers.")] = None,
        codec: Annotated[str, typer.Option(help="pcmu or pcma.")] = "pcmu",
        per_call: Annotated[bool, typer.Option(help="Print the per-call table of every run.")] = False,
        keep: Annotated[bool, typer.Option(help="Keep the work folder (recordings, statistics, sipp logs).")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
    ) -> None:
        """N real SIP calls at once (sipp playing real speech): frame gaps, lost frames, final latency, CPU."""
        from core.errors import VoxdeskError
        from voxdesk.benches.calls import CallsBenchPlan, run_calls_bench
        from voxdesk.cli import _STATE, _fail, _settings

        if lang not in ("zh", "en", "mixed"):
            raise typer.BadParameter("choose zh, en or mixed", param_hint="--lang")
        if codec not in ("pcmu", "pcma"):
            raise typer.BadParameter("choose pcmu or pcma", param_hint="--codec")
        if any(n < 1 for n in concurrent):
            raise typer.BadParameter("must be at least 1", param_hint="--concurrent")
        settings = _settings()
        console = Console(width=None if sys.stdout.isatty() else 200)  # a file or pipe gets the whole table
        summaries: list[dict[str, Any]] = []
        for n in concurrent:
            plan = CallsBenchPlan(
                concurrent=n,
                seconds=seconds,
                lang=cast(Any, lang),
                speech_workers=speech_workers,
                codec=cast(Any, codec),
            )
            try:
                with console.status(f"{n} concurrent calls of {seconds:.0f} s…"):
                    rows, summary = run_calls_bench(settings, plan, config_file=_STATE["config"], keep=keep)
            except VoxdeskError as exc:
                _fail(exc)
            if per_call or len(concurrent) == 1:
                render_calls(rows, console)
            summaries.append(summary)
        render_curve(summaries, console)
        if as_json:
            sys.stdout.write(json.dumps(select_result(summaries), ensure_ascii=False) + "\n")
