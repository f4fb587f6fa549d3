"""The media sender thread of a worker: frames from the media clock thread → speech workers and recordings.

The pjsua2 media callbacks only copy a frame and call :meth:`MediaSender.frame` (a ``SimpleQueue.put`` of a
tuple). This thread does the rest: builds :mod:`core.media` messages and PUSHes them over ZeroMQ to the speech
worker chosen by :func:`core.media.worker_for_call`, and writes the stereo recording (customer left, agent/bot
right). It never calls pjsua2, so it needs no ``libRegisterThread``.

PUSH sends never block: when a speech worker is gone and its queue (``hwm`` messages) is full, chunks are
dropped and counted in :attr:`MediaSender.dropped_chunks`; the recording is unaffected.

Frame timing: :meth:`MediaSender.frame` stamps each frame with ``time.monotonic_ns()`` on the media clock thread;
the sender thread keeps, per streamed leg, the gaps between consecutive frames (a histogram in 0.1 ms steps), the
delay from the callback to the send, and the frames missing against the leg's duration. When a call ends, one
summary per leg is appended to :attr:`MediaSender.call_stats` (a bounded deque; ``voxdesk bench calls`` reads it
from the worker's stats file).
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import zmq

from core.errors import InvalidInputError, VoxdeskError
from core.logging import get_logger
from core.media import AudioChunk, Leg, StreamEnd, StreamStart, encode_media, worker_for_call
from telephony.amd import AmdDecision, AnsweringMachineDetector
from telephony.recorder import RecordingInfo, StereoWavRecorder, write_sidecar

log = get_logger(__name__)

LEFT = 0
"""Leg index of the customer (left channel; streamed to a speech worker)."""
RIGHT = 1
"""Leg index of the agent or bot (right channel)."""

_OPEN, _FRAME, _END, _STOP, _LEG, _WATCH = 0, 1, 2, 3, 4, 5
_MAX_SKEW_FRAMES = 25  # 500 ms: beyond this, the missing channel is written as silence
_GAP_STEP_NS = 100_000  # frame gap histogram resolution: 0.1 ms
_CALL_STATS_KEPT = 10_000


def _percentile(hist: Counter[int], q: float) -> float:
    """The ``q`` quantile (0-1) of a histogram of 0.1 ms steps, in ms (0.0 when empty)."""
    total = sum(hist.values())
    if not total:
        return 0.0
    rank, seen = q * (total - 1), 0
    for step in sorted(hist):
        seen += hist[step]
        if seen > rank:
            return step * _GAP_STEP_NS / 1e6
    return max(hist) * _GAP_STEP_NS / 1e6


@dataclass
class _LegTiming:
    """Arrival times of one streamed leg's frames at the media port callback (sender thread only)."""

    first_ns: int
    first_wall_ms: float
    """Wall-clock epoch time (ms) at which the leg's first frame reached the callback."""
    last_ns: int
    frames: int = 1
    gaps: Counter[int] = field(default_factory=Counter)
    delays: Counter[int] = field(default_factory=Counter)
    max_gap_ns: int = 0

    def add(self, t_ns: int, now_ns: int) -> None:
        gap = t_ns - self.last_ns
        self.last_ns = t_ns
        self.frames += 1
        self.gaps[gap // _GAP_STEP_NS] += 1
        self.delays[(now_ns - t_ns) // _GAP_STEP_NS] += 1
        self.max_gap_ns = max(self.max_gap_ns, gap)

    def summary(self, frame_ms: int) -> dict[str, Any]:
        duration_ms = (self.last_ns - self.first_ns) / 1e6
        expected = round(duration_ms / frame_ms) + 1
        return {
            "frames": self.frames,
            "duration_ms": round(duration_ms + frame_ms, 1),
            "missing_frames": max(0, expected - self.frames),
            "first_frame_wall_ms": round(self.first_wall_ms, 1),
            "gap_p50_ms": _percentile(self.gaps, 0.50),
            "gap_p99_ms": _percentile(self.gaps, 0.99),
            "gap_max_ms": round(self.max_gap_ns / 1e6, 2),
            "gaps_over_40ms": sum(n for step, n in self.gaps.items() if step * _GAP_STEP_NS > 40_000_000),
            "send_delay_p99_ms": _percentile(self.delays, 0.99),
        }


@dataclass(frozen=True)
class CallStream:
    """What the sender needs to know about a call whose media just started (built on the pjsua thread)."""

    call_id: str
    line: str
    lang: Literal["zh", "en", "auto"]
    started_at_ms: int
    """Wall-clock epoch time of the call's start (ms)."""
    dialog: bool = False
    """The customer talks to the bot (navigator/outbound lines): speech workers end its turns sooner."""


@dataclass
class _CallState:
    info: CallStream
    socket: int
    recorder: StereoWavRecorder | None
    names: dict[int, Leg] = field(default_factory=dict)
    """Streamed legs: leg index → leg name."""
    offsets: dict[int, int] = field(default_factory=dict)
    """Offset of each open leg's first frame from the call's start (ms)."""
    seq: dict[int, int] = field(default_factory=dict)
    active: list[bool] = field(default_factory=lambda: [False, False])
    pending: tuple[deque[bytes], deque[bytes]] = field(default_factory=lambda: (deque(), deque()))
    timing: dict[int, _LegTiming] = field(default_factory=dict)
    """Frame arrival timing of each streamed leg."""
    dropped: int = 0
    """Chunks of this call dropped because a speech worker's queue was full."""


Finish = Callable[[RecordingInfo | None], None]
"""Called on the sender thread once a call's streams are ended and its recording is closed."""


class MediaSender:
    """Owns the frame queue, the ZeroMQ PUSH sockets (one per speech endpoint) and the call recorders."""

    def __init__(
        self,
        speech_endpoints: Sequence[str],
        recording_dir: Path | None,
        recording_format: Literal["WAV", "FLAC"],
        sample_rate_hz: int,
        *,
        frame_ms: int = 20,
        hwm: int = 10_000,
    ) -> None:
        if not speech_endpoints:
            raise InvalidInputError("at least one speech endpoint is needed")
        self.speech_endpoints = list(speech_endpoints)
        self.recording_dir = recording_dir
        self.recording_format = recording_format
        self.sample_rate_hz = sample_rate_hz
        self.frame_ms = frame_ms
        self.hwm = hwm
        self.frames_in = 0
        """Frames taken from the queue (both legs)."""
        self.sent_chunks = 0
        self.dropped_chunks = 0
        self.call_stats: deque[dict[str, Any]] = deque(maxlen=_CALL_STATS_KEPT)
        """Per streamed leg of every ended call: frame timing summary (see the module docstring)."""
        self._silence = bytes(2 * sample_rate_hz * frame_ms // 1000)
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._calls: dict[int, _CallState] = {}
        self._watching: dict[int, tuple[AnsweringMachineDetector, Callable[[AmdDecision], None]]] = {}
        """Calls whose customer frames go through an answering-machine detector (sender thread)."""
        self._context: zmq.Context[zmq.Socket[bytes]] | None = None
        self._sockets: list[zmq.Socket[bytes]] = []
        self._thread: threading.Thread | None = None

    # --- producers (any thread) ------------------------------------------------------------------------------

    def open_call(self, key: int, info: CallStream) -> None:
        """Start the recording of call ``key`` (pjsua thread); legs are added with :meth:`open_leg`."""
        self._queue.put((_OPEN, key, info))

    def open_leg(self, key: int, leg: int, name: Leg | None, offset_ms: int) -> None:
        """Leg ``leg`` (``LEFT``/``RIGHT``) of call ``key`` now produces frames, its first one ``offset_ms`` (ms)
        after the call's start. ``name`` streams it to the speech worker under that leg name; ``None`` only
        records it. Until a leg is open its channel is recorded as silence."""
        self._queue.put((_LEG, key, leg, name, offset_ms))

    def frame(self, key: int, leg: int, payload: bytes) -> None:
        """Queue one frame (L16 bytes, 20 ms) of ``leg`` of call ``key``. Media clock thread: O(1), no I/O."""
        self._queue.put((_FRAME, key, leg, payload, time.monotonic_ns()))

    def watch(self, key: int, detector: AnsweringMachineDetector, on_decision: Callable[[AmdDecision], None]) -> None:
        """Feed the customer leg's frames of call ``key`` to ``detector`` until it is done; ``on_decision`` gets each
        decision on the sender thread (pjsua thread, at the answer of an outbound call)."""
        self._queue.put((_WATCH, key, detector, on_decision))

    def end_call(self, key: int, reason: str, finish: Finish) -> None:
        """End the streams and close the recording of call ``key``; then ``finish`` runs on the sender thread."""
        self._queue.put((_END, key, reason, finish))

    # --- lifecycle (owner thread) ----------------------------------------------------------------------------

    def start(self) -> None:
        """Connect the PUSH sockets and start the sender thread."""
        if self._thread is not None:
            return
        self._context = zmq.Context()
        for endpoint in self.speech_endpoints:
            sock = self._context.socket(zmq.PUSH)
            sock.setsockopt(zmq.SNDHWM, self.hwm)
            sock.setsockopt(zmq.LINGER, 1000)
            sock.connect(endpoint)
            self._sockets.append(sock)
        self._thread = threading.Thread(target=self._run, name="voxdesk-media-sender", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Process what is queued, end every open call (reason ``shutdown``), close sockets; join (≤ s)."""
        if self._thread is None:
            return
        self._queue.put((_STOP,))
        self._thread.join(timeout=timeout_s)
        self._thread = None
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()
        if self._context is not None:
            self._context.term()
            self._context = None

    # --- sender thread ---------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item[0] == _FRAME:
                    self._on_frame(item[1], item[2], item[3], item[4])
                elif item[0] == _OPEN:
                    self._on_open(item[1], item[2])
                elif item[0] == _LEG:
                    self._on_leg(item[1], item[2], item[3], item[4])
                elif item[0] == _WATCH:
                    self._watching[item[1]] = (item[2], item[3])
                elif item[0] == _END:
                    self._on_end(item[1], item[2], item[3])
                else:
                    for key in list(self._calls):
                        self._on_end(key, "shutdown", None)
                    return
            except Exception:  # task root of the sender thread: log and keep serving other calls
                log.exception("media sender failed on one item", item_kind=item[0])

    def _send(self, state: _CallState, frames: list[bytes]) -> None:
        try:
            self._sockets[state.socket].send_multipart(frames, flags=zmq.NOBLOCK)
            self.sent_chunks += 1
        except zmq.Again:
            self.dropped_chunks += 1
            state.dropped += 1

    def _on_open(self, key: int, info: CallStream) -> None:
        recorder = None
        if self.recording_dir is not None:
            day = self.recording_dir / datetime.fromtimestamp(info.started_at_ms / 1000, UTC).strftime("%Y-%m-%d")
            recorder = StereoWavRecorder(
                day / f"{info.call_id}.wav", self.sample_rate_hz, final_format=self.recording_format
            )
        self._calls[key] = _CallState(info, worker_for_call(info.call_id, len(self._sockets)), recorder)

    def _on_leg(self, key: int, leg: int, name: Leg | None, offset_ms: int) -> None:
        state = self._calls.get(key)
        if state is None or (state.active[leg] and (name is None or state.names.get(leg) == name)):
            return
        if not state.active[leg]:
            self._write(state)  # what the other leg sent so far is recorded against silence
            state.active[leg] = True
        if name is not None:  # a new stream; on a recorded-only leg (the bot's, before a transfer) it starts now
            info = state.info
            old = state.names.get(leg)
            if old is not None:
                self._send(state, encode_media(StreamEnd(info.call_id, old, "transfer")))
            state.names[leg] = name
            state.offsets[leg] = offset_ms
            state.seq[leg] = 0
            state.timing.pop(leg, None)
            start = StreamStart(
                info.call_id, name, "l16", self.sample_rate_hz, info.lang, info.line, None, info.started_at_ms,
                dialog=info.dialog and name == "customer",
            )  # fmt: skip
            self._send(state, encode_media(start))

    def _on_frame(self, key: int, leg: int, payload: bytes, t_ns: int) -> None:
        self.frames_in += 1
        if leg == LEFT and key in self._watching:
            self._detect(key, payload)
        state = self._calls.get(key)
        if state is None or not state.active[leg]:
            return
        if not payload:
            payload = self._silence
        name = state.names.get(leg)
        if name is not None:
            now_ns = time.monotonic_ns()
            timing = state.timing.get(leg)
            if timing is None:
                wall_ms = time.time_ns() / 1e6 - (now_ns - t_ns) / 1e6
                state.timing[leg] = _LegTiming(t_ns, wall_ms, t_ns)
            else:
                timing.add(t_ns, now_ns)
            seq = state.seq.get(leg, 0)
            state.seq[leg] = seq + 1
            chunk = AudioChunk(state.info.call_id, name, seq, state.offsets[leg] + seq * self.frame_ms, payload)
            self._send(state, encode_media(chunk))
        if state.recorder is not None:
            state.pending[leg].append(payload)
            self._write(state)

    def _detect(self, key: int, payload: bytes) -> None:
        detector, on_decision = self._watching[key]
        decision = detector.feed(payload or self._silence)
        if detector.done:
            del self._watching[key]
        if decision is not None:
            on_decision(decision)

    def _write(self, state: _CallState, *, final: bool = False) -> None:
        """Record pending frames: paired while both legs are open; a leg alone is paired with silence."""
        recorder = state.recorder
        if recorder is None:
            return
        left, right = state.pending
        both = state.active[0] and state.active[1]
        while left and right:
            recorder.write(left.popleft(), right.popleft())
        while left and (not both or final or len(left) > _MAX_SKEW_FRAMES):
            recorder.write(left.popleft(), None)
        while right and (not both or final or len(right) > _MAX_SKEW_FRAMES):
            recorder.write(self._silence, right.popleft())

    def _keep_stats(self, state: _CallState) -> None:
        for leg, name in state.names.items():
            timing = state.timing.get(leg)
            summary: dict[str, Any] = {"call_id": state.info.call_id, "leg": name, "offset_ms": state.offsets[leg]}
            summary.update(timing.summary(self.frame_ms) if timing is not None else {"frames": 0})
            summary.update(sent_frames=state.seq.get(leg, 0), dropped_chunks=state.dropped)
            self.call_stats.append(summary)

    def _on_end(self, key: int, reason: str, finish: Finish | None) -> None:
        self._watching.pop(key, None)
        state = self._calls.pop(key, None)
        info: RecordingInfo | None = None
        if state is not None:
            for name in state.names.values():
                self._send(state, encode_media(StreamEnd(state.info.call_id, name, reason)))
            self._keep_stats(state)
            if state.recorder is not None:
                self._write(state, final=True)
                try:
                    info = state.recorder.close()
                    write_sidecar(info, state.info.call_id)
                except VoxdeskError:
                    log.exception("recording could not be closed", call_id=state.info.call_id)
        if finish is not None:
            finish(info)
