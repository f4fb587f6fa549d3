"""Events of outbound calls: the dialer's campaign calls, ringing, answering-machine verdicts, dialog outcomes.

The dialer publishes :class:`CampaignCall` just before it asks a media worker to dial; the media worker reports
:class:`CallRinging` and, from the first seconds of the callee's audio, :class:`AnsweringMachine`; the campaign
dialog publishes :class:`CampaignOutcome` before it hangs up. All travel on the bus like every other event
(:mod:`core.events` lists them in ``AnyEvent``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from core.event_base import Event, Lang
from core.ids import CallId, CampaignId, CustomerId

__all__ = ["AmdVerdict", "AnsweringMachine", "CallRinging", "CampaignCall", "CampaignOutcome", "MediaWorkerStatus"]

AmdVerdict = Literal["human", "machine", "unknown"]
"""What answered an outbound call: a person, a voicemail greeting, or no telling (silence)."""


class CallRinging(Event):
    """An outbound call is ringing at the far end (180 Ringing or 183 Session Progress received)."""

    kind: Literal["call.ringing"] = "call.ringing"
    call_id: CallId
    sip_code: int = 180


class AnsweringMachine(Event):
    """The answering-machine detector's verdict on an answered outbound call, from its first seconds of audio.

    ``greeting_ms``: length of the callee's first stretch of speech (ms); ``decided_ms``: when the verdict was
    reached, from the answer (ms); ``reason``: the rule that decided (``short_greeting``, ``long_greeting``,
    ``many_words``, ``silence``, ``timeout``)."""

    kind: Literal["call.amd"] = "call.amd"
    call_id: CallId
    verdict: AmdVerdict
    greeting_ms: int = 0
    decided_ms: int = 0
    reason: str = ""


class CampaignCall(Event):
    """The dialer is about to place ``call_id`` for one contact of a campaign: what the campaign dialog needs.

    ``fields`` are the dialing list's fields of the contact (amount due, due date, notice…); they may hold
    customer data and are masked in logs like every event. ``dialog`` is the campaign's dialog configuration
    (bank name, callback number, product script, voicemail action)."""

    kind: Literal["dialer.call"] = "dialer.call"
    call_id: CallId
    campaign_id: CampaignId
    attempt_id: str
    campaign_kind: str
    lang: Lang
    customer_id: CustomerId | None = None
    fields: dict[str, str] = Field(default_factory=dict)
    dialog: dict[str, Any] = Field(default_factory=dict)
    media_worker: int = 0


class CampaignOutcome(Event):
    """How the campaign dialog of ``call_id`` ended, published before the bot hangs up.

    ``final``: the contact's outcome when the call settles it (``verified``, ``promised``, ``acknowledged``,
    ``surveyed``, ``interested``, ``not_interested``…), ``None`` to try again per the retry schedule;
    ``opt_out``: the callee asked not to be called again; ``machine``: a voicemail answered; ``result``: the
    captured fields (promise-to-pay date, scores, free-text reason, interest)."""

    kind: Literal["dialer.outcome"] = "dialer.outcome"
    call_id: CallId
    attempt_id: str
    campaign_id: CampaignId
    final: str | None = None
    opt_out: bool = False
    machine: bool = False
    transferred: bool = False
    result: dict[str, Any] = Field(default_factory=dict)


class MediaWorkerStatus(Event):
    """A media worker's heartbeat (every second): the call slots it has and the calls it holds now.

    The dialer places calls only on workers it has heard from lately and with a free slot, counting calls it does
    not know of (inbound calls, calls a previous dialer run left); a worker that falls silent is taken as lost."""

    kind: Literal["media.status"] = "media.status"
    media_worker: int
    max_calls: int
    calls: list[CallId] = Field(default_factory=list)
    """Call ids of the calls the worker holds (one per customer leg)."""
