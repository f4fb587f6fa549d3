"""Builds the labelled QA call set: every script of ``qa_calls.yaml`` synthesised as a recorded call.

Voices: the agent is the bundled Piper voice en_US-joe-medium at ``length_scale = 1.55 / rate`` with a 0.3 s pause
between sentences (also divided by ``rate``): about 160 words/min over its turns, a call-centre pace (the voice
speaks ~230 words/min at 1.0, over the 190 words/min limit of ``speech_rate``); ``rate: 1.8`` is fast speech, about
250 words/min. The customer is the same Piper voice, pitched down by playing it 10 % slow (a different-sounding
speaker), about 165 words/min: espeak-ng ``en-us`` was tried first, and Whisper base misheard about a fifth of its
words (20-35 % word errors over ten customer lines for the ``en-us``, ``+f3``, ``+m1``, ``+klatt`` variants at 130-165
words/min, against 4-10 % for the pitched Piper voice), among them the very phrases the rules look for ("saving for
my daughter's education" -> "failing for my modern education"). Piper's noise is off (``noise_scale = noise_w =
0``), which makes the synthesis deterministic. English only: no Chinese voice is installed.

In ``audio: mono`` calls the customer is espeak-ng ``en-us`` at 140 words/min instead: the diarizer must tell the
two parties apart by voice there, and CAM++ hears the Piper voice and any pitched copy of it as one speaker
(measured on qa019: every turn in one cluster with the customer played at 0.9, 0.8 and 0.72 of its rate; with an
espeak customer every turn lands in the right cluster). Whisper base mishears about a fifth of espeak's words;
``en-us`` at 140 was the best of six variants tried on eight customer lines (21 % word errors; ``en-us+m3`` at 130
and 150, ``+m1``, ``en-gb``, ``en-gb-x-rp``: 25-27 %).

Each turn is trimmed of its leading/trailing silence and placed on the call's timeline
(:func:`voxdesk.benches.qa_scripts.build_timeline`); the recording is 16-bit PCM at 8 kHz, stereo with the
customer LEFT (channel 0) and the agent RIGHT (channel 1), except calls whose script says ``audio: mono`` (one
mixed channel) or ``audio: flac``. The folder gets ``metadata.csv`` (the import format of :mod:`qa.imports`) and
``labels.jsonl`` (per call: ``call_id``, ``file``, ``duration_ms``, ``call_reason`` and ``expected`` findings with
``rule``, ``channel``, ``start_ms``, ``end_ms``).

Blocking and CPU-bound (Piper on the CPU): synthesis runs in ``workers`` processes, each loading the voice once.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from core.audio import AudioClip, resample, write_audio
from core.logging import get_logger
from voxdesk.benches.qa_scripts import (
    METADATA_HEADER,
    CallScript,
    ScriptTurn,
    Span,
    build_timeline,
    label_call,
    load_scripts,
    metadata_row,
)

if TYPE_CHECKING:
    from piper import PiperVoice

__all__ = ["RATE_HZ", "BuiltCall", "SetSummary", "build_set", "mix_call", "trim_silence"]

log = get_logger(__name__)

RATE_HZ: Final = 8000
"""Sample rate of the recordings (Hz): telephone audio."""
_CUSTOMER_SLOWDOWN: Final = 0.9
"""The customer's Piper audio is played at this fraction of its rate (lower pitch, slower)."""
_AGENT_LENGTH: Final = 1.55
"""Piper's length scale for the agent at ``rate: 1`` (the bundled voice speaks ~230 words/min at 1.0)."""
_CUSTOMER_LENGTH: Final = 1.3
_SENTENCE_GAP_S: Final = {"agent": 0.3, "customer": 0.25}
"""Pause between the sentences of one turn (s) at ``rate: 1``."""
_TRIM_LEVEL: Final = 300
"""Samples quieter than this (int16) at a turn's edges are trimmed."""
_TAIL_MS: Final = 800
"""Silence after the last turn (ms)."""
_ESPEAK: Final = ("espeak-ng", "-v", "en-us", "-s", "140", "--stdout")
"""The second synthesiser, for the customer of mono calls (words/min after ``-s``)."""

