"""Small parts of the navigator's call runtime: its settings (:class:`NavigatorConfig`), counters and per-turn
timings (:class:`SessionStats`, :class:`TurnTiming`) and a cancellable one-shot :class:`Timer` on an injectable
clock. Event-loop thread only (the timer); the dataclasses are plain data."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from core.bus.base import stop_task
from core.clock import Clock
from core.events import Lang

__all__ = ["NavigatorConfig", "SessionStats", "Timer", "TurnTiming", "keep_last"]


@dataclass(frozen=True)
class NavigatorConfig:
    """How a navigator session behaves (from ``[navigator]`` and ``[telephony]``; times in ms)."""

    sample_rate_hz: int = 8000
    """Rate of the bot audio sent to the media worker (the bridge's ``telephony.clock_rate_hz``), Hz."""
    resume_after_ms: int = 1_200
    """A barge-in pause resumes when no partial or final follows it (or the last partial) within this, ms."""
    backchannels: Mapping[Lang, frozenset[str]] = field(default_factory=dict)
    """Normalised backchannels per language (:func:`agent.navigator.handoff.backchannel_sets`)."""
    skill_groups: Mapping[str, str] = field(default_factory=dict)
    """SIP URI of each skill group's agents."""
    default_transfer_uri: str | None = None
    """Where a transfer goes when its skill group has no URI; ``None``: apologise and hang up."""
    sensitive_slots: frozenset[str] = frozenset({"card_last4", "birth_date"})
    """Slots masked in a handoff (:func:`agent.navigator.handoff.sensitive_slots` of the flows)."""
    playback_slack_ms: int = 5_000
    """If the media worker's ``BotAudio`` end events do not come within the audio's length plus this, the no-input
    timer starts anyway (a lost event must not leave the caller in silence), ms."""


@dataclass
class TurnTiming:
    """One caller turn, in monotonic ms of the session's clock: the final arrived, its intent was known, and the
    first chunk of the bot's answer was sent (``None`` while not yet, or never: no answer spoken)."""

    final_ms: float
    intent_ms: float | None = None
    first_chunk_ms: float | None = None

    @property
    def to_intent_ms(self) -> float | None:
        """Final → intent done (classification and the dialog step), ms."""
        return None if self.intent_ms is None else self.intent_ms - self.final_ms

    @property
    def to_first_chunk_ms(self) -> float | None:
        """Final → first chunk of the answer sent to the media worker, ms."""
        return None if self.first_chunk_ms is None else self.first_chunk_ms - self.final_ms


@dataclass
class SessionStats:
    """Counters of one navigator session (for logs, metrics and ``voxdesk bench navigator``)."""

    turns: list[TurnTiming] = field(default_factory=list)
    """Caller turns fed to the dialog, the most recent 1000."""
    segments: int = 0
    """Bot utterances queued."""
    unspoken: int = 0
    """Utterances that gave no audio (no voice, no recording, synthesis failed)."""
    pauses: int = 0
    resumes: int = 0
    stops: int = 0
    backchannels: int = 0
    """Backchannels and empty finals heard while the bot spoke (the prompt went on)."""
    held_finals: int = 0
    """Finals held until a non-interruptible prompt ended."""
    no_inputs: int = 0
    playback_timeouts: int = 0
    """Listens whose prompts' end events never came (the timer started on the guard)."""
    errors: int = 0


def keep_last(values: list[TurnTiming], value: TurnTiming, limit: int = 1000) -> None:
    """Append ``value`` and keep only the ``limit`` most recent entries."""
    values.append(value)
    if len(values) > limit:
        del values[: len(values) - limit]


class Timer:
    """A one-shot timer on ``clock``: :meth:`arm` (re)starts it, :meth:`cancel` stops it; the callback runs on the
    event loop. Event-loop thread only."""

    def __init__(self, clock: Clock, name: str) -> None:
        self._clock = clock
        self._name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def armed(self) -> bool:
        """Whether the timer is running."""
        return self._task is not None

    def arm(self, delay_ms: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` after ``delay_ms`` ms of the clock, replacing any earlier arming."""
        self.cancel()
        self._task = asyncio.get_running_loop().create_task(self._run(delay_ms / 1000.0, callback), name=self._name)

    def cancel(self) -> None:
        """Stop the timer (nothing happens if it is not armed)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()

    async def aclose(self) -> None:
        """Cancel and wait for the timer's task."""
        task, self._task = self._task, None
        if task is not None:
            await stop_task(task)

    async def _run(self, delay_s: float, callback: Callable[[], None]) -> None:
        await self._clock.sleep(delay_s)
        self._task = None
        callback()
