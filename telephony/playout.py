"""Bot audio of one call leg: segments queued by the play channel, pulled 20 ms at a time by the media clock.

A navigator session sends each utterance as a *segment* (:class:`core.media.PlayAudio` chunks with one segment
number, the last chunk flagged ``last``). :class:`Playout` keeps the segments of one call in order and hands the
conference bridge one frame per tick (:meth:`Playout.next_frame`, on the media clock thread):

* a segment starts when the one before it has played out; its first frame emits ``BotAudio(started)``, its end
  ``completed``; a segment still waiting for chunks (synthesis in progress) plays silence meanwhile and goes on
  when they arrive (counted in :attr:`Playout.underruns`);
* ``pause`` holds the interruptible segment playing now (silence from the next tick: a possible barge-in) and
  ``resume`` carries on from the frame where it stopped; neither touches a non-interruptible segment (a recording
  disclosure always plays to its end);
* ``stop`` drops every interruptible segment, playing or queued (``stopped``); chunks of a dropped segment that
  arrive later are discarded;
* :meth:`Playout.close` drops everything (transfer, hangup).

Threads: :meth:`add` and :meth:`control` run on the play receiver thread, :meth:`next_frame` on the media clock
thread, :meth:`drained` and :meth:`close` on the pjsua thread; one lock guards the state, and ``notify`` is
called outside it (it must be thread-safe and quick: the worker's ``emit``).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from core.events import BotAudio
from core.ids import CallId

AudioState = Literal["started", "paused", "resumed", "completed", "stopped"]
_FORGET_AFTER = 256  # closed segment numbers remembered (late chunks of them are dropped)


@dataclass
class _Segment:
    number: int
    interruptible: bool
    frames: deque[bytes] = field(default_factory=deque)
    complete: bool = False
    """Its ``last`` chunk arrived."""
    played: int = 0
    """Frames played so far."""


class Playout:
    """The bot audio queue of call ``call_id``; frames are ``frame_bytes`` long (L16 at the bridge rate)."""

    def __init__(
        self,
        call_id: str,
        frame_bytes: int,
        notify: Callable[[BotAudio], None],
        *,
        frame_ms: int = 20,
        wall_ms: Callable[[], float] = lambda: time.time() * 1000.0,
    ) -> None:
        self.call_id = call_id
        self.frame_bytes = frame_bytes
        self.frame_ms = frame_ms
        self._notify = notify
        self._wall_ms = wall_ms
        self._lock = threading.Lock()
        self._segments: deque[_Segment] = deque()
        self._closed: deque[int] = deque(maxlen=_FORGET_AFTER)
        self._paused: int | None = None
        """Number of the paused segment, if any."""
        self.underruns = 0
        """Ticks on which a started segment had no frame yet (synthesis slower than playback)."""
        self.frames_played = 0

    # --- play receiver thread -----------------------------------------------------------------------------------

    def add(self, segment: int, payload: bytes, *, interruptible: bool = True, last: bool = False) -> None:
        """Queue ``payload`` (whole frames; a short tail is padded with silence) for ``segment``."""
        frames = [payload[i : i + self.frame_bytes] for i in range(0, len(payload), self.frame_bytes)]
        if frames and len(frames[-1]) < self.frame_bytes:
            frames[-1] += bytes(self.frame_bytes - len(frames[-1]))
        with self._lock:
            if segment in self._closed:
                return
            seg = next((s for s in self._segments if s.number == segment), None)
            if seg is None:
                seg = _Segment(segment, interruptible)
                self._segments.append(seg)
            seg.frames.extend(frames)
            seg.complete = seg.complete or last

    def control(self, action: Literal["pause", "resume", "stop"]) -> None:
        """Pause, resume or stop the interruptible audio (see the module docstring)."""
        events: list[tuple[int, AudioState, int]] = []
        with self._lock:
            current = self._segments[0] if self._segments else None
            if action == "pause":
                if current is not None and current.interruptible and self._paused is None:
                    self._paused = current.number
                    events.append((current.number, "paused", current.played))
            elif action == "resume":
                if self._paused is not None:
                    seg = next((s for s in self._segments if s.number == self._paused), None)
                    self._paused = None
                    if seg is not None:
                        events.append((seg.number, "resumed", seg.played))
            else:
                self._paused = None
                kept: deque[_Segment] = deque()
                for seg in self._segments:
                    if seg.interruptible:
                        self._closed.append(seg.number)
                        events.append((seg.number, "stopped", seg.played))
                    else:
                        kept.append(seg)
                self._segments = kept
        self._emit(events)

    # --- media clock thread -------------------------------------------------------------------------------------

    def next_frame(self) -> bytes:
        """The frame to play on this tick (``b""``: nothing to play)."""
        events: list[tuple[int, AudioState, int]] = []
        data = b""
        with self._lock:
            while self._segments:
                seg = self._segments[0]
                if seg.number == self._paused:
                    break
                if seg.frames:
                    data = seg.frames.popleft()
                    if seg.played == 0:
                        events.append((seg.number, "started", 0))
                    seg.played += 1
                    self.frames_played += 1
                    break
                if not seg.complete:
                    if seg.played:
                        self.underruns += 1
                    break
                self._segments.popleft()  # played out: the next segment starts on this same tick
                self._closed.append(seg.number)
                events.append((seg.number, "completed", seg.played))
        if events:
            self._emit(events)
        return data

    # --- pjsua thread -------------------------------------------------------------------------------------------

    def drained(self) -> bool:
        """Whether nothing is queued or playing (a deferred hangup or transfer may go ahead)."""
        with self._lock:
            return not self._segments

    def close(self) -> None:
        """Drop every segment, interruptible or not (``stopped`` for each); later chunks are discarded."""
        with self._lock:
            dropped = list(self._segments)
            self._segments.clear()
            self._paused = None
            self._closed.extend(s.number for s in dropped)
        self._emit([(s.number, "stopped", s.played) for s in dropped])

    def _emit(self, events: list[tuple[int, AudioState, int]]) -> None:
        if not events:
            return
        at = self._wall_ms()
        for number, state, played in events:
            self._notify(
                BotAudio(
                    call_id=CallId(self.call_id), segment=number, state=state, at_ms=at,
                    played_ms=played * self.frame_ms,
                )
            )  # fmt: skip


__all__ = ["AudioState", "Playout"]
