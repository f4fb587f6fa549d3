"""The ``voxdesk bench qa`` command: runs :func:`voxdesk.benches.qa.run_qa_bench` on a folder of recordings, prints
a per-file table and the totals, and with ``--json`` one JSON object as the last line (``x_realtime``,
``baseline_x_realtime``, ``speedup_vs_baseline``, ``wer_en``, ``cer_zh``, ``baseline_wer_en``, ``baseline_cer_zh``,
``files``, ``audio_s`` and more)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from voxdesk.benches.qa import FileRun

__all__ = ["register", "render_files", "render_summary"]


def _x(value: object) -> str:
    return "—" if not isinstance(value, float | int) else f"{value:.1f}×"


def _pct(value: object) -> str:
    return "—" if not isinstance(value, float | int) else f"{100 * value:.1f}%"


def render_files(runs: Sequence[FileRun], console: Console) -> None:
    """One row per recording: duration, pipeline and baseline wall time and speed, or why it was skipped."""
    table = Table(title="recordings")
    for name in ("file", "audio", "QA wall", "QA speed", "baseline wall", "baseline speed", "problem"):
        table.add_column(name, justify="left" if name in ("file", "problem") else "right")
    for r in runs:
        if r.error is not None:
            table.add_row(r.name, "", "", "", "", "", r.error)
            continue
        speed = r.audio_s / r.pipeline_s if r.pipeline_s else None
        base_speed = r.audio_s / r.baseline_s if r.baseline_s else None
        base_wall = f"{r.baseline_s:.2f} s" if r.baseline_s else "—"
        table.add_row(r.name, f"{r.audio_s:.1f} s", f"{r.pipeline_s:.2f} s", _x(speed), base_wall, _x(base_speed), "")
    console.print(table)


def render_summary(summary: dict[str, Any], console: Console) -> None:
    """QA speed against the plain loop, and both accuracies on the speech set."""
    table = Table(title=f"voxdesk bench qa — {summary['files']} file(s), {summary['audio_s']:.1f} s of calls")
    for name in ("", "QA (" + summary["pipeline"] + ")", "plain faster-whisper loop"):
        table.add_column(name, justify="left" if not name else "right")
    table.add_row("× real time", _x(summary["x_realtime"]), _x(summary["baseline_x_realtime"]))
    table.add_row("wall time", f"{summary['wall_s']:.1f} s", f"{summary['baseline_wall_s']:.1f} s")
    table.add_row("WER en (speech set)", _pct(summary["wer_en"]), _pct(summary["baseline_wer_en"]))
    table.add_row("CER zh (speech set)", _pct(summary["cer_zh"]), _pct(summary["baseline_cer_zh"]))
    console.print(table)
    console.print(
        f"speedup vs baseline {_x(summary['speedup_vs_baseline'])}; beam {summary['beam_size']}, "
        f"{summary['passes']} pass(es) × {summary['threads_per_pass']} thread(s), batch {summary['batch_size']}; "
        f"load average {summary['load_avg_1m'][0]} → {summary['load_avg_1m'][1]}"
    )
    for skipped in summary["skipped"]:
        console.print(f"[yellow]skipped[/yellow] {skipped['file']}: {skipped['error']}", markup=True, highlight=False)


def register(bench_app: typer.Typer) -> None:
    """Add the ``qa`` command to the ``voxdesk bench`` group."""

    @bench_app.command("qa")
    def bench_qa(
        folder: Annotated[Path, typer.Option("--dir", exists=True, file_okay=False, help="Folder of recordings.")],
        limit: Annotated[int | None, typer.Option(min=1, help="Most recordings to use (sorted by name).")] = None,
        pipeline: Annotated[
            str, typer.Option(help="What to time: auto (the QA pipeline if it builds), pipeline, or transcribe.")
        ] = "auto",
        manifest: Annotated[
            Path | None, typer.Option(dir_okay=False, help="Speech set (default: <shared data>/speech/manifest.jsonl).")
        ] = None,
        speech_set: Annotated[bool, typer.Option(help="Score WER/CER on the speech set.")] = True,
        baseline: Annotated[bool, typer.Option(help="Also run the plain faster-whisper loop.")] = True,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
    ) -> None:
        """Full-volume QA speed (× real time) against a plain faster-whisper loop, and WER/CER of both."""
        from asr.models import whisper_model_path
        from core.errors import VoxdeskError
        from voxdesk.benches.qa import build_inspect, find_recordings, qa_transcriber, run_qa_bench
        from voxdesk.cli import _fail, _settings

        if pipeline not in ("auto", "pipeline", "transcribe"):
            raise typer.BadParameter("choose auto, pipeline or transcribe", param_hint="--pipeline")
        settings = _settings()
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)  # one line per decoded chunk otherwise
        console = Console(width=None if sys.stdout.isatty() else 160)
        speech = manifest or settings.shared_data / "speech" / "manifest.jsonl"
        if speech_set and not speech.is_file():
            console.print(f"[yellow]no speech set at {speech}: WER/CER not measured[/yellow]")
        paths = find_recordings(folder, limit)
        try:
            transcriber = qa_transcriber(settings)
            inspect, name = build_inspect(settings, transcriber, pipeline)
            plain = None
            if baseline:
                from faster_whisper import WhisperModel

                folder_path = whisper_model_path("base", settings.models.cache_dir)
                threads = settings.qa.threads_per_worker
                plain = WhisperModel(str(folder_path), device="cpu", compute_type="int8", cpu_threads=threads)
            with console.status("inspecting…") as status:
                runs, summary = run_qa_bench(
                    paths,
                    transcriber=transcriber,
                    inspect=inspect,
                    pipeline_name=name,
                    baseline=plain,
                    manifest=speech if speech_set and speech.is_file() else None,
                    progress=lambda item: status.update(f"inspecting {item}…"),
                )
        except VoxdeskError as exc:
            _fail(exc)
        render_files(runs, console)
        render_summary(summary, console)
        if as_json:
            sys.stdout.write(json.dumps(summary, ensure_ascii=False) + "\n")
