"""Lines of a media worker: which configured line a dialled number selects, SIP outcome vocabulary, leg state.

Pure functions and value types; no pjsua2. Used on the pjsua thread of :class:`telephony.pjsua_worker.PjsuaMediaWorker`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from core.errors import InvalidInputError
from core.ids import CallId

LineKind = Literal["navigator", "assisted", "outbound"]
LineLang = Literal["zh", "en", "auto"]
EndReason = Literal["normal", "busy", "no-answer", "declined", "cancelled", "failed", "shutdown"]

SIP_BUSY_HERE = 486
"""Final response to an INVITE that finds the worker full (all call slots in use)."""
SIP_NOT_FOUND = 404
"""Final response to an INVITE for a number that selects no configured line."""
SIP_RINGING = 180
SIP_REQUEST_TIMEOUT = 408
"""Outcome code of an agent leg cancelled by the ring timer (reported, never sent)."""
SIP_TEMPORARILY_UNAVAILABLE = 480
"""Final response to a caller whose agent could not be reached."""

_REQUEST_LINE = re.compile(r"^INVITE\s+(?:sips?|tel):(?P<user>[^@;>\s]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Line:
    """One line as the media worker needs it (built by the application shell from ``LineSettings``)."""

    name: str
    kind: LineKind
    number: str
    """The called number / SIP user part that selects this line, e.g. ``"95500"``."""
    lang: LineLang = "zh"
    agent_uri: str | None = None
    disclosure_wav: Path | None = None
    """Prompt played to the caller once media flows (WAV, any rate); ``None`` plays nothing."""


def request_user(whole_msg: str) -> str:
    """User part of the request URI of a SIP INVITE (``INVITE sip:95500@host SIP/2.0`` → ``"95500"``).

    Raises :class:`InvalidInputError` when the message does not start with an INVITE request line.
    """
    match = _REQUEST_LINE.match(whole_msg.lstrip())
    if match is None:
        raise InvalidInputError("not a SIP INVITE request line")
    return match.group("user")


def select_line(lines: Sequence[Line], dialled: str) -> Line | None:
    """The line whose ``number`` equals ``dialled`` (ignoring a leading ``+``), or ``None`` when none does."""
    wanted = dialled.lstrip("+")
    for line in lines:
        if line.number.lstrip("+") == wanted:
            return line
    return None


def end_reason(sip_code: int | None, *, answered: bool, shutting_down: bool) -> EndReason:
    """Map the last SIP status code of a call to :class:`core.events.CallEnded` ``reason``."""
    if shutting_down:
        return "shutdown"
    if answered:
        return "normal"
    if sip_code in (486, 600):
        return "busy"
    if sip_code == 603:
        return "declined"
    if sip_code == 487:
        return "cancelled"
    if sip_code in (408, 480):
        return "no-answer"
    return "failed"


def uri_user(uri: str) -> str | None:
    """``"Alice" <sip:+8613800000000@host>`` → ``+8613800000000``."""
    start = uri.find("sip:")
    if start < 0 or "@" not in uri[start:]:
        return None
    return uri[start + 4 :].split("@", 1)[0] or None


def bridged(line: Line | None) -> bool:
    """Whether calls on ``line`` are bridged to an agent (an ``assisted`` line with an ``agent_uri``)."""
    return line is not None and line.kind == "assisted" and bool(line.agent_uri)


def dialled_number(request: str) -> str:
    """The request-URI user part of an INVITE (``""`` for anything else)."""
    return request_user(request) if request.lstrip().upper().startswith("INVITE ") else ""


@dataclass
class CallLeg:
    """The worker's state of one pjsua call: the customer's leg, or the agent leg of an assisted call
    (``customer_key`` set). Times are ``Clock.monotonic()`` seconds. Used on the worker's pjsua thread only."""

    key: int
    call_id: CallId
    line: Line | None
    obj: Any
    offered_at: float
    started_at: datetime
    customer_key: int | None = None
    peer_key: int | None = None
    ring_deadline: float | None = None
    answered_at: float | None = None
    port: Any = None
    outcome_code: int | None = None
    """SIP code that explains the outcome when it differs from pjsua's last status (rejections, agent failure)."""
    ended: bool = False
    recording: bool = False
    """Whether the sender holds this call's streams and recording (customer legs)."""
    playout: Any = None
    """The bot audio queue (:class:`telephony.playout.Playout`) of a customer leg the bot answered."""
    transfer: tuple[str, str] | None = None
    """``(target URI, skill group)`` of a transfer in progress or done (customer legs)."""
    outbound: bool = False
    """A call the worker placed (a ``dial`` command), not one it was offered."""
    ringing_reported: bool = False
    hangup_deadline: float | None = None
    """When an answered outbound call is hung up whatever its dialog does (``Clock.monotonic()`` s)."""
