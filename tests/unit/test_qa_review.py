"""The QA review workflow on SQLite in tmp_path: the queue and its filters, decisions, added findings, completed
reviews (re-scored or overridden) and the AI-vs-human agreement per rule and period."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.errors import InvalidInputError, NotFoundError
from core.testing import FakeClock
from qa.review import MAX_PAGE, QaReview, QueueFilters, period_start
from qa.store import QaStore
from qa.tables import QaFindingRow
from tests.qa_samples import T0, inspection, qa_sessions, save, standard_calls

pytestmark = pytest.mark.unit


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    yield from qa_sessions(tmp_path / "qa.db")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0 + timedelta(days=10))


@pytest.fixture
def store(sessions: sessionmaker[Session], clock: FakeClock) -> QaStore:
    built = QaStore(sessions, clock=clock)
    standard_calls(built)
    return built


@pytest.fixture
def review(sessions: sessionmaker[Session], clock: FakeClock, store: QaStore) -> QaReview:
    return QaReview(sessions, clock)


def ids(review: QaReview, **filters: object) -> list[str]:
    return [c.call_id for c in review.queue(QueueFilters(**filters)).items]  # type: ignore[arg-type]


def finding_id(store: QaStore, call_id: str, rule_id: str) -> int:
    return next(f.id for f in store.detail(call_id).findings if f.rule_id == rule_id)


def test_queue_shows_flagged_calls_newest_first_and_pages(review: QaReview) -> None:
    assert ids(review) == ["c-both", "c-complaint", "c-promise"]
    assert ids(review, flagged_only=False) == ["c-later", "c-clean", "c-both", "c-complaint", "c-promise"]
    page = review.queue(QueueFilters(flagged_only=False, offset=1, limit=2))
    assert [c.call_id for c in page.items] == ["c-clean", "c-both"]
    assert (page.total, page.offset, page.limit) == (5, 1, 2)
    assert review.queue(QueueFilters(limit=10_000)).limit == MAX_PAGE


def test_queue_filters(review: QaReview) -> None:
    assert ids(review, agent_id="agent-2") == ["c-both", "c-complaint"]
    assert ids(review, team="wealth") == ["c-both"]
    assert ids(review, rule_id="customer_complaint") == ["c-both", "c-complaint"]
    assert ids(review, min_severity="critical") == ["c-both", "c-promise"]
    assert ids(review, max_severity="major") == ["c-complaint"]
    assert ids(review, score_below=50) == ["c-both", "c-promise"]  # auto-failed: 0
    assert ids(review, date_from=T0 + timedelta(hours=1), date_to=T0 + timedelta(days=1)) == ["c-complaint"]
    assert ids(review, reason="wealth.fund_info") == ["c-both"]
    assert ids(review, text="COMPLAINT") == ["c-both", "c-complaint"]
    assert ids(review, text="100%") == []  # LIKE wildcards are literal
    assert ids(review, text="c-prom") == ["c-promise"]
    assert ids(review, review_status="reviewed") == []
    assert ids(review, sort="lowest_score") == ["c-both", "c-promise", "c-complaint"]


def test_decisions_replace_each_other_and_check_ids(review: QaReview, store: QaStore, clock: FakeClock) -> None:
    fid = finding_id(store, "c-promise", "forbidden_phrase")
    first = review.decide("c-promise", fid, "confirmed", "quinn", "clear promise")
    assert (first.decision, first.reviewer, first.note, first.reviewed_at) == (
        "confirmed",
        "quinn",
        "clear promise",
        clock.now(),
    )
    assert review.decide("c-promise", fid, "rejected", "quinn").decision == "rejected"
    assert store.detail("c-promise").findings[-1].decision == "rejected"
    other = finding_id(store, "c-complaint", "customer_complaint")
    with pytest.raises(NotFoundError):
        review.decide("c-promise", other, "confirmed", "quinn")  # a finding of another call
    with pytest.raises(NotFoundError):
        review.decide("c-promise", 99_999, "confirmed", "quinn")
    with pytest.raises(NotFoundError):
        review.decide("no-such-call", fid, "confirmed", "quinn")
    with pytest.raises(InvalidInputError):
        review.decide("c-promise", fid, "maybe", "quinn")  # type: ignore[arg-type]
    assert store.detail("c-complaint").findings[-1].decision is None


def test_rejected_findings_leave_the_rule_filter(review: QaReview, store: QaStore) -> None:
    review.decide("c-complaint", finding_id(store, "c-complaint", "customer_complaint"), "rejected", "quinn")
    assert ids(review, rule_id="customer_complaint") == ["c-both"]


def test_complete_rescores_without_rejected_and_with_human_findings(review: QaReview, store: QaStore) -> None:
    assert store.get("c-promise").score == 0.0  # auto-failed on the forbidden phrase
    review.decide("c-promise", finding_id(store, "c-promise", "forbidden_phrase"), "rejected", "quinn")
    added = review.add_finding("c-promise", "greeting_missing", "minor", 0, 3000, "agent", "no greeting", "quinn")
    assert (added.origin, added.decision, added.reviewer) == ("human", "confirmed", "quinn")
    assert review.review_score("c-promise").result.score == 95.0  # half of the 10-point opening/closing item
    done = review.complete("c-promise", "quinn", note="promise was a quote of the customer")
    assert (done.review_status, done.reviewed_score, done.reviewer, done.final_score) == (
        "reviewed",
        95.0,
        "quinn",
        95.0,
    )
    assert done.reviewed_at is not None
    assert store.get("c-promise").findings_count == 2
    assert ids(review, review_status="reviewed") == ["c-promise"]
    assert store.detail("c-promise").review_note == "promise was a quote of the customer"


def test_complete_with_the_reviewers_score(review: QaReview) -> None:
    assert review.complete("c-complaint", "quinn", score=72).reviewed_score == 72.0
    assert ids(review, score_below=80, agent_id="agent-2") == ["c-both", "c-complaint"]
    with pytest.raises(InvalidInputError):
        review.complete("c-complaint", "quinn", score=101)
    with pytest.raises(NotFoundError):
        review.complete("no-such-call", "quinn")


def test_failed_recordings_cannot_be_reviewed_and_nothing_is_written(
    review: QaReview, store: QaStore, sessions: sessionmaker[Session]
) -> None:
    from qa.models import RecordingMeta

    store.fail(RecordingMeta("c-broken"), "/x/broken.wav", "unreadable file", source="import")
    with pytest.raises(InvalidInputError):
        review.complete("c-broken", "quinn", score=50)
    assert store.get("c-broken").review_status == "open"
    with pytest.raises(NotFoundError):
        review.add_finding("nope", "forbidden_phrase", "critical", 0, 10, "agent", "x", "quinn")
    with pytest.raises(InvalidInputError):
        review.add_finding("c-promise", "no_such_rule", "critical", 0, 10, "agent", "x", "quinn")
    with pytest.raises(InvalidInputError):
        review.add_finding("c-promise", "forbidden_phrase", "critical", 20, 10, "agent", "x", "quinn")
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(QaFindingRow).where(QaFindingRow.origin == "human")) == 0


def test_agreement_per_rule_and_period(review: QaReview, store: QaStore, clock: FakeClock) -> None:
    day1 = clock.now()
    review.decide("c-promise", finding_id(store, "c-promise", "forbidden_phrase"), "confirmed", "quinn")
    review.decide("c-both", finding_id(store, "c-both", "forbidden_phrase"), "rejected", "quinn")
    review.add_finding("c-clean", "forbidden_phrase", "critical", 100, 900, "agent", "risk free", "quinn")
    clock.advance(86400)
    review.decide("c-complaint", finding_id(store, "c-complaint", "customer_complaint"), "confirmed", "quinn")
    rows = review.agreement("day", day1 - timedelta(days=1), day1 + timedelta(days=3))
    got = [(r.period_start, r.rule_id, r.confirmed, r.rejected, r.added, r.precision, r.agreement) for r in rows]
    d1, d2 = day1.date(), day1.date() + timedelta(days=1)
    assert got == [
        (d1, "forbidden_phrase", 1, 1, 1, 0.5, 0.3333),
        (d2, "customer_complaint", 1, 0, 0, 1.0, 1.0),
    ]
    weekly = review.agreement("week", day1 - timedelta(days=7), day1 + timedelta(days=7))
    assert {r.period_start for r in weekly} == {period_start(day1, "week")}
    assert review.agreement("day", day1 + timedelta(days=5), day1 + timedelta(days=6)) == []


def test_period_start_days_and_iso_weeks() -> None:
    sunday = T0 + timedelta(days=6, hours=14)
    assert period_start(sunday, "day") == date(2026, 3, 8)
    assert period_start(sunday, "week") == date(2026, 3, 2)


def test_unscored_calls_use_the_default_form(sessions: sessionmaker[Session], clock: FakeClock) -> None:
    store = QaStore(sessions, clock=clock)
    save(store, inspection("c-plain", findings=()))
    review = QaReview(sessions, clock)
    assert review.review_score("c-plain").card.id == "inbound_service"
    assert review.complete("c-plain", "quinn").reviewed_score == 100.0
