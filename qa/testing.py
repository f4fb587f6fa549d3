"""Fakes of the QA stages for tests (no models)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from asr.base import LangChoice
from qa.models import CallTranscript, Channel, SpeakerTurn

__all__ = ["ScriptedDiarizer", "ScriptedTranscriber"]


class ScriptedDiarizer:
    """A :class:`qa.base.Diarizer` that returns the given turns, clipped to the audio length; records its calls
    (``calls``: list of ``(n_samples, num_speakers)``)."""

    def __init__(self, turns: tuple[SpeakerTurn, ...] | list[SpeakerTurn] = ()) -> None:
        self.turns = tuple(turns)
        self.calls: list[tuple[int, int | None]] = []

    def diarize(
        self,
        pcm16k: npt.NDArray[np.int16],
        *,
        num_speakers: int | None = None,
        max_speakers: int = 4,
    ) -> tuple[SpeakerTurn, ...]:
        """The scripted turns that start before the end of ``pcm16k`` (16 kHz), ends clipped to it."""
        self.calls.append((len(pcm16k), num_speakers))
        end_ms = len(pcm16k) * 1000 // 16_000
        return tuple(
            SpeakerTurn(t.speaker, t.start_ms, min(t.end_ms, end_ms)) for t in self.turns if t.start_ms < end_ms
        )


class ScriptedTranscriber:
    """A :class:`qa.pipeline.CallTranscriberLike` that returns the given transcript from both methods; records its
    calls (``calls``: list of ``(method, n_samples, lang)``, ``n_samples`` of the longest channel)."""

    def __init__(self, transcript: CallTranscript) -> None:
        self.transcript = transcript
        self.calls: list[tuple[str, int, LangChoice]] = []

    def transcribe_channels(
        self, channels: dict[Channel, npt.NDArray[np.int16]], *, lang: LangChoice = "auto"
    ) -> CallTranscript:
        """The scripted transcript, whatever the audio."""
        self.calls.append(("channels", max((len(a) for a in channels.values()), default=0), lang))
        return self.transcript

    def transcribe_diarized(
        self,
        pcm16k: npt.NDArray[np.int16],
        speaker_turns: Sequence[SpeakerTurn],
        roles: Mapping[str, Channel],
        *,
        lang: LangChoice = "auto",
    ) -> CallTranscript:
        """The scripted transcript, whatever the audio and turns."""
        self.calls.append(("diarized", len(pcm16k), lang))
        return self.transcript
