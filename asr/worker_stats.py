"""Counters and timings of one speech worker (:class:`asr.worker.SpeechWorker`), for metrics and benchmarks."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DutyCycle", "SpeechWorkerStats", "keep_timing"]

_TIMINGS_KEPT = 10_000


def keep_timing(values: list[float], value: float) -> None:
    """Append ``value`` (ms, rounded to 0.1) to a bounded timing list."""
    values.append(round(value, 1))
    if len(values) > _TIMINGS_KEPT:
        del values[: len(values) - _TIMINGS_KEPT]


@dataclass
class SpeechWorkerStats:
    """Counters of one worker (read from the event loop; written by both threads, each its own fields)."""

    messages: int = 0
    malformed: int = 0
    orphan_chunks: int = 0
    """Audio for a stream that was never started (dropped)."""
    streams_started: int = 0
    streams_expired: int = 0
    """Streams ended because no message came for ``stream_idle_timeout_s`` (a media worker died)."""
    finals: int = 0
    partials: int = 0
    partials_skipped: int = 0
    early_finals: int = 0
    """Speculative final passes run (``streaming.early_final_ms`` of silence into an utterance)."""
    early_finals_used: int = 0
    """Finals that reused a speculative pass instead of decoding (they came out one decode earlier)."""
    early_finals_wasted: int = 0
    """Speculative passes not used (speech resumed): the extra recognition time speculation cost."""
    errors: int = 0
    """Failures inside the inference thread (recognition, bad audio), logged and survived."""
    publish_errors: int = 0
    max_lag_ms: int = 0
    """The largest lag (audio received but not yet processed, ms) of any stream, seen as audio arrived."""
    final_wait_ms: list[float] = field(default_factory=list)
    """Per final (the latest ``_TIMINGS_KEPT``): wall time from its endpoint being detected to its decode starting."""
    final_decode_ms: list[float] = field(default_factory=list)
    """Per final decoded (not those that reused a speculative pass): wall time of its recognition pass."""
    early_final_decode_ms: list[float] = field(default_factory=list)
    """Per speculative final pass: wall time of the recognition pass."""
    partial_decode_ms: list[float] = field(default_factory=list)
    """Per partial pass run: wall time of the recognition pass."""


class DutyCycle:
    """The share of recent wall time spent in some activity (here: partial recognition passes).

    :meth:`add` records one pass (monotonic start and end, s); :meth:`share` is the busy time of the last
    ``window_s`` seconds over ``window_s`` (above 1 when several threads were busy at once). Pure, not thread-safe
    (the caller locks); times are passed in, so tests need no clock.
    """

    def __init__(self, window_s: float = 2.0) -> None:
        self.window_s = window_s
        self._spans: list[tuple[float, float]] = []

    def add(self, start_s: float, end_s: float) -> None:
        self._spans.append((start_s, end_s))

    def share(self, now_s: float) -> float:
        """Busy time within ``[now_s - window_s, now_s]`` divided by ``window_s`` (≥ 0)."""
        since = now_s - self.window_s
        self._spans = [(a, b) for a, b in self._spans if b > since]
        busy = sum(min(b, now_s) - max(a, since) for a, b in self._spans)
        return max(0.0, busy / self.window_s)
