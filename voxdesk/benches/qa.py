"""``voxdesk bench qa``: how fast full-volume QA inspects a folder of recordings, against a plain faster-whisper
loop on the same files in the same run, and what that speed costs in accuracy on the shared speech set.

* ``x_realtime``: seconds of call audio per wall second of the QA pipeline (``inspect(path) -> audio_ms``: the
  full :class:`qa.pipeline.QaPipeline` when it can be built, else :class:`qa.transcribe.CallTranscriber` on the
  file's channels).
* ``baseline_x_realtime``: ``WhisperModel(base, int8).transcribe(audio)`` with faster-whisper's default arguments
  (beam 5, no VAD, language detected) over each party's channel of each file (a mono file: the whole file), the
  segments materialised. Both run interleaved file by file (alternating which goes first), so a busy machine slows
  both alike; models are loaded and warmed before timing.
* ``wer_en`` / ``cer_zh``: the QA transcription settings on the speech set (each clip as a one-party call, language
  detected), and ``baseline_wer_en`` / ``baseline_cer_zh`` of the plain loop, both scored by
  :func:`asr.metrics.error_counts`.

A file that cannot be read or inspected is reported in ``skipped`` and left out of both timings. Blocking, in the
CLI process, on ``qa.threads_per_worker`` CPU threads.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from asr.base import SAMPLE_RATE_HZ
from asr.metrics import ErrorCounts, error_counts
from core.audio import read_audio, resample
from core.errors import VoxdeskError
from core.logging import get_logger

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

    from qa.models import Channel
    from qa.transcribe import CallTranscriber
    from voxdesk.settings import Settings

__all__ = [
    "AUDIO_SUFFIXES",
    "FileRun",
    "Inspect",
    "build_inspect",
    "find_recordings",
    "load_channels",
    "qa_transcriber",
    "run_qa_bench",
    "speech_set_scores",
]

log = get_logger(__name__)

AUDIO_SUFFIXES: Final = (".wav", ".flac", ".mp3")
Inspect = Callable[[Path], int]
"""Inspects one recording and returns its duration (ms); raises for a file it cannot use."""


@dataclass
class FileRun:
    """One recording: its duration and the wall time of the pipeline and of the baseline (s)."""

    name: str
    audio_s: float = 0.0
    pipeline_s: float = 0.0
    baseline_s: float = 0.0
    error: str | None = None


def find_recordings(folder: Path, limit: int | None = None) -> list[Path]:
    """The WAV/FLAC/MP3 files directly in ``folder``, sorted by name, at most ``limit``."""
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    return found[:limit] if limit is not None else found


def load_channels(path: Path) -> dict[Channel, npt.NDArray[np.int16]]:
    """Each party's audio at 16 kHz: stereo is customer left, agent right; mono is the whole file as ``agent``.
    Raises :class:`AudioFormatError` (or another :class:`VoxdeskError`) for a file that cannot be read."""
    clip = read_audio(path)

    def to16k(pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        pcm = np.ascontiguousarray(pcm)
        return pcm if clip.sample_rate == SAMPLE_RATE_HZ else resample(pcm, clip.sample_rate, SAMPLE_RATE_HZ)

    if clip.channels == 1:
        return {"agent": to16k(clip.samples)}
    return {"customer": to16k(clip.samples[:, 0]), "agent": to16k(clip.samples[:, 1])}


def qa_transcriber(settings: Settings) -> CallTranscriber:
    """The transcriber the QA pipeline uses, built as :func:`voxdesk.qa_wiring.build_pipeline` builds it (for the
    speech-set scores and for timing the transcriber alone)."""
    from asr.models import whisper_model_path
    from qa.transcribe import CallTranscriber

    qa = settings.qa
    return CallTranscriber(
        functools.partial(whisper_model_path, "base", settings.models.cache_dir),
        compute_type=settings.models.compute_type,
        threads=qa.threads_per_worker,
        beam_size=qa.beam_size,
        batch_size=qa.batch_size,
        zh_prompt=settings.asr.zh_prompt,
    )


def transcriber_inspect(transcriber: CallTranscriber) -> Inspect:
    """An :data:`Inspect` that only transcribes (no diarization, no rules): for when the pipeline is unavailable."""

    def inspect(path: Path) -> int:
        return transcriber.transcribe_channels(load_channels(path)).duration_ms

    return inspect


def build_inspect(settings: Settings, transcriber: CallTranscriber, mode: str) -> tuple[Inspect, str]:
    """The inspection to time and its name: ``pipeline`` (``voxdesk.qa_wiring.build_pipeline``), ``transcribe``
    (the transcriber alone), or ``auto`` (the pipeline when it can be built, else the transcriber)."""
    if mode == "transcribe":
        return transcriber_inspect(transcriber), "transcribe"
    try:
        from qa.models import RecordingMeta
        from voxdesk.qa_wiring import build_pipeline

        pipeline = build_pipeline(settings)
    except (ImportError, VoxdeskError) as exc:
        if mode == "pipeline":
            raise
        log.warning("QA pipeline unavailable: timing the transcriber alone", error=type(exc).__name__)
        return transcriber_inspect(transcriber), "transcribe"

    def inspect(path: Path) -> int:
        return int(pipeline.inspect_file(path, RecordingMeta(call_id=path.stem)).audio_ms)

    return inspect, "pipeline"


def baseline_transcribe(model: WhisperModel, pcm: npt.NDArray[np.int16]) -> str:
    """The plain loop on one party: faster-whisper's defaults (beam 5, no VAD, language detected), materialised."""
    segments, _ = model.transcribe(pcm.astype(np.float32) / np.float32(32768.0))
    return "".join(s.text for s in segments)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


