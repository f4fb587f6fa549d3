"""The QA store: which recordings were inspected, their transcripts, findings and scores (SQLAlchemy).

The pipeline side: :meth:`QaStore.claim` makes inspection idempotent per recording (``call_id``): a recording that
is already inspected is never inspected again unless ``force`` (and then only while nobody has reviewed it), a
failed one is retried. :meth:`QaStore.save` writes an :class:`~qa.models.Inspection` in one transaction;
:meth:`QaStore.fail` records why a file could not be inspected, so the batch goes on. :meth:`QaStore.prior_calls`
is the call history of the repeat-call rule. Review and analytics queries live in :mod:`qa.review` and
:mod:`qa.analytics`.

Synchronous; thread-safe (a session per method). Database errors raise :class:`core.errors.StorageError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock, SystemClock
from core.db import session_scope
from core.errors import NotFoundError, StorageError
from core.logging import get_logger
from qa.models import SEVERITIES, Inspection, RecordingMeta, Turn, Word
from qa.records import QaCall, QaCallDetail, StoredFinding
from qa.rules_base import PriorCall
from qa.tables import QaFindingRow, QaRecordingRow, QaTurnRow

__all__ = ["ClaimResult", "QaStore", "call_view", "finding_view", "turn_view"]

log = get_logger(__name__)

ClaimResult = Literal["claimed", "done", "reviewed", "running"]
"""``claimed``: inspect it now; ``done``: already inspected (skip); ``reviewed``: a forced re-run refused because
people reviewed it; ``running``: another worker holds it (skip)."""

_STALE_RUNNING = timedelta(minutes=30)
"""A ``running`` claim older than this is taken over (its worker died)."""
_MAX_ERROR = 2000


class QaStore:
    """Recordings, turns and findings of the QA pipeline (see the module docstring)."""

    def __init__(self, sessions: sessionmaker[Session], *, clock: Clock | None = None) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()

    def _session(self, *, write: bool = False) -> AbstractContextManager[Session]:
        return session_scope(self._sessions, write=write)

    # --- pipeline --------------------------------------------------------------------------------------------

    def enqueue(self, meta: RecordingMeta, path: str, *, source: str) -> bool:
        """Register a recording as waiting (``pending``) with its metadata, unless it is already known; returns
        whether it was new. A batch registers all its recordings first, so the repeat-call rule sees every call of
        the batch whatever order the workers take them in."""
        try:
            return self._enqueue(meta, path, source)
        except StorageError:
            if self.status(meta.call_id) is not None:
                return False  # another process registered it at the same moment
            raise

    def _enqueue(self, meta: RecordingMeta, path: str, source: str) -> bool:
        with self._session(write=True) as s:
            if s.get(QaRecordingRow, meta.call_id) is not None:
                return False
            row = QaRecordingRow(call_id=meta.call_id, source=source, path=path, queued_at=self._clock.now())
            _set_meta(row, meta)
            row.status = "pending"
            s.add(row)
        return True

    def claim(self, meta: RecordingMeta, path: str, *, source: str, force: bool = False) -> ClaimResult:
        """Mark a recording as being inspected (creating its row) unless it is already done or in progress."""
        self.enqueue(meta, path, source=source)  # no-op for a recording already known
        now = self._clock.now()
        with self._session(write=True) as s:
            row = s.get(QaRecordingRow, meta.call_id, with_for_update=True)
            if row is None:
                row = QaRecordingRow(call_id=meta.call_id, source=source, path=path, queued_at=now)
                s.add(row)
            elif row.status == "done" and not force:
                return "done"
            elif row.status == "done" and (row.review_status != "open" or _has_reviews(s, meta.call_id)):
                return "reviewed"
            elif row.status == "running" and row.queued_at > now - _STALE_RUNNING and not force:
                return "running"
            _set_meta(row, meta)
            row.path, row.source = path, source
            row.status, row.error, row.queued_at = "running", None, now
            row.attempts = (row.attempts or 0) + 1
        return "claimed"

    def save(self, result: Inspection, *, source: str) -> None:
        """Store an inspection (replacing an earlier one of the same recording) and mark it done."""
        meta = result.meta
        with self._session(write=True) as s:
            row = s.get(QaRecordingRow, meta.call_id)
            if row is None:
                row = QaRecordingRow(call_id=meta.call_id, source=source, path=result.path)
                s.add(row)
            s.execute(delete(QaTurnRow).where(QaTurnRow.call_id == meta.call_id))
            s.execute(delete(QaFindingRow).where(QaFindingRow.call_id == meta.call_id))
            _set_meta(row, meta)
            row.path, row.sha256 = result.path, result.sha256
            row.status, row.error = "done", None
            row.duration_ms = result.transcript.duration_ms
            row.lang = result.transcript.lang
            row.parties = result.transcript.source
            reason = next((f.detail for f in result.findings if f.rule_id == "call_reason"), None)
            row.reason = reason if reason and reason != "unknown" else None
            row.scorecard_id = result.score.scorecard_id if result.score else None
            row.score = result.score.score if result.score else None
            row.auto_failed = bool(result.score and result.score.auto_failed)
            row.flagged = result.flagged
            row.max_severity = _max_severity(f.severity for f in result.findings)
            row.findings_count = sum(1 for f in result.findings if f.severity != "info")
            row.pipeline_ms = int(sum(result.timings.values()) * 1000)
            row.rules_version = result.rules_version
            row.inspected_at = self._clock.now()
            s.flush()
            for i, turn in enumerate(result.transcript.turns):
                words = json.dumps([[w.text, w.start_ms, w.end_ms] for w in turn.words], ensure_ascii=False)
                s.add(
                    QaTurnRow(
                        call_id=meta.call_id,
                        idx=i,
                        channel=turn.channel,
                        start_ms=turn.start_ms,
                        end_ms=turn.end_ms,
                        lang=turn.lang,
                        text=turn.text,
                        words=words,
                        confidence=turn.confidence,
                    )
                )
            for f in result.findings:
                s.add(
                    QaFindingRow(
                        call_id=meta.call_id,
                        rule_id=f.rule_id,
                        severity=f.severity,
                        evidence=f.evidence,
                        start_ms=f.start_ms,
                        end_ms=f.end_ms,
                        channel=f.channel,
                        detail=f.detail[:200],
                        origin="ai",
                    )
                )

    def fail(self, meta: RecordingMeta, path: str, error: str, *, source: str) -> None:
        """Record that a recording could not be inspected (``error`` is shown to QA staff; no customer data)."""
        with self._session(write=True) as s:
            row = s.get(QaRecordingRow, meta.call_id)
            if row is None:
                row = QaRecordingRow(call_id=meta.call_id, source=source, path=path, queued_at=self._clock.now())
                s.add(row)
                _set_meta(row, meta)
            row.status, row.error = "failed", error[:_MAX_ERROR]

    def status(self, call_id: str) -> str | None:
        """``pending``/``running``/``done``/``failed``, or ``None`` for a recording never seen."""
        with self._session() as s:
            return s.scalar(select(QaRecordingRow.status).where(QaRecordingRow.call_id == call_id))

    # --- history ---------------------------------------------------------------------------------------------

    def prior_calls(self, phone: str, before: datetime, within_hours: float) -> Sequence[PriorCall]:
        """Recordings from ``phone`` started in the ``within_hours`` (h) before ``before``, newest first."""
        since = before - timedelta(hours=within_hours)
        stmt = (
            select(QaRecordingRow.call_id, QaRecordingRow.started_at)
            .where(QaRecordingRow.customer_phone == phone)
            .where(QaRecordingRow.started_at >= since, QaRecordingRow.started_at < before)
            .order_by(QaRecordingRow.started_at.desc())
        )
        with self._session() as s:
            return [PriorCall(cid, at) for cid, at in s.execute(stmt) if at is not None]

    # --- reads -----------------------------------------------------------------------------------------------

    def get(self, call_id: str) -> QaCall:
        """The recording's row; raises :class:`NotFoundError`."""
        with self._session() as s:
            row = s.get(QaRecordingRow, call_id)
            if row is None:
                raise NotFoundError(f"no QA record for call {call_id}")
            return call_view(row)

    def detail(self, call_id: str) -> QaCallDetail:
        """The call with its turns and findings; raises :class:`NotFoundError`."""
        with self._session() as s:
            row = s.get(QaRecordingRow, call_id)
            if row is None:
                raise NotFoundError(f"no QA record for call {call_id}")
            turns = tuple(turn_view(t) for t in row.turns)
            findings = tuple(finding_view(f) for f in sorted(row.findings, key=lambda f: (f.start_ms, f.id)))
            return QaCallDetail(call_view(row), turns, findings, row.review_note, row.path)


