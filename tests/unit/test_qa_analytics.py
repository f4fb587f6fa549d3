"""QA analytics on SQLite in tmp_path: reasons, trends, agents and teams, complaints, hot topics, CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from core.testing import FakeClock
from qa.analytics import QaAnalytics, ReasonRow, TrendRow, to_csv
from qa.models import Turn
from qa.review import QaReview
from qa.store import QaStore
from qa.topics import cluster_topics, topic_tokens
from tests.qa_samples import T0, inspection, qa_sessions, save, standard_calls

pytestmark = pytest.mark.unit

SINCE, UNTIL = T0 - timedelta(days=1), T0 + timedelta(days=30)
D1, D2 = T0.date(), T0.date() + timedelta(days=1)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    yield from qa_sessions(tmp_path / "qa.db")


@pytest.fixture
def store(sessions: sessionmaker[Session]) -> QaStore:
    built = QaStore(sessions, clock=FakeClock(T0 + timedelta(days=10)))
    standard_calls(built)
    return built


@pytest.fixture
def analytics(sessions: sessionmaker[Session], store: QaStore) -> QaAnalytics:
    return QaAnalytics(sessions)


def test_reasons_per_day_and_week_with_titles(analytics: QaAnalytics) -> None:
    titles = {"cards.report_lost_card": "Report a lost card"}
    rows = analytics.reasons("day", SINCE, UNTIL, titles)
    assert [(r.period_start, r.reason, r.title, r.calls) for r in rows] == [
        (D1, "cards.report_lost_card", "Report a lost card", 2),
        (D2, "cards.report_lost_card", "Report a lost card", 1),
        (D2, "wealth.fund_info", "wealth.fund_info", 1),
        (T0.date() + timedelta(days=8), "unknown", "unknown", 1),
    ]
    weekly = analytics.reasons("week", SINCE, UNTIL)
    assert [(r.period_start, r.reason, r.calls) for r in weekly][:2] == [
        (D1, "cards.report_lost_card", 3),
        (D1, "wealth.fund_info", 1),
    ]
    assert analytics.reasons("day", T0 + timedelta(days=20), UNTIL) == []


def test_trends_per_day(analytics: QaAnalytics, sessions: sessionmaker[Session]) -> None:
    QaReview(sessions, FakeClock(T0)).complete("c-promise", "quinn", score=40)
    rows = analytics.trends("day", SINCE, UNTIL)
    first = rows[0]
    assert (first.period_start, first.calls, first.flagged_share, first.reviewed) == (D1, 2, 1.0, 1)
    assert first.mean_score == round((40 + 97.5) / 2, 1)  # the reviewer's 40 and the complaint call's 97.5
    assert [r.calls for r in rows] == [2, 2, 1]
    assert [r.flagged_share for r in rows] == [1.0, 0.5, 0.0]


def test_agents_and_teams_with_top_failing_rules(
    analytics: QaAnalytics, store: QaStore, sessions: sessionmaker
) -> None:
    agents = {g.key: g for g in analytics.agents(SINCE, UNTIL)}
    assert set(agents) == {"agent-1", "agent-2", "agent-3"}
    two = agents["agent-2"]
    assert (two.calls, two.flagged_share) == (2, 1.0)
    assert two.top_failing_rules == ("customer_complaint:2", "forbidden_phrase:1", "long_silence:1")
    assert agents["agent-3"].mean_score == 100.0
    ordered = [g.key for g in analytics.agents(SINCE, UNTIL)]
    assert ordered[0] == "agent-2" and ordered[-1] == "agent-3"  # lowest mean score first
    # A rejected finding no longer counts against the agent.
    fid = next(f.id for f in store.detail("c-both").findings if f.rule_id == "customer_complaint")
    QaReview(sessions, FakeClock(T0)).decide("c-both", fid, "rejected", "quinn")
    agents = {g.key: g for g in analytics.agents(SINCE, UNTIL)}
    assert agents["agent-2"].top_failing_rules[0] == "customer_complaint:1"
    teams = {g.key: g for g in analytics.teams(SINCE, UNTIL)}
    assert (teams["cards"].calls, teams["wealth"].calls) == (3, 2)


def test_unknown_agents_and_teams_are_grouped(sessions: sessionmaker[Session]) -> None:
    store = QaStore(sessions, clock=FakeClock(T0))
    save(store, inspection("c-anon", agent_id=None, team=None))
    assert [g.key for g in QaAnalytics(sessions).teams(SINCE, UNTIL)] == ["unknown"]


def test_complaints_by_phrase_and_reason(analytics: QaAnalytics) -> None:
    rows = analytics.complaints(SINCE, UNTIL, {"wealth.fund_info": "Fund information"})
    got = [(r.group, r.key, r.title, r.complaints, r.calls) for r in rows]
    assert got == [
        ("phrase", "complaint_request", "complaint_request", 1, 1),
        ("phrase", "unacceptable", "unacceptable", 1, 1),
        ("reason", "cards.report_lost_card", "cards.report_lost_card", 1, 1),
        ("reason", "wealth.fund_info", "Fund information", 1, 1),
    ]


CARD_LINES = [
    "I lost my credit card yesterday",
    "my credit card was stolen",
    "please block my lost credit card",
    "the credit card got lost abroad",
]
MORTGAGE_LINES = [
    "what is the mortgage interest rate",
    "mortgage rate for a new house",
    "I need a mortgage for my house",
    "house mortgage interest please",
]


def topic_call(call_id: str, day: int, texts: list[str]) -> object:
    turns = [Turn("customer", text, 1000 * i, 1000 * i + 900) for i, text in enumerate(texts)]
    turns.append(Turn("agent", "Thank you for calling Voxbank", 9000, 9500))
    return inspection(call_id, started_at=T0 + timedelta(days=day), turns=turns)


def test_hot_topics_cluster_customer_turns_deterministically(sessions: sessionmaker[Session]) -> None:
    store = QaStore(sessions, clock=FakeClock(T0))
    save(
        store,
        topic_call("t1", 0, CARD_LINES[:2] + MORTGAGE_LINES[:1] + ["ok thanks"]),  # type: ignore[arg-type]
        topic_call("t2", 1, CARD_LINES[2:] + MORTGAGE_LINES[1:]),  # type: ignore[arg-type]
    )
    analytics = QaAnalytics(sessions)
    report = analytics.topics("day", SINCE, UNTIL)
    assert [c.size for c in report.clusters] == [4, 4]
    labels = {c.label.split(" / ")[0] for c in report.clusters}
    assert labels <= {"card", "credit", "lost", "mortgage", "house", "rate", "interest"}
    card = next(c for c in report.clusters if "card" in c.terms)
    assert set(card.examples) <= set(CARD_LINES) and len(card.examples) == 3
    per = {(r.period_start, r.topic_id): r.turns for r in report.per_period}
    assert per[(D1, card.topic_id)] == 2 and per[(D2, card.topic_id)] == 2
    assert analytics.topics("day", SINCE, UNTIL) == report  # fixed seeds: the same answer every time


def test_topics_of_chinese_utterances_and_small_inputs() -> None:
    texts = [
        "我的信用卡丢了",
        "信用卡挂失怎么办",
        "信用卡丢失 挂失",
        "房贷的利率是多少",
        "房贷 利率 调整",
        "提前还房贷 利率",
    ]
    clusters, assigned = cluster_topics(texts)
    assert sorted(c.size for c in clusters) == [3, 3]
    assert assigned[0] == assigned[1] == assigned[2] != assigned[3]
    assert cluster_topics([]) == ([], [])
    assert cluster_topics(["ok", "yes"]) == ([], [None, None])
    one, _ = cluster_topics(["credit card lost", "lost credit card"])
    assert len(one) == 1 and one[0].size == 2
    assert "thanks" not in topic_tokens("ok thanks for the credit card")


def test_to_csv_headers_escaping_and_empty_tables() -> None:
    rows = [
        ReasonRow(D1, "cards.lost", '=HYPERLINK("x")', 3),
        ReasonRow(D2, "wealth, funds", "基金", 1),
    ]
    text = to_csv(rows)
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == ["period_start", "reason", "title", "calls"]
    assert parsed[1] == ["2026-03-02", "cards.lost", '\'=HYPERLINK("x")', "3"]
    assert parsed[2] == ["2026-03-03", "wealth, funds", "基金", "1"]
    assert to_csv([], TrendRow).strip() == "period_start,calls,mean_score,flagged_share,reviewed"
    assert to_csv([]) == ""
    from qa.analytics import GroupScoreRow

    group = to_csv([GroupScoreRow("a", 2, None, 0.5, ("forbidden_phrase:2", "talk_over:1"))])
    assert group.splitlines()[1] == "a,2,,0.5,forbidden_phrase:2;talk_over:1"
    assert date(2026, 3, 2) == D1
