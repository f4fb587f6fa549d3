"""The typed, immutable events that cross package and process boundaries.

Every event has a ``kind`` (its wire name, also the bus topic) and ``at`` (UTC time it happened). Times inside a
call are milliseconds from the call's start (``start_ms``/``end_ms``). Events serialise to JSON with
:func:`event_to_json` and back with :func:`event_from_json`; nothing else goes on the bus.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from core.event_base import Event, Lang, Leg, Severity
from core.events_dialer import AnsweringMachine, CallRinging, CampaignCall, CampaignOutcome, MediaWorkerStatus
from core.ids import BranchId, CallId, CameraId, CampaignId, CustomerId, ProductId, QuestionId, ScriptId, UserId

__all__ = [
    "EVENT_KINDS", "AnsweringMachine", "AnyEvent", "BotAudio", "BotSaid", "CallAnswered", "CallEnded", "CallRinging",
    "CallStarted",
    "CallSummarized", "CallTransferred", "CampaignCall", "CampaignOutcome", "ComplianceAlert", "CustomersImported",
    "DtmfReceived", "Event", "FinalTranscript", "IntentDetected", "Lang", "Leg", "LegConnected",
    "MediaWorkerStatus", "NavigatorHandoff", "PartialTranscript", "ProfileChanged", "RecordingSaved",
    "SentimentMeasured", "Severity", "SpeechStarted", "SuggestedProduct", "Suggestion", "SuggestionFeedback",
    "VisitDetected", "event_from_json", "event_kind", "event_to_json",
]  # fmt: skip


# --- calls ---------------------------------------------------------------------------------------------------


class CallStarted(Event):
    """A call was offered to Voxdesk (inbound INVITE or outbound dial)."""

    kind: Literal["call.started"] = "call.started"
    call_id: CallId
    direction: Literal["inbound", "outbound"]
    line: str
    """The dialed line or campaign trunk, e.g. ``"95500"``."""
    caller: str | None = None
    """E.164 caller number; masked in logs."""
    callee: str | None = None
    """E.164 number an outbound call dials; masked in logs."""
    campaign_id: CampaignId | None = None
    media_worker: int | None = None
    """Index of the media worker that holds the call (bot audio and call commands go to its play channel)."""


class CallAnswered(Event):
    """Media flows: the call was answered by the bot, an agent or the callee."""

    kind: Literal["call.answered"] = "call.answered"
    call_id: CallId
    by: Leg


class CallTransferred(Event):
    """A transfer of the call to a human finished: the agent leg answered (``connected``) or could not be
    reached (``failed``, with the SIP code). Sent by the media worker that bridges the call."""

    kind: Literal["call.transferred"] = "call.transferred"
    call_id: CallId
    skill_group: str
    agent_id: UserId | None = None
    reason: str = ""
    status: Literal["connected", "failed"] = "connected"
    target: str = ""
    """SIP URI the call was transferred to (masked in logs)."""
    sip_code: int | None = None


class LegConnected(Event):
    """One leg of a call has media: the customer's leg, or the agent's leg of a bridged (assisted) call."""

    kind: Literal["call.leg"] = "call.leg"
    call_id: CallId
    leg: Leg
    remote_uri: str = ""
    """SIP URI of the far end of this leg (masked in logs)."""


class RecordingSaved(Event):
    """A call's stereo recording is closed (customer left, agent/bot right); sent just before ``CallEnded``."""

    kind: Literal["call.recording"] = "call.recording"
    call_id: CallId
    path: str
    sha256: str
    """Hex SHA-256 of the file's bytes."""
    duration_ms: int
    size_bytes: int


class CallEnded(Event):
    """The call is over; ``duration_ms`` from answer (or offer, if never answered) to hangup."""

    kind: Literal["call.ended"] = "call.ended"
    call_id: CallId
    duration_ms: int
    reason: Literal["normal", "busy", "no-answer", "declined", "cancelled", "failed", "shutdown"]
    """Why it ended: normal hangup by either side, or why it never connected."""
    sip_code: int | None = None
    """Final SIP status code when one was received or sent (e.g. 200, 486, 480, 487, 603)."""
    recording_path: str | None = None


class DtmfReceived(Event):
    """A DTMF digit (RFC 2833 or SIP INFO)."""

    kind: Literal["call.dtmf"] = "call.dtmf"
    call_id: CallId
    digit: str
    duration_ms: int | None = None


