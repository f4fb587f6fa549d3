"""The bot's voice on one call: numbered segments of speech streamed to the media worker, and what became of them.

:class:`CallPlayback` queues *segments* (one per utterance) and call commands in order, and a task streams them:
each segment's chunks come from :meth:`NavigatorSpeaker.chunks <agent.navigator.speaker.NavigatorSpeaker.chunks>`
and go out as :class:`~core.media.PlayAudio` the moment they are ready (``BotSaid`` is published with the first
one), then an empty ``last`` chunk closes the segment; a command (hangup, transfer) goes out only after the audio
queued before it, so the media worker plays that audio first. ``BotAudio`` from the media worker says when a
segment ended (``completed``/``stopped``); a segment that never sent a chunk (nothing could be spoken, or it was
stopped first) ends here.

Barge-in controls: :meth:`pause` sends ``pause`` and holds back segments that have not begun (so a prompt still
being synthesised does not start under the caller's voice), :meth:`resume` releases them, :meth:`stop` drops every
interruptible segment here and at the media worker. Event-loop thread only.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agent.navigator.play_client import PlaySink
from agent.navigator.runtime import SessionStats, TurnTiming
from agent.navigator.speaker import NavigatorSpeaker
from core.bus.base import stop_task
from core.clock import Clock
from core.events import BotAudio, BotSaid, Event, Lang
from core.ids import CallId
from core.logging import get_logger
from core.media import PlayAction, PlayAudio, PlayControl, PlayMessage

__all__ = ["CallPlayback", "Segment"]

log = get_logger(__name__)


@dataclass(eq=False)
class Segment:
    """One utterance of the bot (``number`` is its segment number on the play channel)."""

    number: int
    text: str
    interruptible: bool
    prompt_key: str | None
    fixed: bool
    """Cacheable text (a keyed prompt, an approved script, a built-in prompt)."""
    audio_key: str | None
    """Key of the pre-recorded fallback."""
    turn: TurnTiming | None = None
    """The caller turn this answers (its first chunk is timed)."""
    sent_any: bool = False
    sent_all: bool = False
    cancelled: bool = False
    audio_ms: int = 0
    """Audio sent so far, ms."""
    played_ms: int = 0
    """Audio played so far (last ``BotAudio``), ms."""


class CallPlayback:
    """Segments and commands of one call (see the module docstring).

    ``on_change`` is called (event loop) when a segment ends here or has been sent whole (its length is then
    known); ``publish`` puts ``BotSaid`` on the bus and must not raise.
    """

    def __init__(
        self,
        call_id: CallId,
        *,
        lang: Lang,
        speaker: NavigatorSpeaker,
        sink: PlaySink,
        publish: Callable[[Event], Awaitable[None]],
        clock: Clock,
        stats: SessionStats,
        on_change: Callable[[], None],
        media_worker: int = 0,
        rate_hz: int = 8000,
    ) -> None:
        self.call_id = call_id
        self.lang: Lang = lang
        self.media_worker = media_worker
        self.rate_hz = rate_hz
        self._speaker, self._sink, self._publish, self._clock = speaker, sink, publish, clock
        self._stats = stats
        self._on_change = on_change
        self._segments: dict[int, Segment] = {}
        """Segments not yet ended, oldest (= playing first) first."""
        self._next = 1
        self._outbox: deque[Segment | PlayControl] = deque()
        self._ready = asyncio.Event()
        self._released = asyncio.Event()
        """Set unless a barge-in pause holds back segments not yet begun."""
        self._released.set()
        self.paused = False
        """A barge-in ``pause`` was sent and neither ``resume`` nor ``stop`` since."""
        self._task: asyncio.Task[None] | None = None

    # --- state --------------------------------------------------------------------------------------------------

    @property
    def last_number(self) -> int:
        """The number of the last segment queued (0: none yet)."""
        return self._next - 1

    @property
    def idle(self) -> bool:
        """Nothing queued, streaming or playing."""
        return not self._segments and not self._outbox

    def head(self) -> Segment | None:
        """The segment playing now or next, if any."""
        return next(iter(self._segments.values()), None)

    def any_interruptible(self) -> bool:
        """Whether an interruptible segment is queued or playing."""
        return any(s.interruptible for s in self._segments.values())

    def up_to(self, number: int) -> list[Segment]:
        """The segments not yet ended whose number is at most ``number``."""
        return [s for n, s in self._segments.items() if n <= number]

    # --- queueing -----------------------------------------------------------------------------------------------

    def say(
        self,
        text: str,
        interruptible: bool,
        prompt_key: str | None,
        *,
        fixed: bool,
        audio_key: str | None = None,
        turn: TurnTiming | None = None,
    ) -> int:
        """Queue one segment; returns its number."""
        seg = Segment(self._next, text, interruptible, prompt_key, fixed, audio_key or prompt_key, turn)
        self._next += 1
        self._segments[seg.number] = seg
        self._stats.segments += 1
        self._outbox.append(seg)
        self._ready.set()
        return seg.number

    def command(self, control: PlayControl) -> None:
        """Queue a call command behind the audio queued so far."""
        self._outbox.append(control)
        self._ready.set()

    # --- barge-in -----------------------------------------------------------------------------------------------

    def pause(self) -> None:
        """Hold the interruptible segment playing now (a possible barge-in)."""
        self.paused = True
        self._released.clear()
        self._stats.pauses += 1
        self._control("pause")

    def resume(self) -> None:
        """Carry on after :meth:`pause`."""
        self.paused = False
        self._released.set()
        self._stats.resumes += 1
        self._control("resume")

    def stop(self) -> None:
        """Drop every interruptible segment, here and at the media worker."""
        self.paused = False
        self._released.set()
        self._stats.stops += 1
        self._control("stop")
        for seg in [s for s in self._segments.values() if s.interruptible]:
            seg.cancelled = True
            if not seg.sent_any:  # the media worker never heard of it: no BotAudio will come
                self._segments.pop(seg.number, None)

    def forget(self, number: int) -> None:
        """Treat every segment up to ``number`` as ended (their end events were lost)."""
        for n in [n for n in self._segments if n <= number]:
            self._segments.pop(n, None)

    def on_bot_audio(self, event: BotAudio) -> bool:
        """Note what the media worker did; returns whether a segment of ours ended."""
        seg = self._segments.get(event.segment)
        if seg is None:
            return False
        seg.played_ms = event.played_ms
        if event.state in ("completed", "stopped"):
            self._segments.pop(seg.number, None)
            return True
        return False

    # --- the streaming task -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start streaming (event loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"navigator-play-{self.call_id}")

    async def aclose(self) -> None:
        """Stop streaming; nothing more is sent."""
        task, self._task = self._task, None
        if task is not None:
            await stop_task(task)

    async def _run(self) -> None:
        while True:
            while not self._outbox:
                self._ready.clear()
                await self._ready.wait()
            item = self._outbox.popleft()
            if isinstance(item, PlayControl):
                self._send(item)
                continue
            if item.cancelled:
                continue
            try:
                await self._stream(item)
            except asyncio.CancelledError:
                raise
            except Exception:  # task root: one utterance that fails must not silence the call
                self._stats.errors += 1
                log.exception("navigator utterance failed", call_id=self.call_id, segment=item.number,
                              prompt_key=item.prompt_key)  # fmt: skip
            self._close(item)

    async def _stream(self, seg: Segment) -> None:
        chunks = self._speaker.chunks(self.lang, seg.text, fixed=seg.fixed, audio_key=seg.audio_key)
        async for chunk in chunks:
            if not seg.sent_any:
                await self._released.wait()
            if seg.cancelled:
                return
            self._send(PlayAudio(self.call_id, seg.number, chunk, self.rate_hz, seg.interruptible))
            seg.audio_ms += len(chunk) * 1000 // (2 * self.rate_hz)
            if not seg.sent_any:
                seg.sent_any = True
                if seg.turn is not None:
                    seg.turn.first_chunk_ms = self._clock.monotonic() * 1000.0
                await self._publish(
                    BotSaid(at=self._clock.now(), call_id=self.call_id, segment=seg.number, text=seg.text,
                            prompt_key=seg.prompt_key, interruptible=seg.interruptible)
                )  # fmt: skip

    def _close(self, seg: Segment) -> None:
        """Close the segment at the media worker, or end it here when nothing of it was sent."""
        if seg.cancelled:
            return
        if seg.sent_any:
            self._send(PlayAudio(self.call_id, seg.number, b"", self.rate_hz, seg.interruptible, last=True))
            seg.sent_all = True
            self._on_change()
            return
        self._stats.unspoken += 1
        if self._segments.pop(seg.number, None) is not None:
            self._on_change()

    def _control(self, action: PlayAction) -> None:
        self._send(PlayControl(self.call_id, action))

    def _send(self, message: PlayMessage) -> None:
        try:
            self._sink.send(self.media_worker, message)
        except Exception:  # the sink must not raise; if it does, the call goes on
            self._stats.errors += 1
            log.exception("navigator play message not sent", call_id=self.call_id)
