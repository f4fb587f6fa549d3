"""What the QA store hands out: inspected calls for the review queue and the call page, stored findings.

Immutable views of :mod:`qa.tables` rows, safe to pass to templates and JSON responses. Times are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from qa.models import Turn

__all__ = ["Decision", "QaCall", "QaCallDetail", "QaPage", "StoredFinding"]

Decision = Literal["confirmed", "rejected"]


@dataclass(frozen=True)
class StoredFinding:
    """A finding as stored, with its review decision."""

    id: int
    rule_id: str
    severity: str
    evidence: str
    start_ms: int
    end_ms: int
    channel: str | None
    detail: str
    origin: Literal["ai", "human"]
    decision: Decision | None = None
    reviewer: str | None = None
    reviewed_at: datetime | None = None
    note: str | None = None


@dataclass(frozen=True)
class QaCall:
    """One recording in the QA pipeline (a row of the review queue)."""

    call_id: str
    source: str
    status: str
    error: str | None
    agent_id: str | None
    team: str | None
    customer_id: str | None
    started_at: datetime | None
    direction: str
    duration_ms: int | None
    lang: str | None
    parties: str | None
    reason: str | None
    scorecard_id: str | None
    score: float | None
    auto_failed: bool
    flagged: bool
    max_severity: str | None
    findings_count: int
    inspected_at: datetime | None
    review_status: str
    reviewed_score: float | None
    reviewer: str | None
    reviewed_at: datetime | None

    @property
    def final_score(self) -> float | None:
        """The reviewer's score when set, else the computed one."""
        return self.reviewed_score if self.reviewed_score is not None else self.score


@dataclass(frozen=True)
class QaCallDetail:
    """A call with its transcript and findings, for the call page."""

    call: QaCall
    turns: tuple[Turn, ...]
    findings: tuple[StoredFinding, ...]
    review_note: str | None
    path: str


@dataclass(frozen=True)
class QaPage:
    """One page of the queue and the total matching the filters."""

    items: tuple[QaCall, ...]
    total: int
    offset: int
    limit: int
