"""``voxdesk eval diarization --audio X.wav --rttm X.rttm``: diarization error rate of the QA diarizer.

Reads any WAV/FLAC sub-format :func:`core.audio.read_audio` accepts (int16, float32, …), mixes to mono, resamples to
16 kHz, runs :class:`qa.diarize.SenkoDiarizer` and scores it against the RTTM reference with pyannote.metrics
(``skip_overlap=False``). Reports ``der`` at ``--collar`` (default 0: every frame counts), ``der_collar_025``, the
error parts (fractions of the reference speech), speaker counts and ``rtf`` (diarization wall time / audio
duration, with the configured QA thread count; ``cpu_rtf`` is CPU seconds of all threads / audio duration).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from core.errors import InvalidInputError, VoxdeskError

__all__ = ["evaluate_file", "register"]


def evaluate_file(
    audio: Path, rttm: Path, *, num_speakers: int | None = None, collar: float = 0.0, threads: int = 2
) -> dict[str, Any]:
    """Diarize ``audio`` and score it against ``rttm``; the JSON summary (see the module doc)."""
    from core.audio import mix_to_mono, read_audio
    from core.resample import resample
    from qa.diarize import SAMPLE_RATE_HZ, SenkoDiarizer
    from qa.diarize_rttm import der_report, read_rttm

    for label, path in (("audio", audio), ("RTTM", rttm)):
        if not path.is_file():
            raise InvalidInputError(f"{label} file not found", path=str(path))
    reference = read_rttm(rttm)
    clip = read_audio(audio)
    pcm = clip.samples if clip.channels == 1 else mix_to_mono(clip.samples)
    if clip.sample_rate != SAMPLE_RATE_HZ:
        pcm = resample(pcm, clip.sample_rate, SAMPLE_RATE_HZ)
    audio_s = len(pcm) / SAMPLE_RATE_HZ
    diarizer = SenkoDiarizer(threads=threads)
    diarizer.diarize(pcm[:SAMPLE_RATE_HZ], num_speakers=1)  # loads the models outside the timed run
    started, cpu_started = time.perf_counter(), time.process_time()
    turns = diarizer.diarize(pcm, num_speakers=num_speakers)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    main = der_report(reference, turns, collar=collar)
    wide = der_report(reference, turns, collar=0.25)
    return {
        "der": main["der"],
        "der_collar_025": wide["der"],
        "collar": collar,
        "miss": main["miss"],
        "false_alarm": main["false_alarm"],
        "confusion": main["confusion"],
        "reference_speech_s": main["total_s"],
        "audio_s": audio_s,
        "diarize_s": elapsed,
        "rtf": elapsed / audio_s if audio_s else 0.0,
        "cpu_rtf": cpu / audio_s if audio_s else 0.0,
        "threads": threads,
        "num_speakers": num_speakers,
        "speakers_ref": len({r.speaker for r in reference}),
        "speakers_hyp": len({t.speaker for t in turns}),
        "turns_hyp": len(turns),
    }


def register(eval_app: typer.Typer) -> None:
    """Add ``voxdesk eval diarization``."""

    @eval_app.command("diarization")
    def eval_diarization(
        audio: Annotated[Path, typer.Option(dir_okay=False, help="WAV/FLAC recording (any sample format).")],
        rttm: Annotated[Path, typer.Option(dir_okay=False, help="Reference RTTM.")],
        num_speakers: Annotated[
            int | None, typer.Option("--num-speakers", min=1, help="Known speaker count (default: estimate).")
        ] = None,
        collar: Annotated[float, typer.Option(min=0.0, help="Forgiveness collar around reference edges, s.")] = 0.0,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
    ) -> None:
        """Diarization error rate (miss, false alarm, confusion) and real-time factor on one recording."""
        from rich.console import Console
        from rich.table import Table

        from voxdesk.cli import _fail, _settings

        try:
            for label, path in (("audio", audio), ("RTTM", rttm)):
                if not path.is_file():
                    raise InvalidInputError(f"{label} file not found: {path}", path=str(path))
            threads = int(getattr(getattr(_settings(), "qa", None), "threads_per_worker", 2) or 2)
            summary = evaluate_file(audio, rttm, num_speakers=num_speakers, collar=collar, threads=threads)
        except VoxdeskError as exc:
            _fail(exc)
        table = Table("metric", "value", title=f"diarization evaluation ({audio.name})")
        table.add_row(f"DER (collar {collar:g} s)", f"{100 * summary['der']:.2f}%")
        table.add_row("DER (collar 0.25 s)", f"{100 * summary['der_collar_025']:.2f}%")
        for key in ("miss", "false_alarm", "confusion"):
            table.add_row(key, f"{100 * summary[key]:.2f}%")
        table.add_row("speakers (ref / hyp)", f"{summary['speakers_ref']} / {summary['speakers_hyp']}")
        table.add_row("audio", f"{summary['audio_s']:.1f} s")
        table.add_row("RTF", f"{summary['rtf']:.3f} ({summary['threads']} threads)")
        Console(width=None if sys.stdout.isatty() else 160).print(table)
        if as_json:
            sys.stdout.write(json.dumps(summary) + "\n")
