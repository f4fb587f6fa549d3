"""The real :class:`telephony.dialer.engine.CallPlacer`: dials through the media workers and follows each call on
the event bus.

For each attempt :class:`SipPlacer` picks the media worker with the most free call slots among ``workers`` (each
holds at most ``slots_per_worker`` calls: pjsua2's limit is 4 per process, so 16 channels need 4 workers). It
knows the workers from their ``media.status`` heartbeats: a worker not heard from for ``lost_after_s`` gets no
calls, and calls it holds that the placer did not place (inbound calls, calls a killed dialer left behind) take
slots too; an attempt waits until a slot is free. Then it

1. publishes :class:`core.events.CampaignCall` (what the campaign dialog in the agent process needs) and sends a
   ``dial`` command over that worker's play channel with a call id of its own, the SIP URI that ``route`` makes of
   the number, and the campaign's ring timeout (the media worker's own ring timer sends the CANCEL);
2. follows the call's events: ``call.ringing`` and ``call.answered`` are reported to the dialer as they come, the
   answering-machine verdict (``call.amd``) and the dialog's :class:`core.events.CampaignOutcome` are kept;
3. on ``call.ended`` returns the outcome: ``busy`` (486/600), ``no_answer`` (408/480/487/603 and the ring timer),
   ``interrupted`` (a call that :meth:`SipPlacer.hang_up_all` cut short before its dialog said how it went: it
   is tried again after the retry delay), ``failed`` (anything else, a worker with no free slot, no end heard
   within ``ring timeout + max_call_s``, or the worker fell silent mid-call), and for an answered call
   ``voicemail`` (a machine answered), else ``completed`` with the dialog's final outcome, captured fields and
   opt-out. When the callee hangs up first, the dialog's outcome may arrive just after the hangup: it is waited
   for ``outcome_grace_s`` if a dialog spoke on the call (``navigator.said``).

:meth:`run` is the event task (start it before placing calls). Event-loop thread only.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from core.bus.base import EventBus
from core.clock import Clock, SystemClock
from core.events import (
    AnsweringMachine,
    BotSaid,
    CallAnswered,
    CallEnded,
    CallRinging,
    CampaignCall,
    CampaignOutcome,
    Event,
    MediaWorkerStatus,
)
from core.ids import CallId, CampaignId, CustomerId, new_call_id
from core.logging import get_logger
from core.media import PlayAudio, PlayControl, PlayMessage
from telephony.dialer.attempts import AttemptState
from telephony.dialer.engine import DialEvents, DialRequest, DialResult

log = get_logger(__name__)

__all__ = ["CommandSink", "SipPlacer", "outcome_of"]


class CommandSink(Protocol):
    """Where call commands go: the media workers' play channels (``agent.navigator.play_client.ZmqPlaySink``)."""

    def send(self, media_worker: int, message: PlayMessage) -> None: ...


def outcome_of(ended: CallEnded, *, answered: bool) -> AttemptState:
    """The attempt state a call that ended unanswered (or, with ``answered``, failed after the answer) maps to."""
    if answered:
        return AttemptState.FAILED if ended.reason in ("failed", "shutdown") else AttemptState.COMPLETED
    if ended.reason == "busy":
        return AttemptState.BUSY
    if ended.reason in ("no-answer", "declined", "cancelled"):
        return AttemptState.NO_ANSWER
    return AttemptState.FAILED


@dataclass
class _Worker:
    """What the placer knows of one media worker: its last heartbeat and the calls it placed there."""

    index: int
    max_calls: int = 0
    calls: frozenset[str] = frozenset()
    heard_at: float | None = None
    """``Clock.monotonic()`` of the last heartbeat (s)."""
    mine: set[str] = field(default_factory=set)

    def alive(self, now: float, lost_after_s: float) -> bool:
        return self.heard_at is not None and now - self.heard_at <= lost_after_s

    def free(self, slots: int) -> int:
        """Free call slots: the worker's (at most ``slots``) less the calls of others and of this placer."""
        return min(self.max_calls, slots) - len(self.calls - self.mine) - len(self.mine)


@dataclass
class _Call:
    """What the placer has heard of one call so far."""

    worker: int
    events: asyncio.Queue[Event] = field(default_factory=asyncio.Queue)
    outcome: CampaignOutcome | None = None
    machine: bool = False
    stopped: bool = False
    """The placer hung the call up itself (the dialer is stopping)."""
    abandoned: bool = False
    """Answered by a person, but no dialog spoke: the placer played the information message and hung up."""
    answered_at: float | None = None
    heard_at: float | None = None
    """When the answering-machine verdict (a person, or no telling) came (``Clock.monotonic()`` s)."""
    dialog: bool = False
    """A campaign dialog spoke on the call (so its outcome is worth waiting for after the hangup)."""


