"""Scorecards: configurable QA forms whose items are scored from a call's findings.

A form (YAML, the shipped default is ``qa/scorecards.yaml``) has weighted items; each item names the rule ids
whose findings fail it (``max_findings`` of them are tolerated, each further one costs ``penalty_per_finding``
of the item's weight). An ``auto_fail`` item that fails sets the whole call's score to 0. The score is the
weighted share of item points, 0–100. Reviewers' decisions re-score a call: a rejected finding no longer counts,
and a reviewer may override the final score. Pure; any thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.errors import ConfigError
from qa.models import Finding
from qa.rules_config import RULE_IDS

__all__ = [
    "DEFAULT_SCORECARDS_PATH",
    "ItemScore",
    "ScoreResult",
    "Scorecard",
    "ScorecardItem",
    "load_scorecards",
    "score_call",
]

DEFAULT_SCORECARDS_PATH: Final = Path(__file__).with_name("scorecards.yaml")


class ScorecardItem(BaseModel):
    """One line of a QA form."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    label_en: str
    label_zh: str = ""
    weight: float = Field(gt=0)
    rules: tuple[str, ...] = Field(min_length=1)
    max_findings: int = Field(default=0, ge=0)
    """Findings tolerated before the item loses points."""
    penalty_per_finding: float = Field(default=1.0, gt=0, le=1)
    """Share of the item's weight each finding beyond ``max_findings`` costs (1 = the first one fails it)."""
    auto_fail: bool = False
    """A failed item zeroes the whole call (e.g. promising guaranteed returns)."""

    @model_validator(mode="after")
    def _known(self) -> ScorecardItem:
        unknown = [r for r in self.rules if r not in RULE_IDS]
        if unknown:
            raise ValueError(f"unknown rule id(s) {unknown}")
        return self


class Scorecard(BaseModel):
    """A QA form."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9_-]{1,40}$")
    name: str
    pass_mark: float = Field(default=80.0, ge=0, le=100)
    """Calls scoring below this are flagged for review."""
    items: tuple[ScorecardItem, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> Scorecard:
        ids = [i.id for i in self.items]
        if len(ids) != len(set(ids)):
            raise ValueError("item ids must be unique")
        return self


class _File(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    default: str
    scorecards: tuple[Scorecard, ...] = Field(min_length=1)


@dataclass(frozen=True)
class ItemScore:
    item_id: str
    points: float
    """Points earned (0 … weight)."""
    weight: float
    findings: int
    failed: bool


@dataclass(frozen=True)
class ScoreResult:
    """A call's score on one form."""

    scorecard_id: str
    score: float
    """0–100."""
    passed: bool
    auto_failed: bool
    items: tuple[ItemScore, ...]


def load_scorecards(path: Path | None = None) -> tuple[tuple[Scorecard, ...], str]:
    """All forms of a scorecards file and the default form's id; raises :class:`ConfigError` (file, field)."""
    source = path or DEFAULT_SCORECARDS_PATH
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
        parsed = _File.model_validate(raw)
    except OSError as exc:
        raise ConfigError(f"cannot read the scorecards file {source}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise ConfigError(f"{source}: {where}: {first['msg']}") from exc
    if parsed.default not in {s.id for s in parsed.scorecards}:
        raise ConfigError(f"{source}: default scorecard {parsed.default!r} is not defined")
    return parsed.scorecards, parsed.default


def score_call(card: Scorecard, findings: Iterable[Finding], *, excluded: Sequence[int] = ()) -> ScoreResult:
    """Score one call from its findings (``excluded``: indexes of findings a reviewer rejected)."""
    dropped = set(excluded)
    counted = [f for i, f in enumerate(findings) if i not in dropped and f.severity != "info"]
    items: list[ItemScore] = []
    auto_failed = False
    for item in card.items:
        n = sum(1 for f in counted if f.rule_id in item.rules)
        over = max(0, n - item.max_findings)
        points = max(0.0, item.weight * (1 - over * item.penalty_per_finding))
        failed = over > 0
        auto_failed |= failed and item.auto_fail
        items.append(ItemScore(item.id, round(points, 3), item.weight, n, failed))
    total = sum(i.weight for i in items)
    score = 0.0 if auto_failed else round(100 * sum(i.points for i in items) / total, 1)
    return ScoreResult(card.id, score, score >= card.pass_mark and not auto_failed, auto_failed, tuple(items))