def _time_baseline(model: WhisperModel, channels: dict[Channel, npt.NDArray[np.int16]]) -> float:
    started = time.perf_counter()
    for pcm in channels.values():
        baseline_transcribe(model, pcm)
    return time.perf_counter() - started


def run_files(
    paths: Sequence[Path], inspect: Inspect, baseline: WhisperModel | None, *, progress: Callable[[str], None]
) -> list[FileRun]:
    """Time ``inspect`` and the baseline on each file (interleaved, alternating order); failures are recorded."""
    runs: list[FileRun] = []
    for index, path in enumerate(paths):
        run = FileRun(path.name)
        runs.append(run)
        progress(path.name)
        try:
            channels = load_channels(path)
            baseline_first = baseline is not None and index % 2 == 1
            if baseline is not None and baseline_first:
                run.baseline_s = _time_baseline(baseline, channels)
            audio_ms, run.pipeline_s = _timed(functools.partial(inspect, path))
            if baseline is not None and not baseline_first:
                run.baseline_s = _time_baseline(baseline, channels)
            run.audio_s = audio_ms / 1000.0
        except VoxdeskError as exc:
            run.error = str(exc)
            log.warning("recording skipped", recording=path.name, error=exc.code)
        except Exception as exc:  # the bench's task root: one bad file never aborts the run
            run.error = f"{type(exc).__name__}: {exc}"
            log.exception("recording failed", recording=path.name)
    return runs