class SipPlacer:
    """Places calls through media workers ``workers`` (indexes) via ``sink`` and follows them on ``bus``.

    ``route(phone)`` gives the SIP URI to dial for an E.164 number; ``line`` names the outbound line (its
    language and name in the call's events); ``dialog`` is merged into every campaign's dialog configuration.
    Times: ``outcome_grace_s``, ``max_call_s``, ``lost_after_s``, ``silent_after_s`` (s). ``abandon_message``:
    language → the information message (L16 at ``rate_hz``) played on a call abandoned because no dialog spoke.
    """

    def __init__(
        self,
        bus: EventBus,
        sink: CommandSink,
        *,
        workers: Sequence[int],
        route: Callable[[str], str],
        slots_per_worker: int = 4,
        line: str = "outbound",
        outcome_grace_s: float = 3.0,
        max_call_s: float = 900.0,
        lost_after_s: float = 5.0,
        silent_after_s: float = 5.0,
        abandon_message: Mapping[str, bytes] | None = None,
        rate_hz: int = 8000,
        clock: Clock | None = None,
    ) -> None:
        if not workers:
            raise ValueError("at least one media worker is needed")
        self._bus = bus
        self._sink = sink
        self._workers = {w: _Worker(w) for w in workers}
        self._lost_after_s = lost_after_s
        self._silent_after_s = silent_after_s
        self._abandon_message = dict(abandon_message or {})
        self._rate_hz = rate_hz
        self._changed = asyncio.Event()
        self._slots = slots_per_worker
        self._route = route
        self._line = line
        self._grace_s = outcome_grace_s
        self._max_call_s = max_call_s
        self._clock = clock or SystemClock()
        self._calls: dict[str, _Call] = {}
        self._ready = asyncio.Event()
        self.placed = 0
        """Dial commands sent."""

    @property
    def capacity(self) -> int:
        """Calls the workers can hold at once."""
        return len(self._workers) * self._slots

    async def run(self) -> None:
        """Route the bus's call and dialer events to the calls in progress until cancelled (a task)."""
        async with self._bus.subscribe("call.", "dialer.outcome", "navigator.said", "media.status") as subscription:
            await subscription.wait_ready()
            self._ready.set()
            async for event in subscription:
                if isinstance(event, MediaWorkerStatus):
                    self._heard(event)
                    continue
                call = self._calls.get(str(getattr(event, "call_id", "")))
                if call is None:
                    continue
                if isinstance(event, BotSaid):
                    call.dialog = True
                    continue
                if isinstance(event, CampaignOutcome):
                    call.outcome = event
                elif isinstance(event, AnsweringMachine):
                    call.machine = call.machine or event.verdict == "machine"
                call.events.put_nowait(event)

    def hang_up_all(self, reason: str) -> int:
        """Hang up (or cancel, while ringing) every call in progress, e.g. when the dialer stops; how many."""
        for call_id, call in list(self._calls.items()):
            call.stopped = True
            self._sink.send(call.worker, PlayControl(call_id, "hangup", reason=reason))
        return len(self._calls)

    def _heard(self, status: MediaWorkerStatus) -> None:
        worker = self._workers.get(status.media_worker)
        if worker is not None:
            worker.max_calls, worker.calls = status.max_calls, frozenset(status.calls)
            worker.heard_at = self._clock.monotonic()
            self._changed.set()

    async def _take_slot(self, call_id: str) -> _Worker:
        """The live worker with the most free slots, the call booked on it; waits while none has one."""
        while True:
            now = self._clock.monotonic()
            live = [w for w in self._workers.values() if w.alive(now, self._lost_after_s)]
            best = max(live, key=lambda w: w.free(self._slots), default=None)
            if best is not None and best.free(self._slots) > 0:
                best.mine.add(call_id)
                return best
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=1.0)

    def _give_slot(self, worker: _Worker, call_id: str) -> None:
        worker.mine.discard(call_id)
        self._changed.set()

    async def place(self, request: DialRequest, events: DialEvents) -> DialResult:
        """Place one call and wait for its end (see the module docstring)."""
        await self._ready.wait()
        call_id = new_call_id()
        worker = await self._take_slot(call_id)
        call = _Call(worker.index)
        self._calls[call_id] = call
        try:
            return await self._follow(request, events, call_id, call)
        finally:
            self._calls.pop(call_id, None)
            self._give_slot(worker, call_id)

    async def _follow(self, request: DialRequest, events: DialEvents, call_id: CallId, call: _Call) -> DialResult:
        campaign = request.campaign
        dialog: dict[str, Any] = dict(campaign.config.get("dialog") or {})
        lang = "en" if request.language == "en" else "zh"
        await self._bus.publish(
            CampaignCall(
                call_id=call_id, campaign_id=CampaignId(campaign.campaign_id), attempt_id=request.attempt_id,
                campaign_kind=str(campaign.kind), lang=lang,
                customer_id=CustomerId(request.customer_id) if request.customer_id else None,
                fields=dict(request.fields), dialog=dialog, media_worker=call.worker,
            )
        )  # fmt: skip
        command = PlayControl(
            call_id, "dial", target=self._route(request.phone), line=self._line,
            ring_timeout_s=request.ring_timeout_s, campaign_id=campaign.campaign_id, lang=lang,
        )  # fmt: skip
        self._sink.send(call.worker, command)
        self.placed += 1
        deadline = self._clock.monotonic() + request.ring_timeout_s + self._max_call_s + 30.0
        while True:
            now = self._clock.monotonic()
            try:
                event = await asyncio.wait_for(call.events.get(), timeout=max(0.0, min(1.0, deadline - now)))
            except TimeoutError:
                if self._clock.monotonic() >= deadline:
                    log.error("no end heard for an outbound call; hanging it up", call_id=call_id)
                    self._sink.send(call.worker, PlayControl(call_id, "hangup", reason="dialer_timeout"))
                    return DialResult(AttemptState.FAILED, call_id=call_id)
                if not self._workers[call.worker].alive(self._clock.monotonic(), self._lost_after_s):
                    log.error("media worker fell silent during an outbound call", call_id=call_id, worker=call.worker)
                    return DialResult(AttemptState.FAILED, call_id=call_id)
                event = None
            if self._silent(call):
                self._abandon(call_id, call, lang)
            if isinstance(event, CallRinging):
                await events.ringing()
            elif isinstance(event, CallAnswered):
                call.answered_at = self._clock.monotonic()
                await events.answered()
            elif isinstance(event, AnsweringMachine) and event.verdict != "machine" and call.heard_at is None:
                call.heard_at = self._clock.monotonic()
            elif isinstance(event, CallEnded):
                return await self._result(call_id, call, event)

    def _silent(self, call: _Call) -> bool:
        """A person answered (or no verdict came in 8 s) and no dialog has spoken for ``silent_after_s``."""
        if call.answered_at is None or call.machine or call.dialog or call.abandoned or call.stopped:
            return False
        since = call.heard_at if call.heard_at is not None else call.answered_at + 8.0
        return self._clock.monotonic() - since >= self._silent_after_s

    def _abandon(self, call_id: CallId, call: _Call, lang: str) -> None:
        """No dialog serves an answered call (the agent process is down or overloaded): rather than leave the callee
        in silence, play the information message, if there is one, and hang up."""
        call.abandoned = True
        log.error("answered campaign call has no dialog; abandoning it", call_id=call_id)
        message = self._abandon_message.get(lang)
        if message:
            self._sink.send(call.worker, PlayAudio(call_id, 1, message, self._rate_hz, interruptible=False, last=True))
        self._sink.send(call.worker, PlayControl(call_id, "hangup", reason="abandoned"))

    async def _result(self, call_id: CallId, call: _Call, ended: CallEnded) -> DialResult:
        answered = call.answered_at is not None
        outcome = outcome_of(ended, answered=answered)
        if call.abandoned and answered:
            return DialResult(AttemptState.ABANDONED, sip_code=ended.sip_code, call_id=call_id)
        if call.stopped and call.outcome is None:  # cut short by the dialer: tried again after the retry delay
            return DialResult(AttemptState.INTERRUPTED, sip_code=ended.sip_code, call_id=call_id)
        if not answered or outcome is AttemptState.FAILED:
            return DialResult(outcome, sip_code=ended.sip_code, call_id=call_id)
        if call.outcome is None and call.dialog:  # the dialog may publish its outcome just after the hangup
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._outcome(call), timeout=self._grace_s)
        said = call.outcome
        if said.machine if said is not None else call.machine:
            return DialResult(AttemptState.VOICEMAIL, sip_code=ended.sip_code, call_id=call_id,
                              result=dict(said.result) if said else {})  # fmt: skip
        if said is None:
            return DialResult(AttemptState.COMPLETED, sip_code=ended.sip_code, call_id=call_id, final="answered")
        return DialResult(
            AttemptState.COMPLETED, sip_code=ended.sip_code, call_id=call_id, final=said.final,
            opt_out=said.opt_out, result=dict(said.result),
        )  # fmt: skip

    @staticmethod
    async def _outcome(call: _Call) -> None:
        while call.outcome is None:
            await call.events.get()
