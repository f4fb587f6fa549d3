"""Helpers of :mod:`asr.engine`: which streams have a pass due, and the wake-up signal of the inference threads."""

from __future__ import annotations

import threading

from asr.media_stream import MediaStream
from asr.streaming import StreamingTranscriber

__all__ = ["Signal", "early_counts", "early_final_ready", "partial_ready"]


def partial_ready(stream: MediaStream) -> bool:
    """Whether a live stream has a partial pass due."""
    return stream.transcriber is not None and not stream.ended and stream.transcriber.partial_due


def early_final_ready(stream: MediaStream) -> bool:
    """Whether a live stream has a speculative final due."""
    return stream.transcriber is not None and not stream.ended and stream.transcriber.early_final_due


def early_counts(transcriber: StreamingTranscriber) -> tuple[int, int]:
    """A stream's speculative finals used and wasted so far (changed only by the thread holding the stream)."""
    return transcriber.stats.early_finals_used, transcriber.stats.early_finals_wasted


class Signal:
    """A generation counter with a condition: the intake thread bumps it, idle inference threads wait for a bump
    they have not seen (no wake-up is lost between a check and a wait)."""

    def __init__(self) -> None:
        self.generation = 0
        self._cond = threading.Condition()

    def bump(self) -> None:
        with self._cond:
            self.generation += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout_s: float) -> int:
        """Wait until the generation differs from ``seen`` (at most ``timeout_s``); returns the current one."""
        with self._cond:
            if self.generation == seen:
                self._cond.wait(timeout_s)
            return self.generation
