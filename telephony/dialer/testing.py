"""Fakes for dialer tests, no SIP: a scripted :class:`telephony.dialer.engine.CallPlacer`, and media workers that
answer a :class:`telephony.dialer.sip_placer.SipPlacer`'s commands with scripted call events."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from core.bus.base import EventBus
from core.events import (
    AnsweringMachine,
    BotSaid,
    CallAnswered,
    CallEnded,
    CallRinging,
    CallStarted,
    CampaignOutcome,
    MediaWorkerStatus,
)
from core.ids import CallId, CampaignId
from core.media import PlayControl, PlayMessage
from telephony.dialer.attempts import AttemptState
from telephony.dialer.engine import DialEvents, DialRequest, DialResult

__all__ = ["FakeMediaWorkers", "ScriptedPlacer"]

_ANSWERED = frozenset({AttemptState.COMPLETED, AttemptState.VOICEMAIL, AttemptState.ABANDONED})


@dataclass
class ScriptedPlacer:
    """Plays ``script[phone]`` one result per attempt (the last one repeats; unknown numbers complete). Records
    every placed call in ``placed`` (``(phone, attempt_id)``) and the most calls in flight at once in
    ``max_concurrent``; while ``hold`` is not set, answered calls wait on it (to keep channels busy)."""

    script: Mapping[str, Sequence[DialResult]] = field(default_factory=dict)
    hold: asyncio.Event | None = None
    placed: list[tuple[str, str]] = field(default_factory=list)
    in_flight: int = 0
    max_concurrent: int = 0

    async def place(self, request: DialRequest, events: DialEvents) -> DialResult:
        """Report ringing (and answered when the scripted outcome is an answered one), then return it."""
        results = self.script.get(request.phone) or [DialResult(AttemptState.COMPLETED, sip_code=200)]
        done = sum(1 for phone, _ in self.placed if phone == request.phone)
        result = results[min(done, len(results) - 1)]
        self.placed.append((request.phone, request.attempt_id))
        self.in_flight += 1
        self.max_concurrent = max(self.max_concurrent, self.in_flight)
        try:
            await events.ringing()
            if result.outcome in _ANSWERED:
                await events.answered(machine=result.outcome is AttemptState.VOICEMAIL)
                if self.hold is not None:
                    await self.hold.wait()
            return result
        finally:
            self.in_flight -= 1


class FakeMediaWorkers:
    """Plays the media workers' part for :class:`telephony.dialer.sip_placer.SipPlacer` tests, with no SIP.

    A :class:`CommandSink`: every command is kept in :attr:`commands`; a ``dial`` makes the fake publish on ``bus``
    the events a media worker (and, for answered calls, the campaign dialog) would, by what ``callees`` says the
    dialed number does: ``busy``, ``ring`` (rings until hung up), ``answer`` (a person; the dialog reports
    ``outcome``), ``late_outcome`` (the person hangs up and the dialog's outcome comes just after),
    ``machine``, ``no_dialog`` (a person answers and waits; no dialog speaks) or ``vanish`` (answered, then the
    worker is lost). :meth:`beat` publishes each live worker's
    heartbeat, with ``foreign`` extra calls it holds. Event loop only; steps are ``step_s`` apart (s).
    """

    def __init__(
        self,
        bus: EventBus,
        callees: Mapping[str, str],
        *,
        outcome: Mapping[str, Any] | None = None,
        max_calls: int = 4,
        step_s: float = 0.01,
    ) -> None:
        self.bus, self.callees, self.max_calls, self.step_s = bus, dict(callees), max_calls, step_s
        self.outcome = dict(outcome or {"final": "promised", "result": {"promise_date": "2026-12-25"}})
        self.commands: list[tuple[int, PlayMessage]] = []
        self.held: dict[int, set[str]] = {}
        self.dead: set[int] = set()
        self.most_held = 0
        self._hangups: dict[str, asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def send(self, media_worker: int, message: PlayMessage) -> None:
        self.commands.append((media_worker, message))
        if not isinstance(message, PlayControl):  # bot audio (the abandoned-call message)
            return
        if message.action == "hangup":
            self._hangups.setdefault(message.call_id, asyncio.Event()).set()
        elif message.action == "dial":
            task = asyncio.get_running_loop().create_task(self._call(media_worker, message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def beat(self, *workers: int, foreign: int = 0) -> None:
        for worker in workers:
            if worker in self.dead:
                continue
            calls = [CallId(c) for c in self.held.get(worker, set())] + [CallId(f"other-{i}") for i in range(foreign)]
            await self.bus.publish(MediaWorkerStatus(media_worker=worker, max_calls=self.max_calls, calls=calls))

    async def _call(self, worker: int, dial: PlayControl) -> None:
        call_id = CallId(dial.call_id)
        behaviour = self.callees.get(dial.target.removeprefix("sip:").split("@")[0], "answer")
        held = self.held.setdefault(worker, set())
        held.add(call_id)
        self.most_held = max(self.most_held, len(held))
        hangup = self._hangups.setdefault(call_id, asyncio.Event())
        publish = self.bus.publish
        try:
            await publish(CallStarted(call_id=call_id, direction="outbound", line=dial.line, media_worker=worker))
            if behaviour == "busy":
                await publish(CallEnded(call_id=call_id, duration_ms=0, reason="busy", sip_code=486))
                return
            await publish(CallRinging(call_id=call_id))
            if behaviour == "ring":
                await hangup.wait()
                await publish(CallEnded(call_id=call_id, duration_ms=0, reason="no-answer", sip_code=487))
                return
            await asyncio.sleep(self.step_s)
            await publish(CallAnswered(call_id=call_id, by="customer"))
            if behaviour == "vanish":
                self.dead.add(worker)
                return
            machine = behaviour == "machine"
            await publish(AnsweringMachine(call_id=call_id, verdict="machine" if machine else "human"))
            if behaviour == "no_dialog":
                await hangup.wait()
                await publish(CallEnded(call_id=call_id, duration_ms=6000, reason="normal", sip_code=200))
                return
            if not machine:
                await publish(BotSaid(call_id=call_id, segment=1, text="hello"))
            outcome = CampaignOutcome(call_id=call_id, attempt_id="", campaign_id=CampaignId(dial.campaign_id),
                                      machine=machine, **self.outcome)  # fmt: skip
            if behaviour == "answer":
                await publish(outcome)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hangup.wait(), self.step_s)
            await publish(CallEnded(call_id=call_id, duration_ms=1000, reason="normal", sip_code=200))
            if behaviour == "late_outcome":
                await asyncio.sleep(self.step_s)
                await publish(outcome)
        finally:
            held.discard(call_id)
