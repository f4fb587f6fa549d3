"""Second legs and commands of a media worker: bot audio, barge-in control, hangup, transfer, agent legs.

Mixed into :class:`telephony.pjsua_worker.PjsuaMediaWorker`. :meth:`CallCommands.deliver` runs on the play
receiver thread: audio and ``pause``/``resume``/``stop`` go straight to the call's
:class:`telephony.playout.Playout` (no pjsua2 involved); ``hangup`` and ``transfer`` are queued for the pjsua
thread, which carries each out in :meth:`CallCommands.run_commands` once the call's queued bot audio has played.

A **transfer** dials ``target`` as a second leg of the call (a slot of the worker, like the agent leg of an
assisted line). When the agent answers, the bot audio is dropped, the caller and the agent are bridged both ways,
the recording's right channel switches from the bot to the agent and the agent's voice is streamed as leg
``agent``; ``CallTransferred(status="connected")`` is emitted. When the agent leg fails (busy, declined, no answer
within ``ring_timeout_s``, no free slot) the caller stays with the bot and ``CallTransferred(status="failed")``
tells the session, which apologises.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core.clock import Clock
from core.events import CallTransferred, Event
from core.ids import CallId
from core.logging import get_logger
from core.media import PlayAudio, PlayControl, PlayMessage
from telephony import lines as sip
from telephony.lines import CallLeg
from telephony.playout import Playout

log = get_logger(__name__)

_MAX_DEFERRED_S = 120.0
"""A hangup/transfer waits at most this long for queued bot audio before it is carried out anyway (s)."""


class CallCommands:
    """State and steps of the play channel inside the media worker (see the module docstring)."""

    clock_rate_hz: int
    max_calls: int
    ring_timeout_s: float
    _legs: dict[int, CallLeg]
    _clock: Clock
    _po: Any
    _account: Any
    _emit: Callable[[Event], None]
    _new_key: Callable[[], int]
    if TYPE_CHECKING:

        @property
        def active_calls(self) -> int: ...

        def place_call(self, command: PlayControl) -> None: ...

    def _init_commands(self) -> None:
        self._playouts: dict[str, Playout] = {}
        self._playouts_lock = threading.Lock()
        self._commands: queue.SimpleQueue[tuple[float, PlayControl]] = queue.SimpleQueue()
        self._deferred: list[tuple[float, PlayControl]] = []
        self.play_dropped = 0
        """Play messages for calls this worker does not hold, or at the wrong sample rate."""

    # --- pjsua thread: playouts -----------------------------------------------------------------------------

    def open_playout(self, leg: CallLeg) -> Playout:
        """The bot audio queue of a leg the bot answers (registered for the play channel)."""
        playout = Playout(leg.call_id, 2 * self.clock_rate_hz // 50, self._emit)
        with self._playouts_lock:
            self._playouts[leg.call_id] = playout
        leg.playout = playout
        return playout

    def close_playout(self, leg: CallLeg) -> None:
        """Drop a leg's bot audio and unregister it (call ended or transferred)."""
        if leg.playout is None:
            return
        with self._playouts_lock:
            self._playouts.pop(leg.call_id, None)
        leg.playout.close()

    # --- play receiver thread -------------------------------------------------------------------------------

    def deliver(self, message: PlayMessage) -> None:
        """Route one play-channel message (receiver thread; never calls pjsua2)."""
        if isinstance(message, PlayControl) and message.action == "dial":  # a new call: nothing to look up
            self._commands.put((self._clock.monotonic(), message))
            return
        with self._playouts_lock:
            playout = self._playouts.get(message.call_id)
        if playout is None:
            self.play_dropped += 1
            log.info("play message for a call this worker does not hold", call_id=message.call_id)
            return
        if isinstance(message, PlayAudio):
            if message.sample_rate_hz != self.clock_rate_hz:
                self.play_dropped += 1
                log.error("bot audio at the wrong rate dropped", call_id=message.call_id,
                          rate_hz=message.sample_rate_hz, bridge_hz=self.clock_rate_hz)  # fmt: skip
                return
            playout.add(message.segment, message.payload, interruptible=message.interruptible, last=message.last)
        elif message.action in ("pause", "resume", "stop"):
            playout.control(message.action)
        else:  # hangup, transfer and dial: pjsua2 work, for the pjsua thread
            self._commands.put((self._clock.monotonic(), message))

    # --- pjsua thread: deferred commands --------------------------------------------------------------------

    def run_commands(self) -> None:
        """Carry out the hangups and transfers whose call has played its queued bot audio."""
        while True:
            try:
                self._deferred.append(self._commands.get_nowait())
            except queue.Empty:
                break
        now = self._clock.monotonic()
        waiting: list[tuple[float, PlayControl]] = []
        for since, command in self._deferred:
            if command.action == "dial":
                self.place_call(command)
                continue
            leg = next((x for x in self._legs.values() if x.call_id == command.call_id and not x.customer_key), None)
            if leg is None or leg.ended:
                continue
            if leg.playout is not None and not leg.playout.drained() and now - since < _MAX_DEFERRED_S:
                waiting.append((since, command))
                continue
            if command.action == "hangup":
                log.info("bot hangs up", call_id=leg.call_id, reason=command.reason)
                leg.obj.hangup(self._po.call_op())
            else:
                self._start_transfer(leg, command)
        self._deferred = waiting

    def _start_transfer(self, customer: CallLeg, command: PlayControl) -> None:
        if customer.peer_key is not None:
            log.warning("transfer ignored: the call already has a second leg", call_id=customer.call_id)
            return
        customer.transfer = (command.target, command.skill_group)
        if self.active_calls + 1 > self.max_calls:
            self._transfer_failed(customer, sip.SIP_BUSY_HERE)
            return
        log.info("transferring call", call_id=customer.call_id, skill_group=command.skill_group)
        if self.dial_second_leg(customer, command.target) is None:
            self._transfer_failed(customer, sip.SIP_TEMPORARILY_UNAVAILABLE)

    def _check_ring_timers(self) -> None:
        now = self._clock.monotonic()
        for leg in list(self._legs.values()):
            if leg.ring_deadline is not None and not leg.ended and leg.answered_at is None and now >= leg.ring_deadline:
                leg.ring_deadline = None
                leg.outcome_code = sip.SIP_REQUEST_TIMEOUT
                log.info("call leg not answered in time; cancelling", call_id=leg.call_id, outbound=leg.outbound)
                leg.obj.hangup(self._po.call_op())

    def _audio_of(self, call: Any) -> Any:
        pj = self._po.pj
        info = call.getInfo()  # keep it referenced: ``info.media`` points into it (SWIG)
        for media in info.media:
            if media.type == pj.PJMEDIA_TYPE_AUDIO and media.status == pj.PJSUA_CALL_MEDIA_ACTIVE:
                return call.getAudioMedia(media.index)
        return None

    def _dial_agent(self, customer: CallLeg, agent_uri: str) -> None:
        if self.dial_second_leg(customer, agent_uri) is None:
            customer.outcome_code = sip.SIP_TEMPORARILY_UNAVAILABLE
            customer.obj.hangup(self._po.call_op(sip.SIP_TEMPORARILY_UNAVAILABLE))

    def dial_second_leg(self, customer: CallLeg, uri: str) -> CallLeg | None:
        """Dial ``uri`` as the agent leg of ``customer``'s call (ring timer ``ring_timeout_s``); ``None`` (logged)
        when pjsua2 refuses the URI."""
        po = self._po
        obj = po.VoxCall(self._account, po.pj.PJSUA_INVALID_ID, self)
        obj.key = self._new_key()
        agent = CallLeg(obj.key, customer.call_id, customer.line, obj, self._clock.monotonic(), customer.started_at)
        agent.customer_key, agent.peer_key, customer.peer_key = customer.key, customer.key, agent.key
        agent.ring_deadline = self._clock.monotonic() + self.ring_timeout_s
        self._legs[agent.key] = agent
        try:
            obj.makeCall(uri, po.call_op())
        except Exception:  # pjsua2 raises its Error for a bad URI or no route
            log.exception("agent leg could not be dialled", call_id=customer.call_id)
            agent.ended = True
            customer.peer_key = None
            return None
        return agent

    def transfer_answered(self, customer: CallLeg) -> None:
        """The agent of a transfer answered: drop the bot audio, record the agent instead, tell the session."""
        target, group = customer.transfer or ("", "")
        self.close_playout(customer)
        if customer.port is not None:
            customer.port.stop_recording_tx()
        self._emit(CallTransferred(call_id=CallId(customer.call_id), skill_group=group, target=target))

    def transfer_failed_leg(self, customer: CallLeg, code: int | None) -> None:
        """The agent leg of a transfer ended before answering: the caller stays with the bot."""
        customer.peer_key = None
        self._transfer_failed(customer, code)

    def _transfer_failed(self, customer: CallLeg, code: int | None) -> None:
        target, group = customer.transfer or ("", "")
        customer.transfer = None
        log.info("transfer failed", call_id=customer.call_id, sip_code=code)
        self._emit(
            CallTransferred(
                call_id=CallId(customer.call_id), skill_group=group, target=target, status="failed", sip_code=code
            )
        )


__all__ = ["CallCommands"]
