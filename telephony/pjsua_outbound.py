"""Outbound calls of a media worker: the dialer's ``dial`` command, ringing, the answer, answering-machine detection.

Mixed into :class:`telephony.pjsua_worker.PjsuaMediaWorker`; everything here runs on the pjsua thread except
:meth:`OutboundCalls._amd_decided` (media sender thread, emits only).

A ``dial`` :class:`core.media.PlayControl` (from the dialer, over the play channel) places a call to its ``target``
under the ``call_id`` the dialer chose, so the dialer can follow it on the bus:

* ``CallStarted(direction="outbound", callee=…, campaign_id=…)`` at once; when every call slot is taken, or
  pjsua2 refuses the URI, ``CallEnded(reason="failed", sip_code=503)`` follows straight away and nothing is sent;
* ``CallRinging`` on the first 180/183;
* the worker's own **ring timer** (``ring_timeout_s`` of the command, else the worker's): a call not answered in
  time is cancelled (CANCEL) and ends ``no-answer`` with code 408, instead of waiting for the network's 32 s;
* on 200 OK ``CallAnswered(by="customer")``; the callee's audio is streamed and recorded like a navigator call
  (bot audio comes over the play channel), and the first seconds of it go through the
  :class:`telephony.amd.AnsweringMachineDetector`, whose verdict is published as ``AnsweringMachine`` (and, for a
  machine, once more when its greeting has ended);
* an answered call is hung up after ``max_outbound_call_s`` in any case (a dialog that never ends).

A ``hangup`` command for a call that is still ringing cancels it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, cast

from core.clock import Clock
from core.events import AnsweringMachine, CallAnswered, CallEnded, CallRinging, CallStarted, Event
from core.ids import CallId, CampaignId
from core.logging import get_logger
from core.media import PlayControl
from telephony import lines as sip
from telephony.amd import AmdDecision, AmdSettings, AnsweringMachineDetector
from telephony.lines import CallLeg, Line

log = get_logger(__name__)

__all__ = ["SIP_SERVICE_UNAVAILABLE", "OutboundCalls"]

SIP_SERVICE_UNAVAILABLE = 503
"""Outcome code of a dial the worker could not place (no free slot, URI refused); nothing was sent."""


class OutboundCalls:
    """The outbound side of the media worker (see the module docstring)."""

    max_calls: int
    ring_timeout_s: float
    clock_rate_hz: int
    index: int
    lines: list[Line]
    sender: Any
    _legs: dict[int, CallLeg]
    _clock: Clock
    _po: Any
    _account: Any
    _emit: Callable[[Event], None]
    _new_key: Callable[[], int]
    open_playout: Callable[[CallLeg], Any]
    close_playout: Callable[[CallLeg], None]
    max_outbound_call_s: float = 900.0
    """An answered outbound call is hung up after this long whatever its dialog does (s)."""
    amd_settings: AmdSettings = AmdSettings()

    if TYPE_CHECKING:

        @property
        def active_calls(self) -> int: ...

    def _outbound_line(self, command: PlayControl) -> Line:
        """The configured outbound line ``command.line``, else an outbound line of that name in the call's
        language (its disclosure prompt, if any, is not played: the campaign dialog introduces the call)."""
        name = command.line or "outbound"
        lang = cast("Literal['zh', 'en', 'auto']", command.lang if command.lang in ("zh", "en") else "zh")
        for line in self.lines:
            if line.name == name and line.kind == "outbound":
                return Line(line.name, "outbound", line.number, lang)
        return Line(name, "outbound", "", lang)

    def place_call(self, command: PlayControl) -> None:
        """Carry out a ``dial`` command (pjsua thread)."""
        call_id = CallId(command.call_id)
        if any(leg.call_id == call_id for leg in self._legs.values()):
            log.warning("dial ignored: the call id is already in use", call_id=call_id)
            return
        line = self._outbound_line(command)
        started_at = self._clock.now()
        self._emit(
            CallStarted(
                call_id=call_id, direction="outbound", line=line.name, callee=sip.uri_user(command.target),
                campaign_id=CampaignId(command.campaign_id) if command.campaign_id else None, at=started_at,
                media_worker=self.index,
            )
        )  # fmt: skip
        if self.active_calls + 1 > self.max_calls:
            log.warning("dial refused: no free call slot", call_id=call_id, active=self.active_calls)
            self._emit(CallEnded(call_id=call_id, duration_ms=0, reason="failed", sip_code=SIP_SERVICE_UNAVAILABLE))
            return
        po = self._po
        obj = po.VoxCall(self._account, po.pj.PJSUA_INVALID_ID, self)
        obj.key = self._new_key()
        leg = CallLeg(obj.key, call_id, line, obj, self._clock.monotonic(), started_at)
        leg.outbound = True
        timeout_s = command.ring_timeout_s if command.ring_timeout_s > 0 else self.ring_timeout_s
        leg.ring_deadline = leg.offered_at + timeout_s
        self._legs[leg.key] = leg
        self.open_playout(leg)
        try:
            obj.makeCall(command.target, po.call_op())
        except Exception:  # pjsua2 raises its Error for a bad URI or no route
            log.exception("outbound call could not be placed", call_id=call_id)
            leg.ended = True
            self.close_playout(leg)
            self._emit(CallEnded(call_id=call_id, duration_ms=0, reason="failed", sip_code=SIP_SERVICE_UNAVAILABLE))
            return
        log.info("outbound call placed", call_id=call_id, worker=self.index, ring_timeout_s=timeout_s)

    def outbound_progress(self, leg: CallLeg, status_code: int) -> None:
        """An outbound leg got a provisional response (pjsua thread): report the first 180/183 as ringing."""
        if not leg.ringing_reported and status_code in (180, 183):
            leg.ringing_reported = True
            self._emit(CallRinging(call_id=leg.call_id, sip_code=status_code))

    def outbound_answered(self, leg: CallLeg) -> None:
        """The callee answered (pjsua thread): stop the ring timer, start the hangup timer and the detector."""
        leg.ring_deadline = None
        leg.hangup_deadline = self._clock.monotonic() + self.max_outbound_call_s
        self._emit(CallAnswered(call_id=leg.call_id, by="customer"))
        detector = AnsweringMachineDetector(self.clock_rate_hz, self.amd_settings)
        call_id = leg.call_id
        self.sender.watch(leg.key, detector, lambda decision: self._amd_decided(call_id, decision))

    def _amd_decided(self, call_id: CallId, decision: AmdDecision) -> None:  # media sender thread
        reason = decision.reason
        log.info("answering machine detection", call_id=call_id, verdict=decision.verdict, reason=reason)
        self._emit(
            AnsweringMachine(
                call_id=call_id, verdict=decision.verdict, greeting_ms=decision.greeting_ms,
                decided_ms=decision.decided_ms, reason=reason,
            )
        )  # fmt: skip

    def check_outbound_timers(self) -> None:
        """Hang up answered outbound calls past ``max_outbound_call_s`` (pjsua thread; ring timers are shared
        with agent legs in the worker's ``_check_ring_timers``)."""
        now = self._clock.monotonic()
        for leg in list(self._legs.values()):
            if leg.hangup_deadline is not None and not leg.ended and now >= leg.hangup_deadline:
                leg.hangup_deadline = None
                log.warning("outbound call hung up: longest call time reached", call_id=leg.call_id)
                leg.obj.hangup(self._po.call_op())