def _has_reviews(s: Session, call_id: str) -> bool:
    stmt = select(QaFindingRow.id).where(QaFindingRow.call_id == call_id, QaFindingRow.decision.is_not(None))
    return s.scalar(stmt.limit(1)) is not None


def _set_meta(row: QaRecordingRow, meta: RecordingMeta) -> None:
    row.agent_id = meta.agent_id
    row.team = meta.team
    row.customer_phone = meta.customer_phone
    row.customer_id = meta.customer_id
    row.started_at = meta.started_at
    row.direction = meta.direction


def _max_severity(severities: Iterable[str]) -> str | None:
    ranks = [SEVERITIES.index(s) for s in severities if s in SEVERITIES]
    return SEVERITIES[max(ranks)] if ranks else None


def turn_view(row: QaTurnRow) -> Turn:
    words = tuple(Word(str(w), int(a), int(b)) for w, a, b in json.loads(row.words or "[]"))
    return Turn(row.channel, row.text, row.start_ms, row.end_ms, row.lang, words, row.confidence)  # type: ignore[arg-type]


def finding_view(row: QaFindingRow) -> StoredFinding:
    return StoredFinding(
        id=row.id,
        rule_id=row.rule_id,
        severity=row.severity,
        evidence=row.evidence,
        start_ms=row.start_ms,
        end_ms=row.end_ms,
        channel=row.channel,
        detail=row.detail,
        origin=row.origin,  # type: ignore[arg-type]
        decision=row.decision,  # type: ignore[arg-type]
        reviewer=row.reviewer,
        reviewed_at=row.reviewed_at,
        note=row.note,
    )


def call_view(row: QaRecordingRow) -> QaCall:
    return QaCall(
        call_id=row.call_id,
        source=row.source,
        status=row.status,
        error=row.error,
        agent_id=row.agent_id,
        team=row.team,
        customer_id=row.customer_id,
        started_at=row.started_at,
        direction=row.direction,
        duration_ms=row.duration_ms,
        lang=row.lang,
        parties=row.parties,
        reason=row.reason,
        scorecard_id=row.scorecard_id,
        score=row.score,
        auto_failed=bool(row.auto_failed),
        flagged=bool(row.flagged),
        max_severity=row.max_severity,
        findings_count=row.findings_count or 0,
        inspected_at=row.inspected_at,
        review_status=row.review_status,
        reviewed_score=row.reviewed_score,
        reviewer=row.reviewer,
        reviewed_at=row.reviewed_at,
    )
