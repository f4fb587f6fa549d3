"""Customer dissatisfaction during an assisted call: per-utterance sentiment, the running trend, supervisor alerts.

One :class:`DissatisfactionTracker` per call. Each customer-leg :class:`~core.events.FinalTranscript` is scored with
a :class:`~nlu.sentiment.SentimentScorer`; the tracker keeps an exponentially weighted mean of the scores (the
*trend* the supervisor view draws) and answers a :class:`~core.events.SentimentMeasured` for every utterance, plus
at most one :class:`~core.events.ComplianceAlert` (``audience="supervisor"``, ``leg="customer"``) when:

* ``customer.escalation`` (critical): the customer threatens to go outside the bank (regulator, 12378, 金融监管总局,
  消协, the press, a lawyer or court: nlu's ``regulator`` cues plus :data:`EXTERNAL_ESCALATION_PHRASES`) or states a
  formal complaint (我要投诉, "I want to complain": :data:`COMPLAINT_DEMAND_PHRASES`);
* ``customer.complaint`` (warning): any other complaint cue (投诉你们, 差评, "complain about") or a demand for a
  supervisor or manager (nlu's ``escalation`` cues);
* ``customer.dissatisfied`` (warning): the trend is at or below :attr:`MoodConfig.trend_threshold` after at least
  :attr:`MoodConfig.min_utterances` utterances and the latest utterance is itself negative.

Asking *how* to complain ("请问怎么投诉", "how do I make a complaint") is a request: its complaint cues raise
nothing, unless the utterance names the regulator or another outside body. Each rule fires at most once per
:attr:`MoodConfig.cooldown_ms` of call time. One utterance raises at most one alert: escalation before complaint
before trend; an utterance that matches a cue rule (even one in its cool-down) never raises the trend alert.

Pure and synchronous, no I/O; not thread-safe (one tracker is driven by its call's session).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from core.errors import ConfigError
from core.events import ComplianceAlert, Event, FinalTranscript, Lang, SentimentMeasured
from core.pii import mask_text
from nlu.sentiment import SentimentResult, SentimentScorer

__all__ = [
    "COMPLAINT_DEMAND_PHRASES",
    "EXTERNAL_ESCALATION_PHRASES",
    "RULE_COMPLAINT",
    "RULE_DISSATISFIED",
    "RULE_ESCALATION",
    "DissatisfactionTracker",
    "MoodConfig",
    "MoodState",
    "classify_cues",
]

RULE_ESCALATION: Final = "customer.escalation"
RULE_COMPLAINT: Final = "customer.complaint"
RULE_DISSATISFIED: Final = "customer.dissatisfied"
MoodRule = Literal["customer.escalation", "customer.complaint", "customer.dissatisfied"]

EXTERNAL_ESCALATION_PHRASES: Final[dict[str, tuple[str, ...]]] = {
    "zh": (
        "银监会", "保监会", "证监会", "人民银行", "人行", "央行", "打12345", "12345热线", "市民热线", "电视台",
        "报社", "发微博", "微博上", "抖音上", "网上曝光", "发到网上", "法律途径", "法律程序", "报警",
    ),
    "en": (
        "watchdog", "central bank", "fca", "cfpb", "pboc", "consumer association", "consumer council",
        "consumer protection", "social media", "twitter", "the papers", "attorney", "see you in court",
        "take you to court", "report this bank", "go public", "going public",
    ),
}  # fmt: skip
"""Outside bodies and threats that nlu's ``regulator`` cues do not cover (zh, en; English on word boundaries)."""

COMPLAINT_DEMAND_PHRASES: Final[dict[str, tuple[str, ...]]] = {
    "zh": ("我要投诉", "我要举报", "我要去投诉", "我一定要投诉", "我肯定要投诉", "我要正式投诉"),
    "en": (
        "i want to complain", "i want to make a complaint", "i want to make a formal complaint", "formal complaint",
        "i'm making a complaint", "i am making a complaint", "i'd like to make a complaint",
    ),
}  # fmt: skip
"""An explicit statement that the customer is complaining (escalation, unless asked as a process question)."""


def _compile(phrases: dict[str, tuple[str, ...]]) -> re.Pattern[str]:
    en = [rf"(?<![a-z]){re.escape(p)}(?![a-z])" for p in phrases["en"]]
    zh = [re.escape(p) for p in phrases["zh"]]
    return re.compile("|".join(sorted(en + zh, key=len, reverse=True)), re.IGNORECASE)