def speech_set_scores(
    manifest: Path, transcriber: CallTranscriber, baseline: WhisperModel | None
) -> dict[str, float | int | None]:
    """WER (en) / CER (zh) of the QA transcription settings and of the plain loop on a speech manifest (each clip
    a one-party call, language detected by both)."""
    from voxdesk.evals.asr import load_manifest, load_pcm16k

    ours: dict[str, ErrorCounts] = {"en": ErrorCounts(), "zh": ErrorCounts()}
    plain: dict[str, ErrorCounts] = {"en": ErrorCounts(), "zh": ErrorCounts()}
    n = 0
    for entry in load_manifest(manifest):
        pcm = load_pcm16k(entry)
        transcript = transcriber.transcribe_channels({"agent": pcm}, lang="auto")
        joiner = " " if transcript.lang == "en" else ""
        ours[entry.lang] += error_counts(entry.text, joiner.join(t.text for t in transcript.turns), entry.lang)
        if baseline is not None:
            plain[entry.lang] += error_counts(entry.text, baseline_transcribe(baseline, pcm), entry.lang)
        n += 1

    def rate(counts: ErrorCounts) -> float | None:
        return counts.rate if counts.ref_len else None

    return {
        "wer_en": rate(ours["en"]),
        "cer_zh": rate(ours["zh"]),
        "baseline_wer_en": rate(plain["en"]) if baseline is not None else None,
        "baseline_cer_zh": rate(plain["zh"]) if baseline is not None else None,
        "speech_clips": n,
        "words_en": ours["en"].ref_len,
        "chars_zh": ours["zh"].ref_len,
    }


def _warm(transcriber: CallTranscriber, baseline: WhisperModel | None) -> None:
    """Load and run both models once on 3 s of a tone so that loading is not timed."""
    t = np.arange(3 * SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ
    pcm = (3000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)
    transcriber.transcribe_channels({"agent": pcm}, lang="en")
    if baseline is not None:
        baseline_transcribe(baseline, pcm)


def _warm_inspect(paths: Sequence[Path], inspect: Inspect) -> None:
    """Inspect the first good stereo and the first good mono recording once, untimed, so that the pipeline's own
    lazy loads (intent classifier, sentiment, diarizer) are not timed either."""
    seen: set[int] = set()
    for path in paths:
        try:
            kind = len(load_channels(path))
            if kind not in seen:
                inspect(path)
                seen.add(kind)
        except Exception:  # noqa: BLE001 - a bad file is reported by the timed run
            log.info("warm-up inspection failed")
        if seen == {1, 2}:
            return


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def run_qa_bench(
    paths: Sequence[Path],
    *,
    transcriber: CallTranscriber,
    inspect: Inspect,
    pipeline_name: str,
    baseline: WhisperModel | None,
    manifest: Path | None,
    progress: Callable[[str], None] = lambda _name: None,
) -> tuple[list[FileRun], dict[str, Any]]:
    """Run the bench; returns the per-file runs and the summary (the JSON object of ``--json``)."""
    load_before = os.getloadavg()[0]
    _warm(transcriber, baseline)
    _warm_inspect(paths, inspect)
    runs = run_files(paths, inspect, baseline, progress=progress)
    done = [r for r in runs if r.error is None]
    audio_s = sum(r.audio_s for r in done)
    wall_s = sum(r.pipeline_s for r in done)
    baseline_s = sum(r.baseline_s for r in done)
    x_rt = _ratio(audio_s, wall_s)
    base_rt = _ratio(audio_s, baseline_s) if baseline is not None else None
    summary: dict[str, Any] = {
        "x_realtime": x_rt,
        "baseline_x_realtime": base_rt,
        "speedup_vs_baseline": _ratio(x_rt, base_rt) if x_rt is not None and base_rt else None,
        "files": len(done),
        "audio_s": round(audio_s, 2),
        "wall_s": round(wall_s, 2),
        "baseline_wall_s": round(baseline_s, 2),
        "pipeline": pipeline_name,
        "skipped": [{"file": r.name, "error": r.error} for r in runs if r.error is not None],
    }
    if manifest is not None:
        progress(manifest.name)
        summary.update(speech_set_scores(manifest, transcriber, baseline))
    else:
        summary.update({"wer_en": None, "cer_zh": None, "baseline_wer_en": None, "baseline_cer_zh": None})
    settings = transcriber.decode_settings
    summary.update(
        {
            "beam_size": settings.beam_size,
            "passes": transcriber.passes,
            "threads_per_pass": transcriber.threads_per_pass,
            "batch_size": transcriber.batch_size,
            "max_chunk_s": transcriber.max_chunk_s,
            "min_window_s": settings.min_window_s,
            "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        }
    )
    return runs, summary