class BotAudio(Event):
    """What the media worker did with one bot utterance (a segment of synthesised or recorded speech): its first
    frame went to the caller (``started``), it was ``paused`` / ``resumed`` for a possible barge-in, it played to
    the end (``completed``) or was cut off (``stopped``: barge-in, a newer prompt, a transfer, hangup)."""

    kind: Literal["bot.audio"] = "bot.audio"
    call_id: CallId
    segment: int
    """The navigator's number for the utterance within the call."""
    state: Literal["started", "paused", "resumed", "completed", "stopped"]
    at_ms: float
    """Wall-clock epoch time (ms) of the media clock tick at which it happened."""
    played_ms: int = 0
    """Audio of the segment played so far (ms)."""


class BotSaid(Event):
    """The navigator spoke ``text`` to the caller (the bot leg of the transcript)."""

    kind: Literal["navigator.said"] = "navigator.said"
    call_id: CallId
    segment: int
    text: str
    prompt_key: str | None = None
    interruptible: bool = True


class NavigatorHandoff(Event):
    """The navigator hands the call to a human: what the agent's assist panel shows on pick-up."""

    kind: Literal["navigator.handoff"] = "navigator.handoff"
    call_id: CallId
    skill_group: str
    reason: str
    intent: QuestionId | None = None
    intent_confidence: float | None = None
    customer_id: CustomerId | None = None
    identity_verified: bool = False
    transcript: list[tuple[str, str]] = Field(default_factory=list)
    """``(speaker, text)`` with speaker ``bot``, ``caller`` or ``dtmf``, in order."""
    slots: list[tuple[str, str]] = Field(default_factory=list)
    """Filled slots and self-service results ``(name, text)``; card and ID digits arrive masked."""


# --- speech --------------------------------------------------------------------------------------------------


class SpeechStarted(Event):
    """Voice activity began on one leg."""

    kind: Literal["speech.started"] = "speech.started"
    call_id: CallId
    leg: Leg
    start_ms: int


class PartialTranscript(Event):
    """An interim hypothesis for the utterance in progress; later partials replace it."""

    kind: Literal["speech.partial"] = "speech.partial"
    call_id: CallId
    leg: Leg
    text: str
    start_ms: int
    end_ms: int
    lang: Lang | None = None


class FinalTranscript(Event):
    """The final text of one utterance (endpointed by VAD)."""

    kind: Literal["speech.final"] = "speech.final"
    call_id: CallId
    leg: Leg
    text: str
    start_ms: int
    end_ms: int
    lang: Lang | None = None
    confidence: float | None = None
    """Mean token probability in [0, 1], when the recogniser gives one."""


# --- understanding and assist --------------------------------------------------------------------------------


class IntentDetected(Event):
    """The customer's question was matched to the question library."""

    kind: Literal["nlu.intent"] = "nlu.intent"
    call_id: CallId
    question_id: QuestionId | None
    """``None`` means out of scope."""
    label: str
    score: float
    text: str


