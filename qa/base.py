"""The diarizer interface the QA pipeline depends on (implemented by :class:`qa.diarize.SenkoDiarizer`, faked by
:class:`qa.testing.ScriptedDiarizer`)."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import numpy.typing as npt

from qa.models import SpeakerTurn

__all__ = ["Diarizer"]


class Diarizer(Protocol):
    """Who spoke when in a mono recording. Blocking and CPU-bound: call from a worker thread or process."""

    def diarize(
        self,
        pcm16k: npt.NDArray[np.int16],
        *,
        num_speakers: int | None = None,
        max_speakers: int = 4,
    ) -> tuple[SpeakerTurn, ...]:
        """Speaker turns (ms from the start) of mono int16 audio at 16 kHz, labels ``spk0, spk1, …`` in order of
        first speech; ``num_speakers`` fixes the count, otherwise it is estimated (at most ``max_speakers``)."""
        ...
