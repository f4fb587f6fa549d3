"""The pjsua2 subclasses of the media worker. Importing this module imports pjsua2 (a binary extension), so
only :mod:`telephony.pjsua_worker` imports it, lazily, on its pjsua thread.

Every callback here forwards at once to a :class:`CallHandler` (the worker) or, for media, copies the frame and
queues it: nothing is computed inside a pjsua2 callback. SIP callbacks (``onIncomingCall``, ``onCallState``,
``onCallMediaState``, ``onRejectedIncomingCall``) run on the worker's pjsua thread inside ``libHandleEvents``;
``onFrameReceived``/``onFrameRequested`` run on the conference bridge's media clock thread every 20 ms;
``onDtmfDigit`` runs on the media thread that decodes RTP (RFC 2833) or on the pjsua thread (SIP INFO).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import pjsua2 as pj

from core.logging import get_logger
from telephony.framebuf import FrameAccess, probe_fast_path

log = get_logger(__name__)

__all__ = [
    "CallHandler", "VoxAccount", "VoxCall", "VoxEndpoint", "VoxLogWriter", "VoxPort",
    "call_op", "create_account", "create_endpoint", "create_port", "error_text", "frame_access", "pj",
]  # fmt: skip

LEFT, RIGHT = 0, 1


class CallHandler(Protocol):
    """What the pjsua2 objects report to (implemented by :class:`telephony.pjsua_worker.PjsuaMediaWorker`)."""

    def on_incoming(self, call: VoxCall, request: str) -> None: ...

    def on_rejected(self, request: str, remote: str, status_code: int) -> None: ...

    def on_call_state(self, call: VoxCall) -> None: ...

    def on_media_state(self, call: VoxCall) -> None: ...

    def on_dtmf(self, call: VoxCall, digit: str, duration_ms: int | None) -> None: ...

    def on_stream_destroyed(self, call: VoxCall, stream_index: int) -> None: ...


def frame_access() -> FrameAccess:
    """The fastest frame payload access that is correct with this pjsua2 build (see :mod:`telephony.framebuf`)."""
    return probe_fast_path(pj.ByteVector)


class VoxLogWriter(pj.LogWriter):  # type: ignore[misc]
    """Routes PJSIP's own log lines into the structured (PII-filtered) log. Any pjsua or media thread."""

    def write(self, entry: Any) -> None:
        try:
            log.info("pjsip log", pjsip_level=int(entry.level), line=str(entry.msg).rstrip())
        except Exception:  # noqa: BLE001 - never raise into pjsua2
            return


class VoxEndpoint(pj.Endpoint):  # type: ignore[misc]
    """The library endpoint; reports INVITEs that pjsua itself rejects (e.g. 486 when every call slot is used)."""

    def __init__(self, handler: CallHandler) -> None:
        super().__init__()
        self.handler = handler

    def onRejectedIncomingCall(self, prm: Any) -> None:  # pjsua2 callback name
        try:
            self.handler.on_rejected(str(prm.rdata.wholeMsg), str(prm.remoteInfo), int(prm.statusCode))
        except Exception:  # an exception must never cross back into pjsua2 (C++)
            log.exception("rejected-call callback failed")


class VoxAccount(pj.Account):  # type: ignore[misc]
    """The worker's one local account; every INVITE to the worker's address lands here."""

    def __init__(self, handler: CallHandler) -> None:
        super().__init__()
        self.handler = handler

    def onIncomingCall(self, prm: Any) -> None:
        call = VoxCall(self, prm.callId, self.handler)
        try:
            self.handler.on_incoming(call, str(prm.rdata.wholeMsg))
        except Exception:  # never let an exception cross into pjsua2; refuse the call instead
            log.exception("incoming-call callback failed")
            call.hangup(call_op(500))


