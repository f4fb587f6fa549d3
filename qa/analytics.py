"""QA analytics: call reasons, hot topics, trends, per-agent and per-team scores, complaint reasons; CSV export.

Every report covers the inspected calls (status ``done``) that started in ``[since, until)`` (UTC; a call without
a start time counts at its inspection time) and returns plain immutable rows. Periods are UTC days or ISO weeks
(a week is named by its Monday). Findings a reviewer rejected are left out; scores are final scores (the
reviewer's, else the computed one, 0–100). Hot topics cluster the customers' turns (see :mod:`qa.topics`).

Synchronous and blocking (database reads; the topic clustering is CPU-bound, about a second for a few thousand
turns): call it from a worker thread in async code. Thread-safe (a session per method).
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from qa.review import Period, period_start
from qa.tables import QaFindingRow, QaRecordingRow, QaTurnRow
from qa.topics import TopicCluster, cluster_topics

__all__ = [
    "ComplaintRow",
    "GroupScoreRow",
    "QaAnalytics",
    "ReasonRow",
    "TopicPeriodRow",
    "TopicReport",
    "TrendRow",
    "to_csv",
]

MAX_TOPIC_TURNS = 5000
"""Customer turns clustered at most (an even, deterministic sample beyond)."""


@dataclass(frozen=True)
class ReasonRow:
    """Calls of one reason (a question id of the library, ``unknown`` when none was found) in one period."""

    period_start: date
    reason: str
    title: str
    calls: int


@dataclass(frozen=True)
class TrendRow:
    """One period: inspected calls, their mean final score (``None`` without scores), share flagged (0–1), and how
    many were reviewed."""

    period_start: date
    calls: int
    mean_score: float | None
    flagged_share: float
    reviewed: int


@dataclass(frozen=True)
class GroupScoreRow:
    """One agent or team: calls, mean final score, share flagged (0–1) and its most frequent failing rules
    (``rule:count``, worst first)."""

    key: str
    calls: int
    mean_score: float | None
    flagged_share: float
    top_failing_rules: tuple[str, ...]


@dataclass(frozen=True)
class ComplaintRow:
    """Customer complaints grouped by what was said (``group`` ``phrase``: the rule's phrase id or quote) or by the
    call's reason (``group`` ``reason``)."""

    group: Literal["phrase", "reason"]
    key: str
    title: str
    complaints: int
    calls: int


@dataclass(frozen=True)
class TopicPeriodRow:
    """How many customer turns of topic ``topic_id`` fell in one period."""

    period_start: date
    topic_id: int
    label: str
    turns: int


@dataclass(frozen=True)
class TopicReport:
    """The window's topic clusters (largest first) and their sizes per period."""

    clusters: tuple[TopicCluster, ...]
    per_period: tuple[TopicPeriodRow, ...]


class QaAnalytics:
    """Reports over the QA store's tables (see the module docstring)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def _session(self) -> AbstractContextManager[Session]:
        return session_scope(self._sessions)

    def reasons(
        self, period: Period, since: datetime, until: datetime, titles: Mapping[str, str] | None = None
    ) -> list[ReasonRow]:
        """Calls per reason and period, by period then most calls; ``titles`` maps question ids to their text."""
        r = QaRecordingRow
        stmt = select(_when(), r.reason).where(*_window(since, until))
        counts: Counter[tuple[date, str]] = Counter()
        with self._session() as s:
            for at, reason in s.execute(stmt):
                counts[(period_start(at, period), reason or "unknown")] += 1
        names = titles or {}
        ordered = sorted(counts.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][1]))
        return [ReasonRow(p, reason, names.get(reason, reason), n) for (p, reason), n in ordered]

    def trends(self, period: Period, since: datetime, until: datetime) -> list[TrendRow]:
        """Calls, mean final score, flagged share and reviewed calls per period, oldest first."""
        r = QaRecordingRow
        stmt = select(_when(), _final(), r.flagged, r.review_status).where(*_window(since, until))
        buckets: dict[date, list[tuple[float | None, bool, bool]]] = defaultdict(list)
        with self._session() as s:
            for at, score, flagged, review in s.execute(stmt):
                buckets[period_start(at, period)].append((score, bool(flagged), review == "reviewed"))
        rows = []
        for start in sorted(buckets):
            items = buckets[start]
            rows.append(
                TrendRow(
                    start,
                    len(items),
                    _mean(score for score, _, _ in items),
                    round(sum(f for _, f, _ in items) / len(items), 4),
                    sum(rv for _, _, rv in items),
                )
            )
        return rows

    def agents(self, since: datetime, until: datetime, *, top_rules: int = 3) -> list[GroupScoreRow]:
        """Per agent (``unknown`` when not known), lowest mean score first."""
        return self._groups(QaRecordingRow.agent_id, since, until, top_rules)

    def teams(self, since: datetime, until: datetime, *, top_rules: int = 3) -> list[GroupScoreRow]:
        """Per team (``unknown`` when not known), lowest mean score first."""
        return self._groups(QaRecordingRow.team, since, until, top_rules)

    def _groups(self, column: Any, since: datetime, until: datetime, top_rules: int) -> list[GroupScoreRow]:
        r, f = QaRecordingRow, QaFindingRow
        calls_stmt = select(column, _final(), r.flagged).where(*_window(since, until))
        rules_stmt = (
            select(column, f.rule_id, func.count())
            .join(f, f.call_id == r.call_id)
            .where(*_window(since, until), *_counted())
            .group_by(column, f.rule_id)
        )
        scores: dict[str, list[tuple[float | None, bool]]] = defaultdict(list)
        failing: dict[str, Counter[str]] = defaultdict(Counter)
        with self._session() as s:
            for key, score, flagged in s.execute(calls_stmt):
                scores[key or "unknown"].append((score, bool(flagged)))
            for key, rule_id, n in s.execute(rules_stmt):
                failing[key or "unknown"][rule_id] += int(n)
        rows = []
        for key, items in scores.items():
            top = sorted(failing[key].items(), key=lambda kv: (-kv[1], kv[0]))[:top_rules]
            rows.append(
                GroupScoreRow(
                    key,
                    len(items),
                    _mean(score for score, _ in items),
                    round(sum(fl for _, fl in items) / len(items), 4),
                    tuple(f"{rule}:{n}" for rule, n in top),
                )
            )
        rows.sort(key=lambda g: (g.mean_score if g.mean_score is not None else 101.0, g.key))
        return rows

    def complaints(
        self, since: datetime, until: datetime, titles: Mapping[str, str] | None = None
    ) -> list[ComplaintRow]:
        """``customer_complaint`` findings grouped by phrase (their ``detail``, else the quote) and by call reason,
        most complaints first within each group."""
        r, f = QaRecordingRow, QaFindingRow
        stmt = (
            select(f.call_id, f.detail, f.evidence, r.reason)
            .join(r, f.call_id == r.call_id)
            .where(*_window(since, until), *_counted(), f.rule_id == "customer_complaint")
        )
        findings: Counter[tuple[Literal["phrase", "reason"], str]] = Counter()
        calls: dict[tuple[Literal["phrase", "reason"], str], set[str]] = defaultdict(set)
        with self._session() as s:
            for call_id, detail, evidence, reason in s.execute(stmt):
                phrase = (detail or "").strip() or (evidence or "").strip().lower()[:80] or "unknown"
                for key in (("phrase", phrase), ("reason", reason or "unknown")):
                    findings[key] += 1
                    calls[key].add(call_id)
        names = titles or {}
        ordered = sorted(findings.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][1]))
        return [
            ComplaintRow(group, key, names.get(key, key) if group == "reason" else key, n, len(calls[(group, key)]))
            for (group, key), n in ordered
        ]

    def topics(
        self,
        period: Period,
        since: datetime,
        until: datetime,
        *,
        k_range: tuple[int, int] = (2, 8),
        examples: int = 3,
        seed: int = 0,
    ) -> TopicReport:
        """Hot topics of the customers' turns in the window and their sizes per period (deterministic for the same
        data and ``seed``; see :func:`qa.topics.cluster_topics`)."""
        r, t = QaRecordingRow, QaTurnRow
        stmt = (
            select(_when(), t.text)
            .join(r, t.call_id == r.call_id)
            .where(*_window(since, until), t.channel == "customer")
            .order_by(t.id)
        )
        with self._session() as s:
            rows = [(at, text) for at, text in s.execute(stmt) if text and text.strip()]
        if len(rows) > MAX_TOPIC_TURNS:
            step = len(rows) / MAX_TOPIC_TURNS
            rows = [rows[int(i * step)] for i in range(MAX_TOPIC_TURNS)]
        clusters, assigned = cluster_topics([text for _, text in rows], k_range=k_range, examples=examples, seed=seed)
        labels = {c.topic_id: c.label for c in clusters}
        per: Counter[tuple[date, int]] = Counter()
        for (at, _), topic in zip(rows, assigned, strict=True):
            if topic is not None:
                per[(period_start(at, period), topic)] += 1
        per_period = tuple(
            TopicPeriodRow(p, topic, labels[topic], n) for (p, topic), n in sorted(per.items(), key=lambda kv: kv[0])
        )
        return TopicReport(tuple(clusters), per_period)


def _when() -> ColumnElement[datetime]:
    return func.coalesce(QaRecordingRow.started_at, QaRecordingRow.inspected_at)


def _final() -> ColumnElement[float]:
    return func.coalesce(QaRecordingRow.reviewed_score, QaRecordingRow.score)


def _window(since: datetime, until: datetime) -> list[ColumnElement[bool]]:
    when = _when()
    return [QaRecordingRow.status == "done", when >= since, when < until]


def _counted() -> list[ColumnElement[bool]]:
    f = QaFindingRow
    return [f.severity != "info", or_(f.decision.is_(None), f.decision != "rejected")]


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(sum(present) / len(present), 1) if present else None


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        value = ";".join(str(v) for v in value)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value  # a spreadsheet must not run a cell as a formula
    return value


def to_csv(rows: Sequence[object], row_type: type | None = None) -> str:
    """Rows of dataclasses as CSV text (header = field names; ``row_type`` gives the header when ``rows`` is
    empty). Tuples are joined with ``;``, dates ISO 8601, text that a spreadsheet would run as a formula is
    prefixed with ``'``."""
    kind = row_type or (type(rows[0]) if rows else None)
    if kind is None:
        return ""
    if not dataclasses.is_dataclass(kind):
        raise TypeError("to_csv needs dataclass rows")
    names = [fld.name for fld in dataclasses.fields(kind)]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([_cell(getattr(row, name)) for name in names])
    return out.getvalue()
