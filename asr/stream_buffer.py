"""What a :class:`asr.streaming.StreamingTranscriber` keeps: its 16 kHz PCM16 audio, the finals cut from it, and
the latest speculative final.

Not thread-safe on their own: the transcriber uses them under its lock.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from asr.base import Transcription

__all__ = ["EMPTY_PCM", "AudioBounds", "AudioBuffer", "FinalSpeculation", "PendingFinal"]

EMPTY_PCM = np.zeros(0, dtype=np.int16)
"""No samples (never written to)."""

AudioBounds = tuple[int, int, int]
"""``(audio_start, audio_end, samples)`` of an utterance's audio: sample offsets from the stream's first sample and
the number of samples cut (what makes a speculative final match a real one)."""


@dataclass(frozen=True)
class PendingFinal:
    """An endpointed utterance waiting to be recognised."""

    audio: npt.NDArray[np.int16]
    start_ms: int
    end_ms: int
    """Call times (ms) of the first speech frame and the end of the last one."""
    detected_ms: int
    """Call time at which the endpoint was decided (for the lag)."""
    bounds: AudioBounds


class FinalSpeculation:
    """The latest speculative final of a stream: the bounds it decoded and, once done, its result (``None`` while
    it runs, or when it failed). At most one is kept: one is superseded by the next, used or discarded by a final."""

    def __init__(self) -> None:
        self.bounds: AudioBounds | None = None
        self.result: Transcription | None = None

    def covers(self, audio_start: int, audio_end: int) -> bool:
        """Whether it was run on audio ``[audio_start, audio_end)`` (samples)."""
        return self.bounds is not None and self.bounds[:2] == (audio_start, audio_end)

    def begin(self, bounds: AudioBounds) -> bool:
        """A new speculation on ``bounds`` starts; whether it supersedes one never used (wasted)."""
        superseded = self.bounds is not None
        self.bounds, self.result = bounds, None
        return superseded

    def finish(self, bounds: AudioBounds, result: Transcription) -> None:
        """The pass on ``bounds`` is done: keep its result, unless a newer speculation or a final replaced it."""
        if self.bounds == bounds:
            self.result = result

    def take(self, bounds: AudioBounds) -> tuple[Transcription | None, bool]:
        """For a final with ``bounds``: the result to use instead of decoding (when it matches), and whether a
        speculation of that utterance was discarded unused (wasted). One of a later utterance is kept."""
        spec, result = self.bounds, self.result
        if spec is None or spec[0] > bounds[0]:
            return None, False
        self.bounds = self.result = None
        if spec == bounds and result is not None:
            return result, False
        return None, True


class AudioBuffer:
    """Samples of one stream from index :attr:`start` on (sample offsets from the stream's first sample), appended
    in chunks and joined lazily."""

    def __init__(self) -> None:
        self.start = 0
        self._chunks: list[npt.NDArray[np.int16]] = []
        self.end = 0

    def append(self, pcm: npt.NDArray[np.int16]) -> None:
        """Add samples at :attr:`end`."""
        if len(pcm):
            self._chunks.append(pcm)
            self.end += len(pcm)

    def _joined(self) -> npt.NDArray[np.int16]:
        if len(self._chunks) != 1:
            self._chunks = [np.concatenate(self._chunks) if self._chunks else EMPTY_PCM]
        return self._chunks[0]

    def cut(self, begin: int, end: int) -> npt.NDArray[np.int16]:
        """A copy of samples ``[begin, end)`` (clipped to what is held)."""
        data = self._joined()
        lo, hi = max(begin, self.start) - self.start, min(end, self.end) - self.start
        return data[lo:hi].copy() if hi > lo else EMPTY_PCM

    def trim(self, keep_from: int) -> None:
        """Forget samples before ``keep_from``."""
        if keep_from <= self.start:
            return
        data = self._joined()
        drop = min(keep_from, self.end) - self.start
        self._chunks = [data[drop:]]
        self.start += drop
