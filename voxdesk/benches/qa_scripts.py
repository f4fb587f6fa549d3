"""The labelled QA call set's scripts (``voxdesk/benches/qa_calls.yaml``): loading, validation, the timeline of a
call and the labels of its planted findings.

A call is a list of turns (``agent``/``customer`` text, an optional pause before it, an optional overlap with the
previous turn for talk-over, an optional speaking rate) and the findings a correct inspector must produce
(``{rule, turn}``; ``call_reason`` also names the demo question id). English only: no Chinese TTS voice is
installed. Everything here is pure (no audio); the synthesis is in :mod:`voxdesk.benches.qa_set`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import ConfigError
from qa.models import CallTranscript, Channel, Turn, Word
from qa.rules_config import RULE_IDS

__all__ = [
    "DEFAULT_SCRIPTS_PATH",
    "GAP_JITTER_S",
    "GAP_S",
    "METADATA_HEADER",
    "WHOLE_CALL_RULES",
    "CallScript",
    "Expected",
    "Label",
    "ScriptTurn",
    "Span",
    "build_timeline",
    "estimate_ms",
    "expected_channel",
    "ideal_transcript",
    "label_call",
    "load_scripts",
    "metadata_row",
]

DEFAULT_SCRIPTS_PATH: Final = Path(__file__).with_name("qa_calls.yaml")
GAP_S: Final = 0.5
"""Default pause between turns (s): a natural hand-over."""
GAP_JITTER_S: Final = (0.5, 1.1)
"""Range of the default pause (s) when the timeline is seeded: drawn per turn, uniformly."""
METADATA_HEADER: Final = (
    "call_id",
    "agent_id",
    "team",
    "customer_phone",
    "start_time",
    "direction",
    "file",
    "channels",
)
WHOLE_CALL_RULES: Final = frozenset(
    {
        "overlong_call",
        "repeat_call",
        "greeting_missing",
        "closing_missing",
        "identity_missing",
        "disclosure_missing",
        "script_order",
        "speech_rate",
        "call_reason",
    }
)
"""Rules matched per call rather than by time."""
_AGENT_RULES: Final = frozenset(
    {
        "forbidden_phrase",
        "greeting_missing",
        "identity_missing",
        "disclosure_missing",
        "closing_missing",
        "script_order",
        "talk_over",
        "speech_rate",
        "agent_emotion",
        "agent_pii",
    }
)
_CUSTOMER_RULES: Final = frozenset({"customer_complaint", "missed_marketing", "call_reason"})


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ScriptTurn(_Model):
    """One turn: who speaks, what, and how it sits on the timeline."""

    speaker: Channel
    text: str = Field(min_length=1)
    pause_s: float | None = Field(default=None, ge=0, le=120)
    """Silence before this turn (s); default :data:`GAP_S`."""
    overlap_s: float | None = Field(default=None, gt=0, le=10)
    """Start this many seconds before the previous turn ends (talk-over)."""
    rate: float = Field(default=1.0, gt=0.4, le=2.5)
    """Speaking rate (1 = normal; 1.5 = 50 % faster)."""

    @model_validator(mode="after")
    def _one_of(self) -> ScriptTurn:
        if self.pause_s is not None and self.overlap_s is not None:
            raise ValueError("a turn has either pause_s or overlap_s, not both")
        return self


class Expected(_Model):
    """A finding a correct inspector must produce: the rule and the turn it is about (``None``: the whole call)."""

    rule: str
    turn: int | None = Field(default=None, ge=0)
    question: str | None = None
    """The question id of a ``call_reason`` finding."""

    @field_validator("rule")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in RULE_IDS:
            raise ValueError(f"unknown rule {value!r}")
        return value


class CallScript(_Model):
    """One scripted call."""

    id: str = Field(pattern=r"^[a-z0-9_-]{1,64}$")
    agent_id: str
    team: str
    customer_phone: str
    start_time: datetime
    direction: Literal["inbound", "outbound"] = "inbound"
    turns: tuple[ScriptTurn, ...] = Field(min_length=2)
    expected: tuple[Expected, ...] = ()
    audio: Literal["wav", "flac", "mono"] = "wav"
    """How the recording is written: stereo WAV, stereo FLAC, or a mono WAV mix (to be diarized)."""
    note: str = ""
    """What the call plants (for people reading the file)."""

    @model_validator(mode="after")
    def _check(self) -> CallScript:
        if self.start_time.tzinfo is None:
            raise ValueError("start_time needs a UTC offset")
        if self.turns[0].overlap_s is not None:
            raise ValueError("the first turn cannot overlap")
        reasons = [e for e in self.expected if e.rule == "call_reason"]
        if len(reasons) != 1 or not reasons[0].question:
            raise ValueError("every call needs exactly one call_reason with its question id")
        for e in self.expected:
            if e.turn is not None and e.turn >= len(self.turns):
                raise ValueError(f"{e.rule}: turn {e.turn} does not exist")
            if e.rule not in WHOLE_CALL_RULES and e.turn is None:
                raise ValueError(f"{e.rule} needs the turn it is about")
        return self

    @property
    def reason(self) -> str:
        return next(str(e.question) for e in self.expected if e.rule == "call_reason")


def load_scripts(path: Path | None = None, *, question_ids: frozenset[str] | None = None) -> list[CallScript]:
    """Read and validate the scripts file (default :data:`DEFAULT_SCRIPTS_PATH`); with ``question_ids`` every
    call reason must be one of them. Raises :class:`ConfigError` naming the call and field."""
    source = path or DEFAULT_SCRIPTS_PATH
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read the QA call scripts {source}: {exc}") from exc
    items = raw.get("calls") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        raise ConfigError(f"{source}: expected a mapping with a 'calls' list")
    calls: list[CallScript] = []
    for n, item in enumerate(items):
        try:
            call = CallScript.model_validate(item)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(call)"
            name = item.get("id", n) if isinstance(item, dict) else n
            raise ConfigError(f"{source}: call {name}: {where}: {first['msg']}") from exc
        if question_ids is not None and call.reason not in question_ids:
            raise ConfigError(f"{source}: call {call.id}: unknown question id {call.reason!r}")
        calls.append(call)
    ids = [c.id for c in calls]
    if len(ids) != len(set(ids)):
        raise ConfigError(f"{source}: call ids must be unique")
    return calls


@dataclass(frozen=True)
class Span:
    """Where a turn's audio sits in the recording (ms)."""

    start_ms: int
    end_ms: int


