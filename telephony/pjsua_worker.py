"""``PjsuaMediaWorker``: one SIP media worker process core (pjsua2, at most 4 concurrent call legs).

Threads:

* **pjsua thread** (created by :meth:`PjsuaMediaWorker.start`): creates the pjsua2 ``Endpoint`` (null audio
  device, ``threadCnt=0``), the UDP transport on ``sip_host:sip_port`` and one local account, then polls
  ``libHandleEvents`` every ``poll_ms``. Every SIP callback and every pjsua2 call of the worker runs here, so no
  other thread needs ``libRegisterThread``. On stop it hangs up every call, waits for them to end, destroys calls
  and ports, then ``libDestroy()``.
* **media clock thread** (pjsua's): each leg's :class:`telephony.pjsua_objects.VoxPort` copies every 20 ms
  frame (L16 at ``clock_rate_hz``) and queues it for the sender.
* **media sender thread** (:class:`telephony.media_sender.MediaSender`): streams legs to a speech worker over
  ZeroMQ and writes the stereo recording (customer left, bot/agent right).

Inbound calls: the request-URI user part selects a line (unknown number: **404 Not Found**).

* ``navigator`` (and ``outbound``) lines are answered at once (200 OK, PCMU/PCMA, RFC 2833 DTMF). What the bot
  says comes over the play channel (:mod:`telephony.play_receiver`, commands in :mod:`telephony.pjsua_commands`)
  into the call's :class:`telephony.playout.Playout`, and is recorded on the right channel; a line's own
  disclosure WAV, if set, plays first and cannot be interrupted. A navigator can hang the call up or transfer it
  to an agent (bridged like an assisted line, see :mod:`telephony.pjsua_commands`).
* ``assisted`` lines are a B2BUA: the caller gets 180 Ringing while the worker dials ``agent_uri``; when the
  agent answers the caller is answered and both legs are bridged both ways in the conference bridge, each leg
  tapped separately (streams ``customer`` and ``agent``). An agent that is busy/declines/fails makes the caller
  get 486 (busy) or 480; no answer within ``ring_timeout_s`` cancels the agent leg (reason ``no-answer``).
  Such a call takes two of the four call slots.

When the slots are used up a new INVITE gets **486 Busy Here** (from this worker, or from pjsua itself at its
compiled limit of 4) and is reported as ``CallEnded(reason="busy", sip_code=486)``. Events go out through
``emit``, which must be thread-safe (it is called from all three threads).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from core.clock import Clock, SystemClock
from core.errors import ConfigError
from core.events import CallAnswered, CallEnded, CallStarted, DtmfReceived, Event, LegConnected, RecordingSaved
from core.ids import CallId, new_call_id
from core.logging import get_logger
from core.media import PlayMessage
from telephony import lines as sip
from telephony.lines import CallLeg, Line
from telephony.media_sender import LEFT, RIGHT, CallStream, MediaSender
from telephony.pjsua_commands import CallCommands
from telephony.pjsua_outbound import OutboundCalls
from telephony.play_receiver import PlayReceiver
from telephony.prompts import load_prompt
from telephony.recorder import RecordingInfo
from telephony.rtp_stats import stream_statistics

log = get_logger(__name__)

PJSUA_MAX_CALLS = 4
"""Compiled call limit of the pjsua2 wheel (per process)."""
PORT_LINGER_S = 2.0
"""How long an ended leg's tap port rests before it taps another leg (s; see ``PjsuaMediaWorker._reap``)."""


