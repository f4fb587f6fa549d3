"""The QA pipeline for one recording: load → tell the parties apart → transcribe → rules → scorecard.

:meth:`QaPipeline.inspect_file` is the unit of work of a batch (a local process pool or Celery, see
:mod:`qa.tasks`). Stereo recordings carry one party per channel (customer left, agent right); mono recordings —
or a stereo file whose two channels carry the same signal — are diarized, and the speaker who says the bank's
script becomes the agent (:mod:`qa.roles`). Blocking and CPU-bound (seconds per minute of audio): run it in a
worker process, never on an event loop.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final, Literal, Protocol

import numpy as np
import numpy.typing as npt

from asr.base import SAMPLE_RATE_HZ, LangChoice
from core.audio import AudioClip, read_audio_with_digest, resample
from core.errors import AudioFormatError
from qa.base import Diarizer
from qa.inspector import Inspector
from qa.models import SEVERITIES, CallTranscript, Channel, Inspection, RecordingMeta, SpeakerTurn, Turn
from qa.roles import assign_roles
from qa.rules_base import CallHistory
from qa.scorecard import Scorecard, score_call

__all__ = ["CallTranscriberLike", "QaPipeline", "load_parties"]

_FLAG_SEVERITY: Final = SEVERITIES.index("major")
_SAME_SIGNAL: Final = 0.98
"""Correlation above which two channels are taken as one signal (a mono call saved as stereo)."""
_MIN_MS: Final = 200


class CallTranscriberLike(Protocol):
    """What the pipeline needs of :class:`qa.transcribe.CallTranscriber`."""

    def transcribe_channels(
        self, channels: dict[Channel, npt.NDArray[np.int16]], *, lang: LangChoice = "auto"
    ) -> CallTranscript: ...

    def transcribe_diarized(
        self,
        pcm16k: npt.NDArray[np.int16],
        speaker_turns: Sequence[SpeakerTurn],
        roles: Mapping[str, Channel],
        *,
        lang: LangChoice = "auto",
    ) -> CallTranscript: ...


def _to_16k(samples: npt.NDArray[np.int16], rate: int) -> npt.NDArray[np.int16]:
    mono = np.ascontiguousarray(samples)
    return mono if rate == SAMPLE_RATE_HZ else resample(mono, rate, SAMPLE_RATE_HZ)


def _same_signal(a: npt.NDArray[np.int16], b: npt.NDArray[np.int16]) -> bool:
    x, y = a.astype(np.float64), b.astype(np.float64)
    if not x.any() or not y.any():
        return False
    return float(np.corrcoef(x, y)[0, 1]) > _SAME_SIGNAL


def load_parties(clip: AudioClip, *, force_mono: bool = False) -> dict[Channel, npt.NDArray[np.int16]] | None:
    """The two parties of a stereo recording at 16 kHz (customer = channel 0, agent = channel 1), or ``None``
    when the recording must be diarized (mono, forced, or both channels the same signal)."""
    if clip.channels < 2 or force_mono:
        return None
    left, right = clip.samples[:, 0], clip.samples[:, 1]
    if _same_signal(left, right):
        return None
    return {"customer": _to_16k(left, clip.sample_rate), "agent": _to_16k(right, clip.sample_rate)}


def _mono(clip: AudioClip) -> npt.NDArray[np.int16]:
    if clip.channels == 1:
        return _to_16k(clip.samples, clip.sample_rate)
    mixed = clip.samples.astype(np.int32).mean(axis=1)
    return _to_16k(np.clip(mixed, -32768, 32767).astype(np.int16), clip.sample_rate)


class QaPipeline:
    """Inspects recordings; built once per worker process (models load on first use) and reused."""

    def __init__(
        self,
        *,
        transcriber: CallTranscriberLike,
        inspector: Inspector,
        scorecards: Sequence[Scorecard],
        default_scorecard: str,
        diarizer: Diarizer | None = None,
        lang: LangChoice = "auto",
        speakers: int | None = 2,
        max_file_bytes: int = 512 * 1024 * 1024,
        rules_version: str = "",
    ) -> None:
        self._transcriber = transcriber
        self._inspector = inspector
        self._cards = {c.id: c for c in scorecards}
        self._default_card = default_scorecard
        self._diarizer = diarizer
        self._lang: LangChoice = lang
        self._speakers = speakers
        self._max_bytes = max_file_bytes
        self.rules_version = rules_version

    def scorecard_for(self, meta: RecordingMeta) -> Scorecard:
        """The form a call is scored on: ``outbound_campaign`` for outbound calls when defined, else the default."""
        if meta.direction == "outbound" and "outbound_campaign" in self._cards:
            return self._cards["outbound_campaign"]
        return self._cards[self._default_card]

    def inspect_file(self, path: Path, meta: RecordingMeta, history: CallHistory | None = None) -> Inspection:
        """Inspect one recording. Raises :class:`AudioFormatError` (corrupt, empty, unsupported),
        :class:`core.errors.NotFoundError` (missing file), :class:`core.errors.PayloadTooLargeError`, or
        :class:`core.errors.ModelMissingError` (diarization needed but not installed)."""
        transcript, sha, timings = self.transcribe_file(path, meta)
        return self.inspect_transcript(transcript, meta, history, path=path, sha256=sha, timings=timings)

    def transcribe_file(self, path: Path, meta: RecordingMeta) -> tuple[CallTranscript, str, dict[str, float]]:
        """The first half of :meth:`inspect_file`: ``(transcript, SHA-256 of the file, timings in s)``."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        clip, sha = read_audio_with_digest(path, max_bytes=self._max_bytes)
        if clip.duration_ms < _MIN_MS:
            raise AudioFormatError("Audio is too short to inspect.")
        parties = load_parties(clip, force_mono=meta.extra.get("channels") == "mono")
        timings["load"] = time.perf_counter() - t0
        if parties is not None:
            t1 = time.perf_counter()
            transcript = self._transcriber.transcribe_channels(parties, lang=self._lang)
            timings["transcribe"] = time.perf_counter() - t1
        else:
            transcript = self._diarized(_mono(clip), meta, timings)
        return transcript, sha, timings

    def inspect_transcript(
        self,
        transcript: CallTranscript,
        meta: RecordingMeta,
        history: CallHistory | None = None,
        *,
        path: Path,
        sha256: str,
        timings: dict[str, float] | None = None,
    ) -> Inspection:
        """The second half of :meth:`inspect_file`: rules and scorecard on a transcript (milliseconds of CPU)."""
        timings = dict(timings or {})
        t2 = time.perf_counter()
        findings = self._inspector.inspect(transcript, meta, history)
        card = self.scorecard_for(meta)
        score = score_call(card, findings)
        flagged = not score.passed or any(SEVERITIES.index(f.severity) >= _FLAG_SEVERITY for f in findings)
        timings["rules"] = time.perf_counter() - t2
        return Inspection(meta, str(path), sha256, transcript, findings, score, flagged, timings, self.rules_version)

    def _diarized(self, pcm: npt.NDArray[np.int16], meta: RecordingMeta, timings: dict[str, float]) -> CallTranscript:
        t0 = time.perf_counter()
        if self._diarizer is None:
            raise AudioFormatError("A mono recording needs diarization, which is not configured.")
        turns = self._diarizer.diarize(pcm, num_speakers=self._speakers)
        timings["diarize"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        duration_ms = len(pcm) * 1000 // SAMPLE_RATE_HZ
        labels = list(dict.fromkeys(t.speaker for t in turns))
        if len(labels) <= 1:
            only = self._transcriber.transcribe_diarized(pcm, turns, dict.fromkeys(labels, "agent"), lang=self._lang)
            timings["transcribe"] = time.perf_counter() - t1
            return CallTranscript(only.turns, duration_ms, only.lang, "mono")
        per_speaker: dict[str, CallTranscript] = {}
        lang: LangChoice = self._lang
        for spk in labels:
            mine = [t for t in turns if t.speaker == spk]
            part = self._transcriber.transcribe_diarized(pcm, mine, {spk: "agent"}, lang=lang)
            per_speaker[spk] = part
            if lang == "auto" and part.turns:
                lang = part.lang  # one language per call
        roles = assign_roles(
            {s: p.turns for s, p in per_speaker.items()}, config=self._inspector.config, direction=meta.direction
        )
        merged = sorted(
            (_relabel(t, roles[s]) for s, p in per_speaker.items() for t in p.turns),
            key=lambda t: (t.start_ms, t.end_ms),
        )
        timings["transcribe"] = time.perf_counter() - t1
        call_lang: Literal["zh", "en"] = _majority_lang(merged) or ("zh" if lang == "zh" else "en")
        return CallTranscript(tuple(merged), duration_ms, call_lang, "diarized")


def _relabel(turn: Turn, channel: Channel) -> Turn:
    return Turn(channel, turn.text, turn.start_ms, turn.end_ms, turn.lang, turn.words, turn.confidence)


def _majority_lang(turns: Sequence[Turn]) -> Literal["zh", "en"] | None:
    totals: dict[Literal["zh", "en"], int] = {}
    for t in turns:
        totals[t.lang] = totals.get(t.lang, 0) + t.duration_ms
    return max(totals.items(), key=lambda kv: kv[1])[0] if totals else None
