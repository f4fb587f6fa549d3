"""The quality-inspection vocabulary: transcripts of whole calls, findings, scores.

Times are milliseconds from the start of the recording. A call has two parties, ``agent`` (the bank's side: a
human agent or the voice navigator) and ``customer``; a stereo Voxdesk recording carries the customer on the left
channel and the agent on the right, a mono recording is split between them by diarization.

Everything here is immutable and picklable: results cross process boundaries (the local process pool, Celery).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from qa.scorecard import ScoreResult

__all__ = [
    "CHANNELS",
    "SEVERITIES",
    "CallTranscript",
    "Channel",
    "Direction",
    "Finding",
    "Inspection",
    "RecordingMeta",
    "Severity",
    "SpeakerTurn",
    "Turn",
    "Word",
]

Channel = Literal["agent", "customer"]
CHANNELS: tuple[Channel, ...] = ("agent", "customer")
Severity = Literal["info", "minor", "major", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "minor", "major", "critical")
"""Severities in increasing order; ``info`` findings (e.g. the call reason) never flag a call."""
Direction = Literal["inbound", "outbound"]


@dataclass(frozen=True)
class Word:
    """One recognised word (a Chinese character group as Whisper emits it) with its times (ms)."""

    text: str
    start_ms: int
    end_ms: int
    probability: float | None = None


@dataclass(frozen=True)
class Turn:
    """One stretch of speech by one party: a recogniser segment (ms from the start of the recording)."""

    channel: Channel
    text: str
    start_ms: int
    end_ms: int
    lang: Literal["zh", "en"] = "en"
    words: tuple[Word, ...] = ()
    confidence: float | None = None
    """Mean token probability in [0, 1], when known."""

    @property
    def duration_ms(self) -> int:
        return max(0, self.end_ms - self.start_ms)


@dataclass(frozen=True)
class SpeakerTurn:
    """A diarization result: ``speaker`` (an anonymous label such as ``"spk0"``) talks from ``start_ms`` to
    ``end_ms``. Turns of different speakers may overlap."""

    speaker: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class CallTranscript:
    """A whole call, both parties, turns ordered by start time."""

    turns: tuple[Turn, ...]
    duration_ms: int
    lang: Literal["zh", "en"]
    """The call's language: the one most of its speech was recognised in."""
    source: Literal["stereo", "diarized", "mono"] = "stereo"
    """How the parties were told apart: recording channels, diarization of a mono file, or not at all (one
    speaker, treated as the agent)."""

    def of(self, channel: Channel) -> tuple[Turn, ...]:
        """The turns of one party, in order."""
        return tuple(t for t in self.turns if t.channel == channel)


@dataclass(frozen=True)
class Finding:
    """What one rule found in one call.

    ``evidence`` is the quote (or a short measured statement, e.g. "12.4 s of silence") that justifies it; ``start_ms``
    and ``end_ms`` locate it in the recording; ``channel`` is the party it is about (``None`` for whole-call
    findings such as an overlong call or a repeat call)."""

    rule_id: str
    severity: Severity
    evidence: str
    start_ms: int
    end_ms: int
    channel: Channel | None = None
    detail: str = ""
    """Machine-readable specifics (a phrase id, an intent id, a product id, a measured value)."""


@dataclass(frozen=True)
class RecordingMeta:
    """What is known about a recording besides its audio: from the call store, or from an import's metadata CSV."""

    call_id: str
    agent_id: str | None = None
    customer_phone: str | None = None
    """E.164 when known; masked in logs."""
    started_at: datetime | None = None
    direction: Direction = "inbound"
    team: str | None = None
    customer_id: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Inspection:
    """The result of inspecting one recording: transcript, findings, score and where the time went."""

    meta: RecordingMeta
    path: str
    sha256: str
    transcript: CallTranscript
    findings: tuple[Finding, ...]
    score: ScoreResult | None
    flagged: bool
    timings: dict[str, float] = field(default_factory=dict)
    """Wall seconds per stage (``load``, ``diarize``, ``transcribe``, ``rules``)."""
    rules_version: str = ""

    @property
    def audio_ms(self) -> int:
        return self.transcript.duration_ms
