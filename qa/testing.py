"""Fakes of the QA stages for tests (no models)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from qa.models import SpeakerTurn

__all__ = ["ScriptedDiarizer"]


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