_voice: PiperVoice | None = None


@dataclass(frozen=True)
class BuiltCall:
    """One synthesised call: its file (relative to the set folder), length and label line."""

    call_id: str
    file: str
    duration_ms: int
    label: dict[str, object]
    row: dict[str, str]


@dataclass(frozen=True)
class SetSummary:
    """What :func:`build_set` wrote."""

    out_dir: Path
    calls: tuple[BuiltCall, ...]
    seconds: float

    @property
    def audio_s(self) -> float:
        return sum(c.duration_ms for c in self.calls) / 1000


def _load_voice() -> PiperVoice:
    global _voice
    if _voice is None:
        from piper import PiperVoice as Runtime

        from agent.models import bundled_voice_path, piper_voice_files

        files = piper_voice_files(bundled_voice_path())
        _voice = Runtime.load(files.model, files.config)
    return _voice


def trim_silence(pcm: npt.NDArray[np.int16], level: int = _TRIM_LEVEL) -> npt.NDArray[np.int16]:
    """``pcm`` without the quiet samples at its start and end (all of it when nothing is louder)."""
    loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) > level)
    if loud.size == 0:
        return pcm[:0]
    return pcm[int(loud[0]) : int(loud[-1]) + 1]


def _espeak(turn: ScriptTurn) -> npt.NDArray[np.int16]:
    """One customer turn of a mono call, spoken by espeak-ng, as trimmed 8 kHz mono int16 (blocking)."""
    import shutil
    import subprocess

    from core.audio import read_audio
    from core.errors import ModelMissingError

    if shutil.which(_ESPEAK[0]) is None:
        raise ModelMissingError("espeak-ng is not installed: mono calls need it", remedy="apt-get install espeak-ng")
    wav = subprocess.run([*_ESPEAK, turn.text], capture_output=True, check=True, timeout=60).stdout  # noqa: S603
    clip = read_audio(wav)
    return trim_silence(resample(clip.samples.reshape(-1), clip.sample_rate, RATE_HZ))


def _synthesize(turn: ScriptTurn, *, mono: bool = False) -> npt.NDArray[np.int16]:
    """One turn as 8 kHz mono int16: its sentences, each trimmed, joined by a short pause (process-local voice;
    blocking). In a ``mono`` call the customer speaks with espeak-ng."""
    if mono and turn.speaker == "customer":
        return _espeak(turn)
    from piper import SynthesisConfig

    from agent.tts.base import split_sentences

    voice = _load_voice()
    length = (_AGENT_LENGTH if turn.speaker == "agent" else _CUSTOMER_LENGTH) / turn.rate
    config = SynthesisConfig(length_scale=length, noise_scale=0.0, noise_w_scale=0.0)
    rate = int(voice.config.sample_rate)
    if turn.speaker == "customer":
        rate = round(rate * _CUSTOMER_SLOWDOWN)
    gap = np.zeros(round(_SENTENCE_GAP_S[turn.speaker] / turn.rate * rate), dtype=np.int16)
    parts: list[npt.NDArray[np.int16]] = []
    for sentence in split_sentences(turn.text) or [turn.text]:
        chunks = [np.asarray(c.audio_int16_array, dtype=np.int16) for c in voice.synthesize(sentence, config)]
        pcm = trim_silence(np.concatenate(chunks)) if chunks else np.zeros(0, dtype=np.int16)
        if pcm.size:
            parts.extend((gap, pcm) if parts else (pcm,))
    joined = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
    return resample(joined, rate, RATE_HZ)