def build_timeline(
    turns: Sequence[ScriptTurn], durations_ms: Sequence[int], *, lead_ms: int = 300, seed: str | None = None
) -> list[Span]:
    """Place the turns one after another: each starts ``pause_s`` after the previous turn ends, or ``overlap_s``
    before it ends (never before the previous turn's start). A turn without either waits :data:`GAP_S`, or, with a
    ``seed`` (the call id), a pause drawn from :data:`GAP_JITTER_S` by a generator seeded with it (the same seed
    gives the same timeline). ``durations_ms``: each turn's audio length (ms)."""
    if len(turns) != len(durations_ms):
        raise ValueError("one duration per turn")
    rng = random.Random(seed) if seed is not None else None  # noqa: S311 - pauses, not secrets
    spans: list[Span] = []
    for turn, dur in zip(turns, durations_ms, strict=True):
        if not spans:
            start = lead_ms + round((turn.pause_s or 0.0) * 1000)
        else:
            prev = spans[-1]
            if turn.overlap_s is not None:
                start = max(prev.start_ms + 1, prev.end_ms - round(turn.overlap_s * 1000))
            else:
                default = rng.uniform(*GAP_JITTER_S) if rng is not None else GAP_S
                pause = default if turn.pause_s is None else turn.pause_s
                start = max(s.end_ms for s in spans) + round(pause * 1000)
        spans.append(Span(start, start + max(0, int(dur))))
    return spans


def expected_channel(rule: str, turn: ScriptTurn | None) -> Channel | None:
    """The party a finding of ``rule`` is about (``None`` for whole-call findings: overlong, repeat call)."""
    if rule == "long_silence":
        return turn.speaker if turn is not None else None
    if rule in _AGENT_RULES:
        return "agent"
    if rule in _CUSTOMER_RULES:
        return "customer"
    return None


@dataclass(frozen=True)
class Label:
    """An expected finding located in the synthesised recording (ms)."""

    rule: str
    channel: Channel | None
    start_ms: int
    end_ms: int
    question: str | None = None

    def as_json(self) -> dict[str, object]:
        out: dict[str, object] = {"rule": self.rule, "channel": self.channel}
        out.update(start_ms=self.start_ms, end_ms=self.end_ms)
        if self.question:
            out["question"] = self.question
        return out


def label_call(call: CallScript, spans: Sequence[Span], duration_ms: int) -> list[Label]:
    """The expected findings with times: a turn's span; the silence before it (``long_silence``); the overlap
    with the previous turn (``talk_over``); the whole call when no turn is named."""
    out: list[Label] = []
    for e in call.expected:
        turn = call.turns[e.turn] if e.turn is not None else None
        channel = expected_channel(e.rule, turn)
        if e.turn is None:
            start, end = 0, duration_ms
        elif e.rule == "long_silence" and e.turn > 0:
            start, end = max(s.end_ms for s in spans[: e.turn]), spans[e.turn].start_ms
        elif e.rule == "long_silence":
            start, end = 0, spans[0].start_ms
        elif e.rule == "talk_over" and e.turn > 0:
            start, end = spans[e.turn].start_ms, min(spans[e.turn - 1].end_ms, spans[e.turn].end_ms)
        else:
            start, end = spans[e.turn].start_ms, spans[e.turn].end_ms
        out.append(Label(e.rule, channel, start, end, e.question))
    return out


def metadata_row(call: CallScript, file: str, channels: Literal["stereo", "mono"]) -> dict[str, str]:
    """The call's row of ``metadata.csv`` (columns :data:`METADATA_HEADER`)."""
    return {
        "call_id": call.id,
        "agent_id": call.agent_id,
        "team": call.team,
        "customer_phone": call.customer_phone,
        "start_time": call.start_time.isoformat(),
        "direction": call.direction,
        "file": file,
        "channels": channels,
    }


def estimate_ms(turn: ScriptTurn, *, wpm: float = 160.0) -> int:
    """A turn's speaking time (ms) at ``wpm`` words per minute times its rate: for checks without audio."""
    words = max(1, len(turn.text.split()))
    return int(words * 60_000 / (wpm * turn.rate))


def ideal_transcript(call: CallScript, spans: Sequence[Span]) -> CallTranscript:
    """What a perfect recogniser would give for ``call`` on ``spans``: the script's text, words evenly spread
    over each turn. Used to check that the shipped rules find exactly the planted findings."""
    turns: list[Turn] = []
    for turn, span in zip(call.turns, spans, strict=True):
        pieces = turn.text.split()
        step = (span.end_ms - span.start_ms) / max(1, len(pieces))
        words = tuple(
            Word(w, span.start_ms + int(i * step), span.start_ms + int((i + 1) * step) - 20)
            for i, w in enumerate(pieces)
        )
        turns.append(Turn(turn.speaker, turn.text, span.start_ms, span.end_ms, "en", words))
    turns.sort(key=lambda t: (t.start_ms, t.end_ms))
    duration = max(s.end_ms for s in spans) + 800
    return CallTranscript(tuple(turns), duration, "en", "stereo")
