"""The QA rules file: which rules run, their thresholds, phrases and severities (YAML, Chinese and English).

:func:`load_rules` reads and validates a rules file (the shipped default is ``qa/rules.yaml``); every mistake is a
:class:`core.errors.ConfigError` naming the file and the field (``forbidden.phrases[2].en: ...``). The model is
immutable; one :class:`RulesConfig` is shared by every inspection of a batch. Blocking file I/O on the caller's
thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.errors import ConfigError
from nlu.sentiment import CueKind
from qa.models import Severity

__all__ = [
    "DEFAULT_RULES_PATH",
    "RULE_IDS",
    "Bilingual",
    "ComplaintRule",
    "EmotionRule",
    "ForbiddenGroup",
    "ForbiddenRule",
    "MarketingNeed",
    "MarketingRule",
    "OverlongRule",
    "PiiRule",
    "ReasonRule",
    "RepeatRule",
    "RepeatWindow",
    "RequiredRule",
    "RequiredStep",
    "RulesConfig",
    "SilenceRule",
    "SpeechRateRule",
    "TalkOverRule",
    "load_rules",
]

DEFAULT_RULES_PATH: Final = Path(__file__).with_name("rules.yaml")

RULE_IDS: Final[tuple[str, ...]] = (
    "forbidden_phrase",
    "greeting_missing",
    "identity_missing",
    "disclosure_missing",
    "closing_missing",
    "script_order",
    "long_silence",
    "overlong_call",
    "talk_over",
    "speech_rate",
    "agent_emotion",
    "customer_complaint",
    "repeat_call",
    "call_reason",
    "missed_marketing",
    "agent_pii",
)
"""Every rule id a finding can carry; scorecard items refer to these."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Bilingual(_Model):
    """Phrases per language; matching is tolerant of small ASR errors (see :class:`nlu.phrases.PhraseMatcher`)."""

    en: tuple[str, ...] = ()
    zh: tuple[str, ...] = ()

    def all(self) -> tuple[str, ...]:
        return self.en + self.zh


class ForbiddenGroup(_Model):
    """One kind of banned wording, e.g. promises of returns, or abusive words."""

    id: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    severity: Severity = "critical"
    phrases: Bilingual
    allow_negated: bool = True
    """A negated mention ("this fund is not risk free", "不保本") is not a violation."""


class ForbiddenRule(_Model):
    enabled: bool = True
    groups: tuple[ForbiddenGroup, ...] = ()


class RequiredStep(_Model):
    """A step of the approved call script the agent must say, found by any of ``phrases``."""

    id: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    rule: str
    """Rule id of the finding when the step is missing (e.g. ``greeting_missing``)."""
    severity: Severity = "minor"
    phrases: Bilingual
    when: Bilingual | None = None
    """Only required when the agent says one of these (e.g. account details → identity verification)."""
    within_first_s: float | None = Field(default=None, gt=0)
    """Must start within this many seconds of the agent's first word."""
    within_last_s: float | None = Field(default=None, gt=0)
    """Must end within this many seconds of the agent's last word."""
    before_when: bool = False
    """Must come before the first ``when`` phrase (identity checks precede account details), else ``order_rule``."""
    ordered: bool = True
    """Takes part in the script order: it must not come before an earlier ordered step of the list (the first
    occurrence counts; the last one for steps with ``within_last_s``)."""


class RequiredRule(_Model):
    enabled: bool = True
    steps: tuple[RequiredStep, ...] = ()
    order_rule: str = "script_order"
    order_severity: Severity = "minor"
    min_agent_speech_s: float = 5.0
    """Calls where the agent says less than this (s) are not checked (an abandoned call has no script)."""


class SilenceRule(_Model):
    enabled: bool = True
    agent_max_s: float = Field(default=8.0, gt=0)
    """Dead air while the customer waits for the agent (s)."""
    customer_max_s: float = Field(default=15.0, gt=0)
    """Dead air while the agent waits for the customer (s)."""
    severity: Severity = "minor"


class OverlongRule(_Model):
    enabled: bool = True
    max_s: float = Field(default=360.0, gt=0)
    severity: Severity = "minor"


class TalkOverRule(_Model):
    enabled: bool = True
    min_overlap_s: float = Field(default=1.0, gt=0)
    """The agent starts while the customer speaks and both talk at the same time at least this long (s)."""
    max_pause_s: float = Field(default=1.0, ge=0)
    """Pauses shorter than this (s) inside a party's speech do not end its stretch."""
    severity: Severity = "minor"