_EXTERNAL = _compile(EXTERNAL_ESCALATION_PHRASES)
_DEMAND = _compile(COMPLAINT_DEMAND_PHRASES)
_PROCESS_QUESTION = re.compile(
    r"(怎么|怎样|如何|流程|渠道|哪里|哪儿|电话|去哪).{0,4}(投诉|举报)|(投诉|举报).{0,4}(流程|渠道|电话|方式|途径)"
    r"|how (do|can|would|should) i (make|file|lodge|raise|submit) a (formal )?complaint"
    r"|how (do|can|would|should) i complain|where (do|can) i complain|who (do|can) i complain to"
    r"|complaints? (process|procedure|line|number|channel)",
    re.IGNORECASE,
)
"""Asking *how* to complain (mirrors nlu's process-question rule, a little wider)."""

_MESSAGES: Final[dict[MoodRule, dict[Lang, str]]] = {
    "customer.escalation": {
        "zh": "客户表示要向监管、媒体或法律途径投诉，请主管立即介入",
        "en": "The customer threatens to complain to the regulator, the media or a lawyer: supervisor, step in now",
    },
    "customer.complaint": {
        "zh": "客户表达投诉或要求找主管，请关注",
        "en": "The customer is complaining or asking for a manager: please keep an eye on this call",
    },
    "customer.dissatisfied": {
        "zh": "客户情绪持续走低（趋势 {trend:+.2f}），请关注",
        "en": "The customer's mood keeps falling (trend {trend:+.2f}): please keep an eye on this call",
    },
}
_SEVERITY: Final[dict[MoodRule, Literal["warning", "critical"]]] = {
    "customer.escalation": "critical",
    "customer.complaint": "warning",
    "customer.dissatisfied": "warning",
}
_QUOTE_CHARS: Final = 80


@dataclass(frozen=True)
class MoodConfig:
    """Thresholds of the dissatisfaction tracker (times in call milliseconds)."""

    alpha: float = 0.4
    """EWMA smoothing: ``trend = alpha * score + (1 - alpha) * previous trend`` (the first trend is the score)."""
    trend_threshold: float = -0.35
    """A trend at or below this (in [-1, 1]) raises ``customer.dissatisfied``."""
    min_utterances: int = 2
    """Customer utterances needed before the trend may alert."""
    cooldown_ms: int = 60_000
    """After a rule fired, the same rule stays quiet for this long (measured on utterance ``start_ms``)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise ConfigError("Mood alpha must be in (0, 1].", alpha=self.alpha)
        if not -1.0 <= self.trend_threshold <= 1.0:
            raise ConfigError("Mood trend threshold must be in [-1, 1].", trend_threshold=self.trend_threshold)
        if self.min_utterances < 1 or self.cooldown_ms < 0:
            raise ConfigError(
                "Mood min_utterances must be >= 1 and cooldown_ms >= 0.",
                min_utterances=self.min_utterances,
                cooldown_ms=self.cooldown_ms,
            )


@dataclass(frozen=True)
class MoodState:
    """A snapshot of one call's customer mood, for the supervisor view."""

    utterances: int
    """Customer utterances scored so far."""
    last_score: float | None
    """Score of the latest utterance in [-1, 1]; ``None`` before the first."""
    trend: float | None
    """The running EWMA of scores in [-1, 1]; ``None`` before the first utterance."""
    negative_utterances: int
    """Utterances judged dissatisfied."""
    alert_counts: dict[str, int]
    """Alerts raised so far per rule id."""
    last_label: Literal["negative", "neutral", "positive"] | None = None


def _new_alert_id() -> str:
    return uuid.uuid4().hex


def _quote(text: str) -> str:
    text = mask_text(" ".join(text.split()))
    return text if len(text) <= _QUOTE_CHARS else text[: _QUOTE_CHARS - 1] + "…"


def classify_cues(text: str, result: SentimentResult) -> MoodRule | None:
    """The cue rule an utterance triggers (``customer.escalation`` or ``customer.complaint``), or ``None``.

    ``result`` is the scorer's answer for ``text``; its cues are used, plus this module's own phrase lists.
    """
    kinds = {c.kind for c in result.cues}
    external = "regulator" in kinds or bool(_EXTERNAL.search(text))
    if external:
        return RULE_ESCALATION
    if _PROCESS_QUESTION.search(text):
        return "customer.complaint" if "escalation" in kinds else None
    if _DEMAND.search(text):
        return RULE_ESCALATION
    if kinds & {"complaint", "escalation"}:
        return RULE_COMPLAINT
    return None