class SuggestedProduct(BaseModel):
    """A product on a suggestion card: already filtered for this customer's suitability, eligibility and consent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    product_id: ProductId
    name_zh: str
    name_en: str
    category: str
    risk_grade: str | None = None
    """R1–R5, ``None`` for ungraded products (cards, loans, protection insurance)."""
    reason_zh: str = ""
    reason_en: str = ""


class Suggestion(Event):
    """Something the assist panel shows the agent: an approved script and suitable products.

    ``script_id``/``script_version`` name the approved script version the text comes from; ``reason`` says why
    ("asked about X; holds Y; risk C3"). ``start_ms``/``end_ms`` are the customer utterance that triggered it.
    """

    kind: Literal["assist.suggestion"] = "assist.suggestion"
    call_id: CallId
    suggestion_id: str = ""
    """Unique id (hex); feedback (*used* / *dismiss*) refers to it."""
    question_id: QuestionId | None = None
    question_title: str = ""
    script_id: ScriptId | None = None
    script_version: int | None = None
    script_title: str = ""
    script_text: str = ""
    product_ids: tuple[ProductId, ...] = ()
    products: tuple[SuggestedProduct, ...] = ()
    reason: str = ""
    score: float = 0.0
    """Ranking score in [0, 1] (the intent's calibrated confidence, adjusted by the ranking rules)."""
    lang: Lang = "zh"
    start_ms: int | None = None
    end_ms: int | None = None


class SuggestionFeedback(Event):
    """The agent marked a suggestion *used* or *dismissed* on the panel (feeds the marketing models)."""

    kind: Literal["assist.feedback"] = "assist.feedback"
    call_id: CallId
    suggestion_id: str
    action: Literal["used", "dismissed"]
    user_id: UserId
    question_id: QuestionId | None = None
    script_id: ScriptId | None = None
    product_ids: tuple[ProductId, ...] = ()


class ComplianceAlert(Event):
    """The agent said something non-compliant (or missed a required phrase), or the customer is dissatisfied.

    ``audience`` is who sees it live: ``agent`` alerts go to the agent's panel and to supervisors, ``supervisor``
    alerts (customer dissatisfaction) only to supervisors. ``quote`` is what was said (as transcribed).
    """

    kind: Literal["assist.alert"] = "assist.alert"
    call_id: CallId
    rule_id: str
    severity: Severity
    message: str
    leg: Leg = "agent"
    start_ms: int | None = None
    end_ms: int | None = None
    alert_id: str = ""
    quote: str = ""
    audience: Literal["agent", "supervisor"] = "agent"


class SentimentMeasured(Event):
    """Sentiment of one utterance and the call's running trend for that leg (both in [-1, 1])."""

    kind: Literal["nlu.sentiment"] = "nlu.sentiment"
    call_id: CallId
    leg: Leg
    score: float
    trend: float
    """Exponentially weighted mean of the leg's utterance scores so far."""
    label: Literal["negative", "neutral", "positive"]
    dissatisfied: bool = False
    start_ms: int | None = None


class CallSummarized(Event):
    """The post-call summary of an assisted call (also written to the customer's timeline)."""

    kind: Literal["assist.summary"] = "assist.summary"
    call_id: CallId
    customer_id: CustomerId | None = None
    reason: str = ""
    resolution: str = ""
    products: tuple[ProductId, ...] = ()
    follow_ups: tuple[str, ...] = ()
    text: str = ""
    source: Literal["extractive", "llm"] = "extractive"


# --- profiles ------------------------------------------------------------------------------------------------


class ProfileChanged(Event):
    """A customer profile was created or changed; ``fields`` lists what changed (names only, never values)."""

    kind: Literal["profile.changed"] = "profile.changed"
    customer_id: CustomerId
    change: Literal["created", "updated", "deleted", "tagged", "consent"]
    fields: tuple[str, ...] = ()
    source: str = ""


class CustomersImported(Event):
    """A CSV import committed ``count`` customers."""

    kind: Literal["profile.imported"] = "profile.imported"
    count: int
    source: str


# --- branch vision -------------------------------------------------------------------------------------------


class VisitDetected(Event):
    """An enrolled, consenting customer (or an anonymous visitor) was seen in a branch."""

    kind: Literal["vision.visit"] = "vision.visit"
    branch_id: BranchId
    camera_id: CameraId
    customer_id: CustomerId | None = None
    vip: bool = False
    zone: str | None = None
    dwell_ms: int | None = None


AnyEvent = Annotated[
    CallStarted
    | CallRinging
    | CallAnswered
    | CallTransferred
    | LegConnected
    | RecordingSaved
    | CallEnded
    | DtmfReceived
    | BotAudio
    | BotSaid
    | NavigatorHandoff
    | SpeechStarted
    | PartialTranscript
    | FinalTranscript
    | IntentDetected
    | Suggestion
    | SuggestionFeedback
    | ComplianceAlert
    | SentimentMeasured
    | CallSummarized
    | ProfileChanged
    | CustomersImported
    | VisitDetected
    | CampaignCall
    | AnsweringMachine
    | CampaignOutcome
    | MediaWorkerStatus,
    Field(discriminator="kind"),
]

_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)

EVENT_KINDS: tuple[str, ...] = (
    "call.started",
    "call.ringing",
    "call.answered",
    "call.transferred",
    "call.leg",
    "call.recording",
    "call.ended",
    "call.dtmf",
    "bot.audio",
    "navigator.said",
    "navigator.handoff",
    "speech.started",
    "speech.partial",
    "speech.final",
    "nlu.intent",
    "assist.suggestion",
    "assist.feedback",
    "assist.alert",
    "nlu.sentiment",
    "assist.summary",
    "profile.changed",
    "profile.imported",
    "vision.visit",
    "dialer.call",
    "call.amd",
    "dialer.outcome",
    "media.status",
)


def event_kind(event: Event) -> str:
    """The wire name of ``event`` (also its bus topic)."""
    kind = getattr(event, "kind", None)
    if not isinstance(kind, str):
        raise TypeError(f"{type(event).__name__} has no kind")
    return kind


def event_to_json(event: Event) -> bytes:
    """Serialise an event to UTF-8 JSON bytes."""
    return event.model_dump_json().encode()


def event_from_json(data: bytes | str) -> AnyEvent:
    """Parse JSON produced by :func:`event_to_json`; raises ``pydantic.ValidationError`` on bad input."""
    return _ADAPTER.validate_json(data)