class SpeechRateRule(_Model):
    enabled: bool = True
    max_wpm_en: float = Field(default=190.0, gt=0)
    max_cpm_zh: float = Field(default=330.0, gt=0)
    min_speech_s: float = Field(default=15.0, ge=0)
    """Rates over less agent speech than this (s) are not judged."""
    max_pause_s: float = Field(default=1.0, ge=0)
    """Pauses shorter than this (s) inside the agent's speech count as speaking time (the conventional speaking
    rate, not the articulation rate between word boundaries, which runs ~30 % higher)."""
    severity: Severity = "minor"


class EmotionRule(_Model):
    enabled: bool = True
    phrases: Bilingual = Bilingual()
    use_sentiment: bool = True
    """Also flag agent turns with anger cues of the sentiment lexicon (shouting, ``!!``, insults)."""
    ignore_cues: tuple[str, ...] = ()
    """Sentiment anger cues that are not anger when an agent says them (fraud warnings: "scam"); matched
    case-insensitively."""
    typographic_cues: bool = False
    """Also count the lexicon's typographic anger cues (a word in capitals, ``!!``). Off: in a transcript the
    recogniser writes them (acronyms, misheard words in capitals), not the agent."""
    empathy: Bilingual = Bilingual()
    """Empathy phrases ("I understand how frustrating"): sentiment cues in such a turn are the customer's feelings
    named back, not the agent's; the rule's own phrases still count there."""
    severity: Severity = "major"


class ComplaintRule(_Model):
    enabled: bool = True
    phrases: Bilingual = Bilingual()
    use_sentiment: bool = True
    """Also flag customer turns the sentiment scorer finds dissatisfied through a cue of ``cue_kinds``."""
    cue_kinds: tuple[CueKind, ...] = ("complaint", "regulator", "escalation")
    """The sentiment cue kinds (:data:`nlu.sentiment.CueKind`) that make a dissatisfied turn a complaint."""
    severity: Severity = "major"


class RepeatWindow(_Model):
    hours: float = Field(gt=0)
    severity: Severity


class RepeatRule(_Model):
    enabled: bool = True
    windows: tuple[RepeatWindow, ...] = (
        RepeatWindow(hours=24, severity="major"),
        RepeatWindow(hours=72, severity="minor"),
    )


class ReasonRule(_Model):
    enabled: bool = True
    min_confidence: float = Field(default=0.35, ge=0, le=1)
    """Below this the reason is recorded as unknown."""


class MarketingNeed(_Model):
    """A need a customer can voice and the products that answer it."""

    id: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    phrases: Bilingual
    products: tuple[str, ...] = Field(min_length=1)
    """Product ids of the catalog."""
    offer_phrases: Bilingual = Bilingual()
    """Wordings that count as offering one of the products, besides the products' catalog names."""


class MarketingRule(_Model):
    enabled: bool = True
    needs: tuple[MarketingNeed, ...] = ()
    severity: Severity = "minor"


class PiiRule(_Model):
    enabled: bool = True
    kinds: tuple[str, ...] = ("card", "id", "phone")
    severity: Severity = "critical"


class RulesConfig(_Model):
    """The whole rules file."""

    version: int = 1
    bank_names: tuple[str, ...] = ()
    forbidden: ForbiddenRule = ForbiddenRule()
    required: RequiredRule = RequiredRule()
    silence: SilenceRule = SilenceRule()
    overlong: OverlongRule = OverlongRule()
    talk_over: TalkOverRule = TalkOverRule()
    speech_rate: SpeechRateRule = SpeechRateRule()
    emotion: EmotionRule = EmotionRule()
    complaint: ComplaintRule = ComplaintRule()
    repeat: RepeatRule = RepeatRule()
    call_reason: ReasonRule = ReasonRule()
    marketing: MarketingRule = MarketingRule()
    pii: PiiRule = PiiRule()

    @model_validator(mode="after")
    def _known_rules(self) -> RulesConfig:
        for step in self.required.steps:
            if step.rule not in RULE_IDS:
                raise ValueError(f"required step {step.id!r}: unknown rule {step.rule!r}")
        if self.required.order_rule not in RULE_IDS:
            raise ValueError(f"unknown order rule {self.required.order_rule!r}")
        ids = [g.id for g in self.forbidden.groups]
        if len(ids) != len(set(ids)):
            raise ValueError("forbidden group ids must be unique")
        return self


def load_rules(path: Path | None = None) -> RulesConfig:
    """Read and validate a rules file (default: the shipped ``qa/rules.yaml``); raises :class:`ConfigError`."""
    source = path or DEFAULT_RULES_PATH
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the QA rules file {source}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the rules file must be a mapping")
    try:
        return RulesConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ConfigError(f"{source}: {where}: {first['msg']}") from exc
