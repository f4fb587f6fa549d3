"""The review workflow: the flagged-call queue, reviewers' decisions on findings, completed reviews, and how well
the rules agree with the reviewers.

A reviewer opens a call from :meth:`QaReview.queue`, confirms or rejects each AI finding (:meth:`QaReview.decide`),
adds the violations the rules missed (:meth:`QaReview.add_finding`, origin ``human``) and completes the review
(:meth:`QaReview.complete`): the call is re-scored on its scorecard without the rejected findings and with the
human ones, or gets the reviewer's own score (0–100). :meth:`QaReview.agreement` measures the rules against those
decisions per rule and day or week.

Every write is one transaction (all or nothing). Synchronous and blocking; thread-safe (a session per method): call
it from a worker thread in async code. Times are UTC; finding times are ms from the start of the recording.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

from sqlalchemy import ColumnElement, and_, case, exists, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock, SystemClock
from core.db import session_scope
from core.errors import InvalidInputError, NotFoundError
from core.logging import get_logger
from qa.models import CHANNELS, SEVERITIES, Finding, Severity
from qa.records import Decision, QaCall, QaPage, StoredFinding
from qa.rules_config import RULE_IDS
from qa.scorecard import Scorecard, ScoreResult, load_scorecards, score_call
from qa.store import call_view, finding_view
from qa.tables import QaFindingRow, QaRecordingRow

__all__ = [
    "MAX_PAGE",
    "AgreementRow",
    "Period",
    "QaReview",
    "QueueFilters",
    "QueueSort",
    "ReviewScore",
    "period_start",
]

log = get_logger(__name__)

MAX_PAGE = 200
"""The most queue rows one page returns."""
Period = Literal["day", "week"]
QueueSort = Literal["newest", "lowest_score"]
_MAX_NOTE = 2000
_MAX_EVIDENCE = 2000


def period_start(at: datetime, period: Period) -> date:
    """The UTC day of ``at``, or the Monday of its ISO week."""
    day = at.astimezone(UTC).date()
    return day if period == "day" else day - timedelta(days=day.weekday())


@dataclass(frozen=True)
class QueueFilters:
    """What the review queue shows. ``None`` means "any"; dates compare with the call's start (else its inspection
    time), ``date_to`` exclusive; ``score_below`` with the final score (the reviewer's, else the computed one)."""

    flagged_only: bool = True
    status: str | None = "done"
    """Pipeline status: ``pending``, ``running``, ``done`` or ``failed``."""
    review_status: str | None = None
    """``open`` or ``reviewed``."""
    agent_id: str | None = None
    team: str | None = None
    rule_id: str | None = None
    """Calls with at least one finding of this rule (not rejected)."""
    min_severity: Severity | None = None
    max_severity: Severity | None = None
    """Bounds on the call's worst finding."""
    score_below: float | None = None
    date_from: datetime | None = None
    date_to: datetime | None = None
    reason: str | None = None
    text: str | None = None
    """Case-insensitive substring of a finding's evidence (or of the call id)."""
    sort: QueueSort = "newest"
    offset: int = 0
    limit: int = 50


@dataclass(frozen=True)
class AgreementRow:
    """How the rule ``rule_id`` agreed with reviewers in one day or week (``period_start``: its first day, UTC).

    ``confirmed``/``rejected``: AI findings reviewers judged in that period; ``added``: misses reviewers added.
    ``precision`` = confirmed / (confirmed + rejected); ``agreement`` = confirmed / (confirmed + rejected + added);
    ``None`` where the denominator is 0."""

    period_start: date
    rule_id: str
    confirmed: int
    rejected: int
    added: int
    precision: float | None
    agreement: float | None


@dataclass(frozen=True)
class ReviewScore:
    """A call's score as the review stands: the scorecard result over the findings that count (AI findings not
    rejected, human findings confirmed) and the labels of the form's items for display."""

    card: Scorecard
    result: ScoreResult
    labels: dict[str, tuple[str, str]]
    """Item id → (English label, Chinese label)."""


class QaReview:
    """Review queue, decisions and agreement over the QA store's tables (see the module docstring)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock | None = None,
        *,
        scorecards: Sequence[Scorecard] | None = None,
        default_scorecard: str | None = None,
        scorecards_path: Path | None = None,
    ) -> None:
        """``scorecards``: the forms (else those of ``scorecards_path``, else the shipped file; a bad file raises
        :class:`core.errors.ConfigError`); ``default_scorecard``: the form of calls scored on none."""
        self._sessions = sessions
        self._clock = clock or SystemClock()
        if scorecards is None:
            scorecards, default_scorecard = load_scorecards(scorecards_path)
        self._cards = {c.id: c for c in scorecards}
        self._default = default_scorecard if default_scorecard in self._cards else scorecards[0].id

    def _session(self, *, write: bool = False) -> AbstractContextManager[Session]:
        return session_scope(self._sessions, write=write)

    # --- queue -----------------------------------------------------------------------------------------------

    def queue(self, filters: QueueFilters | None = None) -> QaPage:
        """One page of calls matching ``filters``, newest first or lowest final score first (limit ≤ ``MAX_PAGE``)."""
        f = filters or QueueFilters()
        offset, limit = max(0, f.offset), max(1, min(f.limit, MAX_PAGE))
        conditions = _conditions(f)
        final = func.coalesce(QaRecordingRow.reviewed_score, QaRecordingRow.score)
        stmt = select(QaRecordingRow).where(*conditions)
        if f.sort == "lowest_score":
            stmt = stmt.order_by(case((final.is_(None), 1), else_=0), final.asc(), QaRecordingRow.call_id)
        else:
            when = func.coalesce(QaRecordingRow.started_at, QaRecordingRow.queued_at)
            stmt = stmt.order_by(when.desc(), QaRecordingRow.call_id)
        count = select(func.count()).select_from(QaRecordingRow).where(*conditions)
        with self._session() as s:
            total = int(s.scalar(count) or 0)
            rows = s.scalars(stmt.offset(offset).limit(limit)).all()
            return QaPage(tuple(call_view(r) for r in rows), total, offset, limit)

    # --- decisions -------------------------------------------------------------------------------------------

    def decide(
        self, call_id: str, finding_id: int, decision: Decision, reviewer: str, note: str | None = None
    ) -> StoredFinding:
        """Confirm or reject one finding of ``call_id`` (a later decision replaces an earlier one).

        Raises :class:`NotFoundError` for an unknown call or finding, or a finding of another call;
        :class:`InvalidInputError` for a decision other than ``confirmed``/``rejected``."""
        if decision not in ("confirmed", "rejected"):
            raise InvalidInputError("decision must be confirmed or rejected")
        with self._session(write=True) as s:
            _recording(s, call_id)
            row = s.get(QaFindingRow, finding_id)
            if row is None or row.call_id != call_id:
                raise NotFoundError("no such finding in this call", call_id=call_id, finding_id=finding_id)
            row.decision, row.reviewer, row.reviewed_at = decision, reviewer[:64], self._clock.now()
            row.note = _clip(note, _MAX_NOTE)
            s.flush()
            view = finding_view(row)
        log.info("qa finding reviewed", call_id=call_id, finding_id=finding_id, decision=decision)
        return view

    def add_finding(
        self,
        call_id: str,
        rule_id: str,
        severity: Severity,
        start_ms: int,
        end_ms: int,
        channel: str | None,
        evidence: str,
        reviewer: str,
        note: str | None = None,
    ) -> StoredFinding:
        """Record a violation the rules missed (origin ``human``, decision ``confirmed``); times in ms.

        Raises :class:`NotFoundError` for an unknown call, :class:`InvalidInputError` for an unknown rule, severity
        or channel, or ``end_ms < start_ms``."""
        if rule_id not in RULE_IDS:
            raise InvalidInputError("unknown rule id", rule_id=rule_id)
        if severity not in SEVERITIES:
            raise InvalidInputError("unknown severity")
        if channel is not None and channel not in CHANNELS:
            raise InvalidInputError("channel must be agent or customer")
        if start_ms < 0 or end_ms < start_ms:
            raise InvalidInputError("finding times must satisfy 0 <= start_ms <= end_ms")
        with self._session(write=True) as s:
            rec = _recording(s, call_id)
            row = QaFindingRow(
                call_id=call_id,
                rule_id=rule_id,
                severity=severity,
                evidence=evidence.strip()[:_MAX_EVIDENCE],
                start_ms=start_ms,
                end_ms=end_ms,
                channel=channel,
                detail="",
                origin="human",
                decision="confirmed",
                reviewer=reviewer[:64],
                reviewed_at=self._clock.now(),
                note=_clip(note, _MAX_NOTE),
            )
            s.add(row)
            if severity != "info":
                rec.findings_count = (rec.findings_count or 0) + 1
            s.flush()
            view = finding_view(row)
        log.info("qa finding added by reviewer", call_id=call_id, rule_id=rule_id)
        return view

    def complete(self, call_id: str, reviewer: str, score: float | None = None, note: str | None = None) -> QaCall:
        """Finish the review: ``reviewed_score`` is ``score`` (0–100) when given, else the scorecard's result over
        the findings that count (see :meth:`review_score`). Raises :class:`NotFoundError`, and
        :class:`InvalidInputError` for a score outside 0–100 or a call that was never inspected."""
        if score is not None and not 0 <= score <= 100:
            raise InvalidInputError("score must be between 0 and 100")
        with self._session(write=True) as s:
            rec = _recording(s, call_id)
            if rec.status != "done":
                raise InvalidInputError("only inspected calls can be reviewed", call_id=call_id)
            if score is None:
                score = self._score(rec, [finding_view(f) for f in rec.findings]).result.score
            rec.review_status, rec.reviewed_score = "reviewed", round(float(score), 1)
            rec.reviewer, rec.reviewed_at = reviewer[:64], self._clock.now()
            rec.review_note = _clip(note, _MAX_NOTE)
            s.flush()
            view = call_view(rec)
        log.info("qa review completed", call_id=call_id)
        return view

    def review_score(self, call_id: str) -> ReviewScore:
        """The call's score as its review stands now (rejected findings dropped, human ones counted)."""
        with self._session() as s:
            rec = _recording(s, call_id)
            return self._score(rec, [finding_view(f) for f in rec.findings])

    def scorecard(self, scorecard_id: str | None) -> Scorecard:
        """The form with this id, else the default form."""
        return self._cards.get(scorecard_id or "", self._cards[self._default])

    def _score(self, rec: QaRecordingRow, findings: Sequence[StoredFinding]) -> ReviewScore:
        card = self.scorecard(rec.scorecard_id)
        counted = [f for f in findings if f.decision != "rejected"]
        as_findings = [
            Finding(f.rule_id, f.severity, f.evidence, f.start_ms, f.end_ms, f.channel, f.detail)  # type: ignore[arg-type]
            for f in counted
        ]
        labels = {i.id: (i.label_en, i.label_zh or i.label_en) for i in card.items}
        return ReviewScore(card, score_call(card, as_findings), labels)

    # --- agreement -------------------------------------------------------------------------------------------

    def agreement(self, period: Period, since: datetime, until: datetime) -> list[AgreementRow]:
        """AI-vs-human agreement per rule and period, over decisions made in ``[since, until)`` (UTC), ordered by
        period then rule id (see :class:`AgreementRow`)."""
        stmt = select(QaFindingRow.rule_id, QaFindingRow.origin, QaFindingRow.decision, QaFindingRow.reviewed_at).where(
            QaFindingRow.decision.is_not(None),
            QaFindingRow.reviewed_at >= since,
            QaFindingRow.reviewed_at < until,
        )
        counts: dict[tuple[date, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        with self._session() as s:
            for rule_id, origin, decision, at in s.execute(stmt):
                if at is None:
                    continue
                slot = counts[(period_start(at, period), rule_id)]
                if origin == "human":
                    slot[2] += decision == "confirmed"
                else:
                    slot[0 if decision == "confirmed" else 1] += 1
        rows = []
        for (start, rule_id), (confirmed, rejected, added) in sorted(counts.items()):
            judged, seen = confirmed + rejected, confirmed + rejected + added
            rows.append(
                AgreementRow(
                    start,
                    rule_id,
                    confirmed,
                    rejected,
                    added,
                    round(confirmed / judged, 4) if judged else None,
                    round(confirmed / seen, 4) if seen else None,
                )
            )
        return rows


def _recording(s: Session, call_id: str) -> QaRecordingRow:
    row = s.get(QaRecordingRow, call_id)
    if row is None:
        raise NotFoundError(f"no QA record for call {call_id}")
    return row


def _clip(text: str | None, limit: int) -> str | None:
    text = (text or "").strip()
    return text[:limit] or None


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _conditions(f: QueueFilters) -> list[ColumnElement[bool]]:
    r = QaRecordingRow
    out: list[ColumnElement[bool]] = []
    if f.flagged_only:
        out.append(r.flagged.is_(True))
    for column, value in (
        (r.status, f.status),
        (r.review_status, f.review_status),
        (r.agent_id, f.agent_id),
        (r.team, f.team),
        (r.reason, f.reason),
    ):
        if value:
            out.append(column == value)
    lo = SEVERITIES.index(f.min_severity) if f.min_severity else 0
    hi = SEVERITIES.index(f.max_severity) if f.max_severity else len(SEVERITIES) - 1
    if f.min_severity or f.max_severity:
        out.append(r.max_severity.in_(SEVERITIES[lo : hi + 1]))
    if f.score_below is not None:
        out.append(func.coalesce(r.reviewed_score, r.score) < f.score_below)
    when = func.coalesce(r.started_at, r.inspected_at)
    if f.date_from is not None:
        out.append(when >= f.date_from)
    if f.date_to is not None:
        out.append(when < f.date_to)
    finding = QaFindingRow
    not_rejected = or_(finding.decision.is_(None), finding.decision != "rejected")
    if f.rule_id:
        out.append(exists().where(finding.call_id == r.call_id, finding.rule_id == f.rule_id, not_rejected))
    if f.text and f.text.strip():
        pattern = _like(f.text.strip())
        in_evidence = exists().where(
            and_(finding.call_id == r.call_id, func.lower(finding.evidence).like(pattern, escape="\\"))
        )
        out.append(or_(in_evidence, func.lower(r.call_id).like(pattern, escape="\\")))
    return out
