"""Runs every enabled QA rule over one call's transcript and returns its findings.

``Inspector(config, intent=..., sentiment=..., product_names=...)`` is built once per worker process and reused for
every call of a batch. :meth:`Inspector.inspect` is pure given its inputs (the call history aside) and takes a few
milliseconds; it runs on the worker's thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from nlu.sentiment import SentimentScorer
from qa.models import CallTranscript, Finding, RecordingMeta
from qa.rules_base import CallHistory, IntentFn, RuleContext, RuleFn
from qa.rules_config import RulesConfig
from qa.rules_context import pii_rule, reason_rule, repeat_rule
from qa.rules_text import complaint_rule, emotion_rule, forbidden_rule, marketing_rule, required_rule
from qa.rules_timing import overlong_rule, silence_rule, speech_rate_rule, talk_over_rule

__all__ = ["RULES", "Inspector"]

RULES: Final[dict[str, RuleFn]] = {
    "forbidden": forbidden_rule,
    "required": required_rule,
    "silence": silence_rule,
    "overlong": overlong_rule,
    "talk_over": talk_over_rule,
    "speech_rate": speech_rate_rule,
    "emotion": emotion_rule,
    "complaint": complaint_rule,
    "repeat": repeat_rule,
    "call_reason": reason_rule,
    "marketing": marketing_rule,
    "pii": pii_rule,
}
"""Rules-file section → rule function; a section with ``enabled: false`` is skipped."""


class Inspector:
    """The rule engine of the QA pipeline."""

    def __init__(
        self,
        config: RulesConfig,
        *,
        intent: IntentFn | None = None,
        sentiment: SentimentScorer | None = None,
        product_names: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.config = config
        self._intent = intent
        self._sentiment = sentiment
        self._names = dict(product_names or {})

    def inspect(
        self, transcript: CallTranscript, meta: RecordingMeta, history: CallHistory | None = None
    ) -> tuple[Finding, ...]:
        """All findings of the enabled rules, ordered by start time (ms) then rule id."""
        ctx = RuleContext(
            transcript=transcript,
            meta=meta,
            config=self.config,
            history=history,
            intent=self._intent,
            sentiment=self._sentiment,
            product_names=self._names,
        )
        findings: list[Finding] = []
        for section, rule in RULES.items():
            if getattr(self.config, section).enabled:
                findings.extend(rule(ctx))
        return tuple(sorted(findings, key=lambda f: (f.start_ms, f.rule_id, f.end_ms)))
