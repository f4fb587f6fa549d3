"""Scoring QA findings against the labels of the call set: matching, per-rule counts, precision and recall.

A prediction matches an expected finding when the rule and the channel agree and, for located rules, their times
overlap once each is widened by :data:`TOLERANCE_MS`; whole-call rules (:data:`voxdesk.benches.qa_scripts.
WHOLE_CALL_RULES`) match anywhere in the call, and ``call_reason`` also needs the question id (the finding's
``detail``). Each expected finding matches at most one prediction and each prediction at most one expected
finding. Pure; any thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from qa.models import Finding
from qa.rules_config import RULE_IDS
from voxdesk.benches.qa_scripts import WHOLE_CALL_RULES

__all__ = ["TOLERANCE_MS", "ExpectedFinding", "RuleCounts", "match_call", "summarise"]

TOLERANCE_MS: Final = 2000


@dataclass(frozen=True)
class ExpectedFinding:
    """One line of ``labels.jsonl``'s ``expected``."""

    rule: str
    channel: str | None
    start_ms: int
    end_ms: int
    question: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExpectedFinding:
        return cls(
            str(data["rule"]),
            data.get("channel"),
            int(data["start_ms"]),
            int(data["end_ms"]),
            data.get("question"),
        )


@dataclass
class RuleCounts:
    """True positives, false positives and false negatives of one rule."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    misses: list[str] = field(default_factory=list)
    """``call_id`` of each false negative and false positive (``+id`` / ``-id``), for the report."""

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None


def _matches(e: ExpectedFinding, p: Finding) -> bool:
    if e.rule != p.rule_id or e.channel != p.channel:
        return False
    if e.rule == "call_reason":
        return e.question == p.detail
    if e.rule in WHOLE_CALL_RULES:
        return True
    return p.start_ms - TOLERANCE_MS <= e.end_ms and e.start_ms - TOLERANCE_MS <= p.end_ms


def match_call(
    expected: Sequence[ExpectedFinding], predicted: Sequence[Finding]
) -> tuple[list[tuple[ExpectedFinding, Finding]], list[ExpectedFinding], list[Finding]]:
    """Greedy one-to-one matching of one call, expected findings in time order, each taking the unmatched
    prediction closest in start time: ``(pairs, missed expected, unmatched predictions)``."""
    free = list(predicted)
    pairs: list[tuple[ExpectedFinding, Finding]] = []
    missed: list[ExpectedFinding] = []
    for e in sorted(expected, key=lambda x: (x.start_ms, x.rule)):
        options = [p for p in free if _matches(e, p)]
        if not options:
            missed.append(e)
            continue
        best = min(options, key=lambda p: abs(p.start_ms - e.start_ms))
        free.remove(best)
        pairs.append((e, best))
    return pairs, missed, free


def summarise(
    results: Iterable[tuple[str, Sequence[ExpectedFinding], Sequence[Finding]]], *, n_calls: int | None = None
) -> tuple[dict[str, RuleCounts], dict[str, Any]]:
    """Per-rule counts over ``(call_id, expected, predicted)`` of every call, and the JSON summary (``rules``
    {rule: {precision, recall, tp, fp, fn}}, micro averages, ``min_precision``, ``min_recall``, ``n_calls``).
    A rule with no positives and no predictions has ``None`` precision and recall and is left out of the minima."""
    counts: dict[str, RuleCounts] = {r: RuleCounts() for r in RULE_IDS}
    calls = 0
    for call_id, expected, predicted in results:
        calls += 1
        pairs, missed, extra = match_call(expected, predicted)
        for e, _ in pairs:
            counts.setdefault(e.rule, RuleCounts()).tp += 1
        for e in missed:
            c = counts.setdefault(e.rule, RuleCounts())
            c.fn += 1
            c.misses.append(f"-{call_id}")
        for p in extra:
            c = counts.setdefault(p.rule_id, RuleCounts())
            c.fp += 1
            c.misses.append(f"+{call_id}")
    tp = sum(c.tp for c in counts.values())
    fp = sum(c.fp for c in counts.values())
    fn = sum(c.fn for c in counts.values())
    precisions = [c.precision for c in counts.values() if c.precision is not None]
    recalls = [c.recall for c in counts.values() if c.recall is not None]
    summary: dict[str, Any] = {
        "rules": {
            r: {"precision": c.precision, "recall": c.recall, "tp": c.tp, "fp": c.fp, "fn": c.fn}
            for r, c in counts.items()
        },
        "micro_precision": tp / (tp + fp) if tp + fp else None,
        "micro_recall": tp / (tp + fn) if tp + fn else None,
        "min_precision": min(precisions) if precisions else None,
        "min_recall": min(recalls) if recalls else None,
        "n_calls": calls if n_calls is None else n_calls,
    }
    return counts, summary