class DissatisfactionTracker:
    """Tracks one call's customer mood and raises supervisor alerts (see the module docstring).

    ``lang`` is the language of alert messages; utterances are scored in their own ``lang`` (detected when
    ``None``). ``new_id`` makes alert ids (random hex by default; inject a counter in tests).
    """

    def __init__(
        self,
        scorer: SentimentScorer,
        *,
        lang: Lang = "zh",
        config: MoodConfig | None = None,
        new_id: Callable[[], str] = _new_alert_id,
    ) -> None:
        self._scorer = scorer
        self._lang: Lang = lang
        self._config = config or MoodConfig()
        self._new_id = new_id
        self._utterances = 0
        self._last_score: float | None = None
        self._last_label: Literal["negative", "neutral", "positive"] | None = None
        self._trend: float | None = None
        self._negative = 0
        self._alert_counts: dict[str, int] = {}
        self._last_alert_ms: dict[str, int] = {}

    @property
    def config(self) -> MoodConfig:
        """The thresholds in force."""
        return self._config

    @property
    def utterances(self) -> int:
        """Customer utterances scored so far."""
        return self._utterances

    @property
    def last_score(self) -> float | None:
        """Score of the latest customer utterance in [-1, 1], ``None`` before the first."""
        return self._last_score

    @property
    def trend(self) -> float | None:
        """The running EWMA of customer scores in [-1, 1], ``None`` before the first utterance."""
        return self._trend

    @property
    def negative_utterances(self) -> int:
        """Customer utterances judged dissatisfied so far."""
        return self._negative

    @property
    def alert_counts(self) -> dict[str, int]:
        """Alerts raised so far per rule id (a copy)."""
        return dict(self._alert_counts)

    @property
    def state(self) -> MoodState:
        """A snapshot for the supervisor view."""
        return MoodState(
            utterances=self._utterances,
            last_score=self._last_score,
            trend=self._trend,
            negative_utterances=self._negative,
            alert_counts=dict(self._alert_counts),
            last_label=self._last_label,
        )

    def observe(self, final: FinalTranscript) -> list[Event]:
        """Score one final transcript; returns ``[SentimentMeasured]`` plus at most one ``ComplianceAlert``.

        Finals of other legs and empty utterances are ignored (``[]``). Cool-downs are measured on
        ``final.start_ms`` (ms from the call's start).
        """
        text = final.text.strip()
        if final.leg != "customer" or not text:
            return []
        result = self._scorer.score(text, final.lang)
        alpha = self._config.alpha
        trend = result.score if self._trend is None else alpha * result.score + (1.0 - alpha) * self._trend
        self._trend = trend
        self._last_score = result.score
        self._last_label = result.label
        self._utterances += 1
        if result.dissatisfied:
            self._negative += 1
        events: list[Event] = [
            SentimentMeasured(
                call_id=final.call_id,
                leg="customer",
                score=result.score,
                trend=round(trend, 4),
                label=result.label,
                dissatisfied=result.dissatisfied,
                start_ms=final.start_ms,
            )
        ]
        alert = self._alert_for(final, text, result, trend)
        if alert is not None:
            events.append(alert)
        return events

    def _alert_for(
        self, final: FinalTranscript, text: str, result: SentimentResult, trend: float
    ) -> ComplianceAlert | None:
        cue_rule = classify_cues(text, result)
        if cue_rule is not None:  # a cue rule in its cool-down also silences the trend rule for this utterance
            return self._raise(cue_rule, final, text, trend) if self._ready(cue_rule, final.start_ms) else None
        falling = (
            self._utterances >= self._config.min_utterances
            and trend <= self._config.trend_threshold
            and result.score < 0.0
        )
        if falling and self._ready(RULE_DISSATISFIED, final.start_ms):
            return self._raise(RULE_DISSATISFIED, final, text, trend)
        return None

    def _ready(self, rule: str, now_ms: int) -> bool:
        last = self._last_alert_ms.get(rule)
        return last is None or now_ms - last >= self._config.cooldown_ms

    def _raise(self, rule: MoodRule, final: FinalTranscript, text: str, trend: float) -> ComplianceAlert:
        self._last_alert_ms[rule] = final.start_ms
        self._alert_counts[rule] = self._alert_counts.get(rule, 0) + 1
        return ComplianceAlert(
            call_id=final.call_id,
            rule_id=rule,
            severity=_SEVERITY[rule],
            message=_MESSAGES[rule][self._lang].format(trend=trend),
            leg="customer",
            start_ms=final.start_ms,
            end_ms=final.end_ms,
            alert_id=self._new_id(),
            quote=_quote(text),
            audience="supervisor",
        )