class VoxCall(pj.Call):  # type: ignore[misc]
    """One SIP call (leg); ``key`` is the worker's slot key for it."""

    def __init__(self, account: VoxAccount, call_id: int, handler: CallHandler) -> None:
        """``call_id`` is pjsua's id of an incoming call, or ``pj.PJSUA_INVALID_ID`` for a new outgoing one."""
        super().__init__(account, call_id)
        self.handler = handler
        self.key = -1

    def onCallState(self, prm: Any) -> None:
        try:
            self.handler.on_call_state(self)
        except Exception:
            log.exception("call-state callback failed")

    def onCallMediaState(self, prm: Any) -> None:
        try:
            self.handler.on_media_state(self)
        except Exception:
            log.exception("media-state callback failed")

    def onDtmfDigit(self, prm: Any) -> None:
        try:
            self.handler.on_dtmf(self, str(prm.digit), None)
        except Exception:
            log.exception("dtmf callback failed")

    def onStreamDestroyed(self, prm: Any) -> None:  # the stream still exists: its statistics are readable
        try:
            self.handler.on_stream_destroyed(self, int(prm.streamIdx))
        except Exception:
            log.exception("stream-destroyed callback failed")


def _discard(key: int, leg: int, payload: bytes) -> None:
    """The sink of a released port."""


class VoxPort(pj.AudioMediaPort):  # type: ignore[misc]
    """A conference-bridge port tapping one call leg.

    ``sink(key, leg, payload)`` gets a copy of every frame (L16 bytes): received audio as ``rx_leg``; when
    ``tx_leg`` is set, also what the port played as ``tx_leg`` (``b""`` = silence). ``playout`` (a
    :class:`telephony.playout.Playout`) gives the frames to play, one per tick; without one the port is silent.
    """

    def __init__(
        self,
        key: int,
        sink: Callable[[int, int, bytes], None],
        access: FrameAccess,
        *,
        rx_leg: int = LEFT,
        tx_leg: int | None = RIGHT,
        playout: Any = None,
    ) -> None:
        super().__init__()
        self._key = key
        self._sink = sink
        self._access = access
        self._rx_leg = rx_leg
        self._tx_leg = tx_leg
        self._playout = playout
        self.failures = 0
        """Frame callbacks that raised (logged once; the frame is lost)."""

    def bind(
        self,
        key: int,
        sink: Callable[[int, int, bytes], None],
        *,
        rx_leg: int = LEFT,
        tx_leg: int | None = RIGHT,
        playout: Any = None,
    ) -> None:
        """Tap another call leg with this (spare) port: ports are reused, never deleted while the worker runs."""
        self._key, self._rx_leg, self._tx_leg, self._playout = key, rx_leg, tx_leg, playout
        self._sink = sink
        self.failures = 0

    def release(self) -> None:
        """The leg ended: drop everything the port held; it hears and plays nothing until bound again."""
        self._sink = _discard
        self._playout = None
        self._tx_leg = None

    @property
    def transmits(self) -> bool:
        """Whether the port has anything to play or record on its transmit side."""
        return self._tx_leg is not None or self._playout is not None

    def stop_recording_tx(self) -> None:
        """Stop reporting played frames (a transferred call's right channel is the agent's from now on). Any
        thread: the media clock thread reads the attribute on its next tick."""
        self._tx_leg = None

    def onFrameReceived(self, frame: Any) -> None:  # media clock thread, ~2 µs hot, ~40 µs cold
        try:
            self._sink(self._key, self._rx_leg, self._access.read(frame))
        except Exception:  # noqa: BLE001 - logged once in _failed; never raise into pjsua2
            self._failed()

    def onFrameRequested(self, frame: Any) -> None:  # media clock thread
        try:
            self._play(frame)
        except Exception:  # noqa: BLE001 - logged once in _failed; never raise into pjsua2
            self._failed()
            try:  # play nothing rather than whatever the frame held
                frame.type = pj.PJMEDIA_FRAME_TYPE_NONE
                frame.size = 0
            except Exception:  # noqa: BLE001 - never raise into pjsua2
                return

    def _failed(self) -> None:
        # Never raises: an exception out of a director callback would abort the process. The port may be half torn
        # down (its attributes gone) when the bridge calls it during its deletion.
        try:
            self.failures = getattr(self, "failures", 0) + 1
            if self.failures == 1:  # called from inside the except block: the traceback is logged
                log.exception("media port frame callback failed", key=getattr(self, "_key", None))
        except Exception:  # noqa: BLE001 - see above
            return

    def _play(self, frame: Any) -> None:
        data = self._playout.next_frame() if self._playout is not None else b""
        if data:
            self._access.write(frame, data, pj.PJMEDIA_FRAME_TYPE_AUDIO)
        else:
            frame.type = pj.PJMEDIA_FRAME_TYPE_NONE
            frame.size = 0
        tx_leg = self._tx_leg
        if tx_leg is not None:
            self._sink(self._key, tx_leg, data)


