"""The QA store's pipeline side on SQLite: idempotent claims, one transaction per save, errors, call history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from core.testing import FakeClock
from qa.models import CallTranscript, Finding, Inspection, RecordingMeta, Turn, Word
from qa.scorecard import load_scorecards, score_call
from qa.store import QaStore
from qa.tables import QaFindingRow, QaTurnRow
from voxdesk.db import make_engine, make_sessions, upgrade
from voxdesk.settings import DatabaseSettings

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 30, 9, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> QaStore:
    engine = make_engine(DatabaseSettings(url=f"sqlite:///{tmp_path / 'qa.db'}"))
    upgrade(engine)
    return QaStore(make_sessions(engine), clock=FakeClock(T0))


def meta(call_id: str = "c1", hours: float = 0, phone: str | None = "+8613800138000") -> RecordingMeta:
    return RecordingMeta(call_id, agent_id="1001", customer_phone=phone, started_at=T0 + timedelta(hours=hours))


def inspection(m: RecordingMeta, findings: tuple[Finding, ...] = ()) -> Inspection:
    cards, default = load_scorecards()
    card = next(c for c in cards if c.id == default)
    turns = (
        Turn("agent", "Thank you for calling.", 0, 1500, "en", (Word(" Thank", 0, 300), Word(" you", 300, 500))),
        Turn("customer", "I lost my card.", 2000, 3500),
    )
    score = score_call(card, findings)
    return Inspection(m, "/rec/c1.wav", "ab" * 32, CallTranscript(turns, 4000, "en"), findings, score, not score.passed,
                      {"transcribe": 1.5, "rules": 0.01}, "v1")  # fmt: skip


PROMISE = Finding("forbidden_phrase", "critical", "guaranteed returns", 500, 1200, "agent", "promised_returns")
REASON = Finding("call_reason", "info", "I lost my card.", 2000, 3500, "customer", "card.lost")


def counts(store: QaStore) -> tuple[int, int]:
    with store._sessions() as s:
        return (
            s.scalar(select(func.count()).select_from(QaTurnRow)) or 0,
            s.scalar(select(func.count()).select_from(QaFindingRow)) or 0,
        )


def test_a_recording_is_inspected_once(store: QaStore) -> None:
    m = meta()
    assert store.enqueue(m, "/rec/c1.wav", source="import") is True
    assert store.enqueue(m, "/rec/c1.wav", source="import") is False
    assert store.status("c1") == "pending"
    assert store.claim(m, "/rec/c1.wav", source="import") == "claimed"
    assert store.claim(m, "/rec/c1.wav", source="import") == "running"  # another worker holds it
    store.save(inspection(m, (PROMISE, REASON)), source="import")
    assert store.claim(m, "/rec/c1.wav", source="import") == "done"
    assert counts(store) == (2, 2)
    detail = store.detail("c1")
    assert detail.call.status == "done" and detail.call.reason == "card.lost" and detail.call.flagged
    assert detail.call.score == 0.0 and detail.call.auto_failed and detail.call.max_severity == "critical"
    assert detail.call.findings_count == 1  # the info finding is not counted
    assert detail.turns[0].words[1].text == " you" and detail.turns[0].words[1].end_ms == 500


def test_force_replaces_an_unreviewed_inspection_without_duplicates(store: QaStore) -> None:
    m = meta()
    store.claim(m, "/rec/c1.wav", source="import")
    store.save(inspection(m, (PROMISE, REASON)), source="import")
    assert store.claim(m, "/rec/c1.wav", source="import", force=True) == "claimed"
    store.save(inspection(m, (REASON,)), source="import")
    assert counts(store) == (2, 1)
    assert store.get("c1").flagged is False and store.get("c1").score == 100.0


def test_failures_are_recorded_and_retried(store: QaStore) -> None:
    m = meta()
    store.claim(m, "/rec/c1.wav", source="import")
    store.fail(m, "/rec/c1.wav", "audio_format: Audio is truncated.", source="import")
    call = store.get("c1")
    assert call.status == "failed" and call.error == "audio_format: Audio is truncated."
    assert store.claim(m, "/rec/c1.wav", source="import") == "claimed"


def test_prior_calls_by_phone_within_a_window(store: QaStore) -> None:
    for call_id, hours, phone in (("a", 0, "+8613800138000"), ("b", 30, "+8613800138000"), ("c", 31, "+8613900139000")):
        store.enqueue(meta(call_id, hours, phone), f"/rec/{call_id}.wav", source="import")
    before = T0 + timedelta(hours=40)
    assert [p.call_id for p in store.prior_calls("+8613800138000", before, 24)] == ["b"]
    assert [p.call_id for p in store.prior_calls("+8613800138000", before, 72)] == ["b", "a"]
    assert store.prior_calls("+8613800138000", T0, 72) == []  # not the call itself