class PjsuaMediaWorker(CallCommands, OutboundCalls):
    """SIP + RTP for up to ``max_calls`` call legs; streams and records them (see the module docstring).

    ``speech_endpoints`` are the ZeroMQ PULL endpoints of the speech workers (``AsrSettings
    .speech_endpoint_template`` filled in for each index). ``recording_dir`` ``None`` records nothing.
    ``clock_rate_hz`` is the conference bridge rate, which is also the rate of streamed and recorded audio and of
    bot audio (Hz). ``play_endpoint`` is where the play channel binds (``None``: no navigator can speak);
    ``index`` is the worker's number, reported in ``CallStarted.media_worker``.
    :meth:`start` and :meth:`stop` are called from one owner thread (the process's main thread).
    """

    def __init__(
        self,
        *,
        sip_host: str,
        sip_port: int,
        rtp_port_start: int,
        lines: Sequence[Line],
        speech_endpoints: Sequence[str],
        recording_dir: Path | None,
        recording_format: Literal["WAV", "FLAC"] = "WAV",
        emit: Callable[[Event], None],
        clock: Clock | None = None,
        max_calls: int = PJSUA_MAX_CALLS,
        ring_timeout_s: float = 30.0,
        clock_rate_hz: int = 8000,
        rtp_port_range: int = 100,
        poll_ms: int = 10,
        pjsip_log_level: int = 1,
        play_endpoint: str | None = None,
        index: int = 0,
    ) -> None:
        if not 1 <= max_calls <= PJSUA_MAX_CALLS:
            raise ConfigError("max_calls must be between 1 and 4 (pjsua2's compiled limit)", max_calls=max_calls)
        self.sip_host, self.sip_port = sip_host, sip_port
        self.rtp_port_start, self.rtp_port_range = rtp_port_start, rtp_port_range
        self.lines = list(lines)
        self.max_calls = max_calls
        self.ring_timeout_s = ring_timeout_s
        self.clock_rate_hz = clock_rate_hz
        self.poll_ms = poll_ms
        self.pjsip_log_level = pjsip_log_level
        self.index = index
        self.shutdown_grace_s = 5.0
        self.sender = MediaSender(speech_endpoints, recording_dir, recording_format, clock_rate_hz)
        self._emit = emit
        self._clock: Clock = clock or SystemClock()
        self._prompts: dict[str, list[bytes]] = {}
        self._init_commands()
        self.receiver = PlayReceiver(play_endpoint, self._deliver_play) if play_endpoint else None
        self._legs: dict[int, CallLeg] = {}
        self._lingering: deque[tuple[float, Any]] = deque()
        """Tap ports of ended legs, with when they may be reused (pjsua thread)."""
        self._spare_ports: list[Any] = []
        """Released tap ports, ready for the next leg (pjsua thread)."""
        self._ports_made = 0
        self._next_key = 0
        self._stopping = threading.Event()
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._start_reason = "timed out"
        self._thread: threading.Thread | None = None
        self._po: Any = None  # the telephony.pjsua_objects module, imported on the pjsua thread
        self._access: Any = None
        self._account: Any = None
        self.rtp_stats: deque[dict[str, Any]] = deque(maxlen=10_000)
        """RTP receive statistics of every ended call leg (pjmedia's stream and jitter buffer counters), for
        ``voxdesk bench calls``; appended on the pjsua thread when a leg disconnects."""

    # --- owner thread ----------------------------------------------------------------------------------------

    @property
    def active_calls(self) -> int:
        """Call legs not yet ended (pjsua call slots in use; read from any thread, approximate)."""
        return sum(1 for leg in list(self._legs.values()) if not leg.ended)

    def held_calls(self) -> list[CallId]:
        """Call ids of the calls (customer legs) not yet ended; read from any thread, approximate."""
        return [leg.call_id for leg in list(self._legs.values()) if not leg.ended and leg.customer_key is None]

    def start(self, timeout_s: float = 15.0) -> None:
        """Load prompts, start the sender and the pjsua thread; return once SIP listens.

        Raises :class:`ConfigError` when the transport cannot bind or pjsua2 fails to start, and the errors of
        :func:`telephony.prompts.load_prompt` for a bad disclosure WAV.
        """
        for line in self.lines:
            if line.disclosure_wav is not None:
                self._prompts[line.name] = load_prompt(line.disclosure_wav, self.clock_rate_hz)
        self.sender.start()
        if self.receiver is not None:
            try:
                self.receiver.start()
            except ConfigError:
                self.sender.close()
                raise
        self._thread = threading.Thread(target=self._run, name="voxdesk-pjsua", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout_s) or self._start_error is not None:
            self._stopping.set()
            self._thread.join(timeout=timeout_s)
            self.sender.close()
            if self.receiver is not None:
                self.receiver.stop()
            raise ConfigError(
                "SIP media worker could not start", port=self.sip_port, reason=self._start_reason
            ) from self._start_error

    def stop(self, timeout_s: float = 15.0) -> None:
        """Hang up every call, destroy pjsua2, flush streams and close recordings; idempotent."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)
            self._thread = None
        if self.receiver is not None:
            self.receiver.stop()
        self.sender.close()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Block until the pjsua thread ended (True) or ``timeout_s`` (s) passed (False)."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout_s)
        return not thread.is_alive()

    # --- pjsua thread ----------------------------------------------------------------------------------------

    def _run(self) -> None:
        ep: Any = None
        try:
            from telephony import pjsua_objects as po

            self._po = po
            self._access = po.frame_access()
            ep, writer = po.create_endpoint(
                self, host=self.sip_host, port=self.sip_port, max_calls=PJSUA_MAX_CALLS,
                clock_rate_hz=self.clock_rate_hz, log_level=self.pjsip_log_level,
            )  # fmt: skip
            self._account = po.create_account(
                self, host=self.sip_host, port=self.sip_port,
                rtp_port_start=self.rtp_port_start, rtp_port_range=self.rtp_port_range,
            )  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - task root: reported to start() as ConfigError
            self._start_error = exc.with_traceback(None)  # frames would keep pjsua2 objects alive
            self._start_reason = self._po.error_text(exc) if self._po is not None else repr(exc)
            self._account = None
            if ep is not None:
                ep.libDestroy()
            self._ready.set()
            return
        self._ready.set()
        log.info("sip media worker listening", host=self.sip_host, port=self.sip_port, fast_frames=self._access.fast)
        try:
            while not self._stopping.is_set():
                ep.libHandleEvents(self.poll_ms)
                self._check_ring_timers()
                self.check_outbound_timers()
                self.run_commands()
                self._reap()
        except Exception:  # task root of the pjsua thread
            log.exception("pjsua thread failed")
        finally:
            self._shutdown(ep)
            del writer

    def _shutdown(self, ep: Any) -> None:
        """Hang up, let calls end (≤ ``shutdown_grace_s``), destroy calls and ports, then the library."""
        try:
            ep.hangupAllCalls()
            deadline = self._clock.monotonic() + self.shutdown_grace_s
            while any(not leg.ended for leg in self._legs.values()) and self._clock.monotonic() < deadline:
                ep.libHandleEvents(self.poll_ms)
            for leg in list(self._legs.values()):
                if not leg.ended and leg.customer_key is None:
                    self._finish(leg, None)
                leg.ended = True
            self._reap(final=True)
            self._account.shutdown()
        except Exception:  # task root: still destroy the library below
            log.exception("sip media worker shutdown failed")
        finally:
            self._legs.clear()
            self._account = None
            ep.libDestroy()
            log.info("sip media worker stopped", port=self.sip_port)

    def _reap(self, *, final: bool = False) -> None:
        """Drop ended legs (outside pjsua2 callbacks). Their tap ports are not deleted: deleting a port while the
        media clock thread may be in one of its callbacks races with that thread (seen to abort a worker under
        outbound load), so a released port rests ``PORT_LINGER_S`` and then waits as a spare for the next leg.
        ``final`` (shutdown, no call left) drops them all."""
        now = self._clock.monotonic()
        for key in [k for k, leg in self._legs.items() if leg.ended]:
            leg = self._legs.pop(key)
            if leg.port is not None:
                leg.port.release()
                self._lingering.append((now + PORT_LINGER_S, leg.port))
            leg.port = None
            leg.obj = None
        while self._lingering and (final or self._lingering[0][0] <= now):
            self._spare_ports.append(self._lingering.popleft()[1])
        if final:
            self._spare_ports.clear()

    def _new_key(self) -> int:
        key, self._next_key = self._next_key, self._next_key + 1
        return key

    # --- CallHandler (pjsua thread, except on_dtmf) ----------------------------------------------------------

    def on_incoming(self, call: Any, request: str) -> None:
        call.key = self._new_key()
        dialled = sip.dialled_number(request)
        line = sip.select_line(self.lines, dialled)
        info = call.getInfo()
        leg = CallLeg(call.key, new_call_id(), line, call, self._clock.monotonic(), self._clock.now())
        self._legs[leg.key] = leg
        self._emit(
            CallStarted(
                call_id=leg.call_id, direction="inbound", line=line.name if line else dialled,
                caller=sip.uri_user(str(info.remoteUri)), at=leg.started_at, media_worker=self.index,
            )
        )  # fmt: skip
        slots = 2 if sip.bridged(line) else 1
        if line is None:
            leg.outcome_code = sip.SIP_NOT_FOUND
        elif self.active_calls - 1 + slots > self.max_calls:
            leg.outcome_code = sip.SIP_BUSY_HERE
        elif line.agent_uri and sip.bridged(line):
            call.answer(self._po.call_op(sip.SIP_RINGING))
            self._dial_agent(leg, line.agent_uri)
            return
        else:
            playout = self.open_playout(leg)
            prompt = self._prompts.get(line.name)
            if prompt:
                playout.add(-1, b"".join(prompt), interruptible=False, last=True)
            call.answer(self._po.call_op(200))
            return
        call.hangup(self._po.call_op(leg.outcome_code))

    def on_rejected(self, request: str, remote: str, status_code: int) -> None:
        dialled = sip.dialled_number(request)
        line = sip.select_line(self.lines, dialled)
        call_id = new_call_id()
        now = self._clock.now()
        self._emit(
            CallStarted(call_id=call_id, direction="inbound", line=line.name if line else dialled,
                        caller=sip.uri_user(remote), at=now, media_worker=self.index)
        )  # fmt: skip
        reason = sip.end_reason(status_code, answered=False, shutting_down=False)
        self._emit(CallEnded(call_id=call_id, duration_ms=0, reason=reason, sip_code=status_code))
        log.info("incoming call rejected by pjsua", call_id=call_id, sip_code=status_code)

    def on_call_state(self, call: Any) -> None:
        leg = self._legs.get(call.key)
        if leg is None or leg.ended:
            return
        info = call.getInfo()
        pj = self._po.pj
        peer = self._legs.get(leg.peer_key) if leg.peer_key is not None else None
        if leg.outbound and info.state == pj.PJSIP_INV_STATE_EARLY:
            self.outbound_progress(leg, int(info.lastStatusCode))
        elif info.state == pj.PJSIP_INV_STATE_CONFIRMED and leg.answered_at is None:
            leg.answered_at = self._clock.monotonic()
            if leg.outbound:
                self.outbound_answered(leg)
            elif leg.customer_key is not None:  # the agent answered: answer the waiting customer
                self._emit(CallAnswered(call_id=leg.call_id, by="agent"))
                if peer is not None and not peer.ended and peer.answered_at is None:
                    peer.obj.answer(self._po.call_op(200))
                elif peer is not None and not peer.ended:  # a transfer from the bot
                    self.transfer_answered(peer)
            elif not sip.bridged(leg.line):
                self._emit(CallAnswered(call_id=leg.call_id, by="bot"))
        elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
            leg.ended = True
            code = leg.outcome_code or int(info.lastStatusCode) or None
            if leg.customer_key is None:
                self.close_playout(leg)
                self._finish(leg, code)
            if peer is not None and not peer.ended:
                if leg.customer_key is not None and leg.answered_at is None and peer.transfer is not None:
                    self.transfer_failed_leg(peer, code)  # the caller stays with the bot
                elif leg.customer_key is not None and peer.answered_at is None:  # agent failed before answering
                    peer.outcome_code = code
                    reply = sip.SIP_BUSY_HERE if code in (486, 600) else sip.SIP_TEMPORARILY_UNAVAILABLE
                    peer.obj.hangup(self._po.call_op(reply))
                else:
                    peer.obj.hangup(self._po.call_op())

    def on_stream_destroyed(self, call: Any, stream_index: int) -> None:
        """pjsua thread, just before a leg's audio stream goes: keep its RTP receive counters (pjmedia's stream
        and jitter buffer statistics) for ``voxdesk bench calls``. Best effort, never raises."""
        leg = self._legs.get(call.key)
        if leg is None or leg.answered_at is None:
            return
        try:
            leg_name = "agent" if leg.customer_key is not None else "customer"
            self.rtp_stats.append(stream_statistics(call.getStreamStat(stream_index), leg.call_id, leg_name))
        except Exception:  # noqa: BLE001 - statistics only: a stream already gone is not an error
            log.debug("rtp statistics unavailable", call_id=leg.call_id)

    def _finish(self, leg: CallLeg, sip_code: int | None) -> None:
        """Post the end of a customer leg to the sender; ``CallEnded`` is emitted once the recording is closed."""
        reason = sip.end_reason(sip_code, answered=leg.answered_at is not None, shutting_down=self._stopping.is_set())
        since = leg.answered_at if leg.answered_at is not None else leg.offered_at
        duration_ms = int((self._clock.monotonic() - since) * 1000)
        call_id = leg.call_id

        def finish(recording: RecordingInfo | None) -> None:  # media sender thread
            if recording is not None:
                self._emit(
                    RecordingSaved(
                        call_id=call_id, path=str(recording.path), sha256=recording.sha256,
                        duration_ms=recording.duration_ms, size_bytes=recording.size_bytes,
                    )
                )  # fmt: skip
            self._emit(
                CallEnded(
                    call_id=call_id, duration_ms=duration_ms, reason=reason, sip_code=sip_code,
                    recording_path=str(recording.path) if recording else None,
                )
            )  # fmt: skip

        self.sender.end_call(leg.key, "shutdown" if reason == "shutdown" else "hangup", finish)

    def on_media_state(self, call: Any) -> None:
        leg = self._legs.get(call.key)
        if leg is None or leg.ended or leg.line is None:
            return
        pj = self._po.pj
        info = call.getInfo()
        for media in info.media:
            if media.type != pj.PJMEDIA_TYPE_AUDIO or media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            audio = call.getAudioMedia(media.index)
            if leg.port is None:
                leg.port = self._open_leg(leg, str(info.remoteUri))
            audio.startTransmit(leg.port)
            if leg.port.transmits:
                leg.port.startTransmit(audio)
            peer = self._legs.get(leg.peer_key) if leg.peer_key is not None else None
            if peer is not None and peer.port is not None and not peer.ended:
                peer_audio = self._audio_of(peer.obj)
                if peer_audio is not None:  # bridge the customer and the agent both ways
                    audio.startTransmit(peer_audio)
                    peer_audio.startTransmit(audio)

    def _open_leg(self, leg: CallLeg, remote_uri: str) -> Any:
        """Create the tap port of ``leg`` and start its streams (and, for a customer leg, the recording)."""
        assert leg.line is not None
        customer_key = leg.customer_key if leg.customer_key is not None else leg.key
        customer = self._legs.get(customer_key, leg)
        offset_ms = int((self._clock.monotonic() - customer.offered_at) * 1000)
        if not customer.recording:  # the first leg with media (the agent's, on an assisted line) opens the call
            customer.recording = True
            started_at_ms = int(customer.started_at.timestamp() * 1000)
            dialog = not sip.bridged(leg.line)
            self.sender.open_call(
                customer_key, CallStream(leg.call_id, leg.line.name, leg.line.lang, started_at_ms, dialog)
            )
        if leg.customer_key is None:
            self.sender.open_leg(leg.key, LEFT, "customer", offset_ms)
            navigator = not sip.bridged(leg.line)
            if navigator:
                self.sender.open_leg(leg.key, RIGHT, None, offset_ms)  # what the bot plays: recorded only
            port = self._tap_port(leg.key, rx_leg=LEFT, tx_leg=RIGHT if navigator else None, playout=leg.playout)
            self._emit(LegConnected(call_id=leg.call_id, leg="customer", remote_uri=remote_uri))
        else:
            self.sender.open_leg(customer_key, RIGHT, "agent", offset_ms)
            port = self._tap_port(customer_key, rx_leg=RIGHT, tx_leg=None, playout=None)
            self._emit(LegConnected(call_id=leg.call_id, leg="agent", remote_uri=remote_uri))
        return port

    def _tap_port(self, key: int, *, rx_leg: int, tx_leg: int | None, playout: Any) -> Any:
        """A spare tap port bound to ``key``, or a new one registered with the conference bridge."""
        po = self._po
        if self._spare_ports:
            port = self._spare_ports.pop()
            port.bind(key, self.sender.frame, rx_leg=rx_leg, tx_leg=tx_leg, playout=playout)
            return port
        self._ports_made += 1
        port = po.VoxPort(key, self.sender.frame, self._access, rx_leg=rx_leg, tx_leg=tx_leg, playout=playout)
        return po.create_port(port, f"vox-port-{self._ports_made}", self.clock_rate_hz)

    def _deliver_play(self, message: PlayMessage) -> None:
        self.deliver(message)

    def on_dtmf(self, call: Any, digit: str, duration_ms: int | None) -> None:
        leg = self._legs.get(call.key)
        if leg is not None:
            self._emit(DtmfReceived(call_id=leg.call_id, digit=digit, duration_ms=duration_ms))


__all__ = ["PJSUA_MAX_CALLS", "PjsuaMediaWorker"]