def create_port(port: VoxPort, name: str, clock_rate_hz: int) -> VoxPort:
    """Register ``port`` with the conference bridge as mono L16 at ``clock_rate_hz`` Hz, 20 ms frames."""
    fmt = pj.MediaFormatAudio()
    fmt.init(pj.PJMEDIA_FORMAT_L16, clock_rate_hz, 1, 20_000, 16)
    port.createPort(name, fmt)
    return port


_ALLOWED_CODECS = ("PCMU/", "PCMA/")


def create_endpoint(
    handler: CallHandler, *, host: str, port: int, max_calls: int, clock_rate_hz: int, log_level: int
) -> tuple[VoxEndpoint, VoxLogWriter]:
    """Create, configure and start the library: ``threadCnt=0`` (the caller polls ``libHandleEvents``), the null
    audio device as bridge clock at ``clock_rate_hz`` Hz, no VAD or echo canceller, PCMU/PCMA only, and a UDP
    SIP transport on ``host:port``. Call on the thread that will poll. Keep the returned writer referenced."""
    ep = VoxEndpoint(handler)
    ep.libCreate()
    try:
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = False
        cfg.uaConfig.maxCalls = max_calls
        cfg.uaConfig.userAgent = "Voxdesk"
        writer = VoxLogWriter()
        cfg.logConfig.writer = writer
        cfg.logConfig.decor = 0
        cfg.logConfig.level = log_level
        cfg.logConfig.consoleLevel = log_level
        cfg.medConfig.clockRate = clock_rate_hz
        cfg.medConfig.sndClockRate = clock_rate_hz
        cfg.medConfig.noVad = True
        cfg.medConfig.ecTailLen = 0
        ep.libInit(cfg)
        tcfg = pj.TransportConfig()
        tcfg.port = port
        tcfg.boundAddress = host
        ep.transportCreate(pj.PJSIP_TRANSPORT_UDP, tcfg)
        ep.audDevManager().setNullDev()
        for codec in ep.codecEnum2():
            ep.codecSetPriority(codec.codecId, 200 if codec.codecId.startswith(_ALLOWED_CODECS) else 0)
        ep.libStart()
    except BaseException:
        ep.libDestroy()  # on this (the creating) thread: pjlib must not be touched from an unregistered one
        raise
    return ep, writer


def create_account(
    handler: CallHandler, *, host: str, port: int, rtp_port_start: int, rtp_port_range: int
) -> VoxAccount:
    """The worker's local account (no registration), default for every INVITE; RTP ports from
    ``rtp_port_start`` within ``rtp_port_range``."""
    account = VoxAccount(handler)
    cfg = pj.AccountConfig()
    cfg.idUri = f"sip:voxdesk@{host}:{port}"
    cfg.mediaConfig.transportConfig.port = rtp_port_start
    cfg.mediaConfig.transportConfig.portRange = rtp_port_range
    cfg.mediaConfig.transportConfig.boundAddress = host
    account.create(cfg, True)
    return account


def error_text(exc: BaseException) -> str:
    """A readable description of a pjsua2 ``Error`` (its ``title`` and ``reason``) or any other exception."""
    title, reason = getattr(exc, "title", None), getattr(exc, "reason", None)
    return f"{title}: {reason}" if title or reason else repr(exc)


def call_op(status_code: int = 0) -> Any:
    """A ``CallOpParam`` with default call settings (audio on) and ``status_code`` (0: the library's choice)."""
    op = pj.CallOpParam(True)
    if status_code:
        op.statusCode = status_code
    return op