def mix_call(
    turns: Sequence[ScriptTurn], clips: Sequence[npt.NDArray[np.int16]], *, seed: str | None = None
) -> tuple[npt.NDArray[np.int16], list[Span]]:
    """The stereo recording (``(n, 2)`` int16, customer left, agent right) and each turn's span (ms); ``seed``
    draws the default pauses (see :func:`~voxdesk.benches.qa_scripts.build_timeline`)."""
    spans = build_timeline(turns, [len(c) * 1000 // RATE_HZ for c in clips], seed=seed)
    total_ms = max(s.end_ms for s in spans) + _TAIL_MS
    out = np.zeros((total_ms * RATE_HZ // 1000 + 1, 2), dtype=np.int32)
    for turn, clip, span in zip(turns, clips, spans, strict=True):
        col = 0 if turn.speaker == "customer" else 1
        at = span.start_ms * RATE_HZ // 1000
        out[at : at + len(clip), col] += clip
    return np.clip(out, -32768, 32767).astype(np.int16), spans


def _build_one(call: CallScript, out_dir: Path) -> BuiltCall:
    """Synthesise and write one call (runs in a worker process)."""
    clips = [_synthesize(t, mono=call.audio == "mono") for t in call.turns]
    stereo, spans = mix_call(call.turns, clips, seed=call.id)
    duration_ms = len(stereo) * 1000 // RATE_HZ
    if call.audio == "mono":
        mono = stereo.astype(np.int32).sum(axis=1) // 2
        clip = AudioClip(np.clip(mono, -32768, 32767).astype(np.int16), RATE_HZ, 1)
        name, fmt, channels = f"{call.id}.wav", "WAV", "mono"
    else:
        clip = AudioClip(stereo, RATE_HZ, 2)
        flac = call.audio == "flac"
        name, fmt, channels = f"{call.id}.{'flac' if flac else 'wav'}", "FLAC" if flac else "WAV", "stereo"
    write_audio(out_dir / name, clip, fmt)  # type: ignore[arg-type]
    labels = label_call(call, spans, duration_ms)
    label = {
        "call_id": call.id,
        "file": name,
        "duration_ms": duration_ms,
        "call_reason": call.reason,
        "expected": [lb.as_json() for lb in labels],
        "turns": [
            {"speaker": t.speaker, "start_ms": s.start_ms, "end_ms": s.end_ms}
            for t, s in zip(call.turns, spans, strict=True)
        ],
    }
    return BuiltCall(call.id, name, duration_ms, label, metadata_row(call, name, channels))  # type: ignore[arg-type]


def build_set(
    out_dir: Path,
    scripts_path: Path | None = None,
    *,
    limit: int | None = None,
    workers: int = 2,
    progress: Callable[[BuiltCall], None] | None = None,
) -> SetSummary:
    """Synthesise the scripts (the first ``limit`` calls when given) into ``out_dir`` with ``metadata.csv`` and
    ``labels.jsonl``; deterministic. ``progress`` is called once per finished call (in the caller's process).
    Raises :class:`core.errors.ConfigError` for a bad scripts file, :class:`core.errors.ModelMissingError` when
    Piper or its voice is missing."""
    import time

    started = time.perf_counter()
    calls = load_scripts(scripts_path)
    if limit is not None:
        calls = calls[:limit]
    out_dir.mkdir(parents=True, exist_ok=True)
    _load_voice()  # fail early, with the remedy, when the voice is missing
    built: dict[str, BuiltCall] = {}
    if workers <= 1 or len(calls) <= 1:
        for call in calls:
            built[call.id] = _build_one(call, out_dir)
            if progress is not None:
                progress(built[call.id])
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(_build_one, call, out_dir): call.id for call in calls}
            from concurrent.futures import as_completed

            for fut in as_completed(futures):
                result = fut.result()
                built[result.call_id] = result
                if progress is not None:
                    progress(result)
    ordered = tuple(built[c.id] for c in calls)
    with (out_dir / "metadata.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(METADATA_HEADER), lineterminator="\n")
        writer.writeheader()
        for b in ordered:
            writer.writerow(b.row)
    with (out_dir / "labels.jsonl").open("w", encoding="utf-8") as fh:
        for b in ordered:
            fh.write(json.dumps(b.label, ensure_ascii=False) + "\n")
    log.info("qa call set built", calls=len(ordered))
    return SetSummary(out_dir, ordered, time.perf_counter() - started)
