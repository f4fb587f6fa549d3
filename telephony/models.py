"""Domain objects of the call store: what the API, the CLI and other rooms see of a recorded call.

Times are timezone-aware UTC; ``*_ms`` values are milliseconds (offsets from the call's start for utterances
and DTMF, lengths for durations).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from core.events import Lang, Leg
from core.ids import CallId, CampaignId, CustomerId

Direction = Literal["inbound", "outbound"]
EndReason = Literal["normal", "busy", "no-answer", "declined", "cancelled", "failed", "shutdown"]


class CallLeg(BaseModel):
    """One leg of a call and when its media flowed."""

    model_config = ConfigDict(frozen=True)

    leg: Leg
    remote_uri: str = ""
    """SIP URI of the far end (PII: never log it unmasked)."""
    connected_at: datetime
    ended_at: datetime | None = None


class Call(BaseModel):
    """A recorded call: set-up, answer, hangup and recording facts."""

    model_config = ConfigDict(frozen=True)

    call_id: CallId
    direction: Direction
    line: str
    """The dialed line or campaign trunk, e.g. ``"95500"``."""
    caller_e164: str | None = None
    customer_id: CustomerId | None = None
    """The customer the caller number resolved to at call set-up, if any."""
    campaign_id: CampaignId | None = None
    started_at: datetime
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration_ms: int | None = None
    """From answer (or offer, if never answered) to hangup (ms), as the media worker reported it."""
    end_reason: EndReason | None = None
    sip_code: int | None = None
    media_worker: str | None = None
    recording_path: str | None = None
    recording_sha256: str | None = None
    """Hex SHA-256 of the recording file, once it was checked in."""
    recording_duration_ms: int | None = None
    lang: Lang | None = None
    """Language of the call: the first language a final transcript reported."""
    legs: tuple[CallLeg, ...] = ()

    @property
    def has_recording(self) -> bool:
        """Whether a recording file was reported for this call."""
        return self.recording_path is not None


class Utterance(BaseModel):
    """The final text of one utterance; ``start_ms``/``end_ms`` from the call's start."""

    model_config = ConfigDict(frozen=True)

    id: int
    call_id: CallId
    leg: Leg
    start_ms: int
    end_ms: int
    text: str
    lang: Lang | None = None
    confidence: float | None = None
    """Mean token probability in [0, 1], when the recogniser gave one."""
    created_at: datetime


class DtmfDigit(BaseModel):
    """One DTMF digit; ``at_ms`` from the call's start."""

    model_config = ConfigDict(frozen=True)

    id: int
    call_id: CallId
    digit: str
    at_ms: int
    duration_ms: int | None = None


class CallDetail(Call):
    """A call with its transcript (utterances ordered by start) and DTMF digits (in order)."""

    utterances: tuple[Utterance, ...] = ()
    dtmf: tuple[DtmfDigit, ...] = ()


class CallPage(BaseModel):
    """A page of calls, newest first; ``total`` counts every call matching the filters."""

    model_config = ConfigDict(frozen=True)

    items: tuple[Call, ...]
    total: int
    offset: int
    limit: int
