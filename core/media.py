"""Wire format of live call audio between media workers and speech workers (ZeroMQ multipart messages).

A media worker sends, per call and leg, one :class:`StreamStart`, then :class:`AudioChunk` messages (normally one
20 ms frame each, in the codec of the call), then one :class:`StreamEnd`. Frames of one stream go to one speech
worker (chosen by :func:`worker_for_call`), so each worker sees whole streams in order.

Encoding: frame 0 is a one-byte type tag (``S``/``A``/``E``); frame 1 the header; frame 2 (audio only) the raw
payload. Audio headers are a fixed ``struct`` (cheap to build on the media thread); control headers are JSON.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import asdict, dataclass
from typing import Literal

from core.errors import InvalidInputError

Encoding = Literal["pcmu", "pcma", "l16"]
"""``pcmu``/``pcma``: G.711 μ-law/A-law bytes; ``l16``: little-endian signed 16-bit PCM."""

LangChoice = Literal["zh", "en", "auto"]
Leg = Literal["customer", "agent", "bot"]
_LEGS: tuple[Leg, ...] = ("customer", "agent", "bot")
_AUDIO_HEADER = struct.Struct("<IQB")  # seq, start_ms, leg index; followed by the UTF-8 call id


@dataclass(frozen=True)
class StreamStart:
    """A leg's audio begins. ``sample_rate_hz`` of the payloads; ``prompt`` seeds recognition (bank vocabulary)."""

    call_id: str
    leg: Leg
    encoding: Encoding
    sample_rate_hz: int
    lang: LangChoice = "auto"
    line: str = ""
    prompt: str | None = None
    started_at_ms: int = 0
    """Wall-clock epoch time of the call's start (ms), so ``start_ms`` offsets can be turned into times."""
    dialog: bool = False
    """A leg talking to the voice bot (navigator and outbound lines): the speech worker ends its utterances
    sooner (``asr.dialog_*`` settings), since the caller waits for an answer after each turn."""


@dataclass(frozen=True)
class AudioChunk:
    """Audio of one leg: ``start_ms`` is the offset of the first sample from the call's start (ms)."""

    call_id: str
    leg: Leg
    seq: int
    start_ms: int
    payload: bytes


@dataclass(frozen=True)
class StreamEnd:
    """A leg's audio ended (hangup, transfer, worker shutdown)."""

    call_id: str
    leg: Leg
    reason: str = "hangup"


MediaMessage = StreamStart | AudioChunk | StreamEnd


def encode_media(message: MediaMessage) -> list[bytes]:
    """Frames for ``zmq`` ``send_multipart``."""
    if isinstance(message, AudioChunk):
        header = _AUDIO_HEADER.pack(message.seq, message.start_ms, _LEGS.index(message.leg))
        return [b"A", header + message.call_id.encode(), message.payload]
    tag = b"S" if isinstance(message, StreamStart) else b"E"
    return [tag, json.dumps(asdict(message), separators=(",", ":")).encode()]


def decode_media(frames: list[bytes]) -> MediaMessage:
    """Parse frames from :func:`encode_media`; raises :class:`InvalidInputError` on anything malformed."""
    try:
        tag = frames[0]
        if tag == b"A" and len(frames) == 3:
            seq, start_ms, leg_index = _AUDIO_HEADER.unpack_from(frames[1])
            call_id = frames[1][_AUDIO_HEADER.size :].decode()
            return AudioChunk(call_id, _LEGS[leg_index], seq, start_ms, bytes(frames[2]))
        if tag in (b"S", b"E") and len(frames) == 2:
            data = json.loads(frames[1])
            return StreamStart(**data) if tag == b"S" else StreamEnd(**data)
    except (IndexError, struct.error, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise InvalidInputError("malformed media message") from exc
    raise InvalidInputError("malformed media message")


# --- play channel: navigator → media worker ------------------------------------------------------------------

PlayAction = Literal["pause", "resume", "stop", "hangup", "transfer", "dial"]
_PLAY_ACTIONS: tuple[str, ...] = ("pause", "resume", "stop", "hangup", "transfer", "dial")
_PLAY_HEADER = struct.Struct("<IBI")  # segment, flags, sample rate; followed by the UTF-8 call id
_INTERRUPTIBLE, _LAST = 1, 2


@dataclass(frozen=True)
class PlayAudio:
    """Bot speech for one call: ``payload`` is little-endian int16 mono at ``sample_rate_hz`` (whole 20 ms frames
    at the media worker's bridge rate). Chunks of one ``segment`` play in order; ``last`` closes the segment."""

    call_id: str
    segment: int
    payload: bytes
    sample_rate_hz: int
    interruptible: bool = True
    last: bool = False


@dataclass(frozen=True)
class PlayControl:
    """A command for one call's bot audio or the call itself.

    ``pause``/``resume``: hold the interruptible segment playing now (a possible barge-in) or carry on from where
    it stopped; ``stop``: drop every interruptible segment queued or playing; ``hangup``: end the call after the
    segments still queued have played (``reason``); ``transfer``: bridge the caller to ``target`` (a SIP URI) for
    ``skill_group``; ``dial``: place an outbound call to ``target`` on the worker's outbound ``line`` under the
    new ``call_id`` chosen by the sender (the dialer), cancelling it when nobody answers within ``ring_timeout_s``
    (s), for ``campaign_id``; ``lang`` is the call's language. A ``hangup`` of a call still ringing cancels it."""

    call_id: str
    action: PlayAction
    target: str = ""
    skill_group: str = ""
    reason: str = ""
    line: str = ""
    ring_timeout_s: float = 0.0
    campaign_id: str = ""
    lang: str = ""


PlayMessage = PlayAudio | PlayControl


def encode_play(message: PlayMessage) -> list[bytes]:
    """Frames for ``zmq`` ``send_multipart`` on the play channel."""
    if isinstance(message, PlayAudio):
        flags = (_INTERRUPTIBLE if message.interruptible else 0) | (_LAST if message.last else 0)
        header = _PLAY_HEADER.pack(message.segment, flags, message.sample_rate_hz)
        return [b"P", header + message.call_id.encode(), message.payload]
    return [b"C", json.dumps(asdict(message), separators=(",", ":")).encode()]


def decode_play(frames: list[bytes]) -> PlayMessage:
    """Parse frames from :func:`encode_play`; raises :class:`InvalidInputError` on anything malformed."""
    try:
        tag = frames[0]
        if tag == b"P" and len(frames) == 3:
            segment, flags, rate = _PLAY_HEADER.unpack_from(frames[1])
            call_id = frames[1][_PLAY_HEADER.size :].decode()
            payload = bytes(frames[2])
            if not call_id or len(payload) % 2:
                raise InvalidInputError("malformed play message")
            return PlayAudio(call_id, segment, payload, rate, bool(flags & _INTERRUPTIBLE), bool(flags & _LAST))
        if tag == b"C" and len(frames) == 2:
            control = PlayControl(**json.loads(frames[1]))
            if control.action not in _PLAY_ACTIONS or not control.call_id:
                raise InvalidInputError("unknown play command")
            return control
    except (IndexError, struct.error, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise InvalidInputError("malformed play message") from exc
    raise InvalidInputError("malformed play message")


def worker_for_call(call_id: str, workers: int) -> int:
    """Index of the speech worker that handles every stream of ``call_id`` (stable across processes)."""
    if workers < 1:
        raise InvalidInputError("at least one speech worker is needed")
    return zlib.crc32(call_id.encode()) % workers
