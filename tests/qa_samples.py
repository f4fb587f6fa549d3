"""Hand-made QA inspections for the review, analytics and API tests: calls with turns, findings and scores, stored
through :meth:`qa.store.QaStore.save` exactly as the pipeline stores them."""

from __future__ import annotations

import wave
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

import qa.tables  # noqa: F401  (registers the QA tables on the shared Base)
from core.db import Base
from qa.models import SEVERITIES, CallTranscript, Finding, Inspection, RecordingMeta, Turn
from qa.scorecard import load_scorecards, score_call
from qa.store import QaStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
"""A Monday."""

GREETING = Turn("agent", "Thank you for calling Voxbank, this is Anna speaking.", 0, 3000)
LOST_CARD = Turn("customer", "Hello, I lost my credit card yesterday and I need to block it.", 3500, 7000)
PROMISE = Turn("agent", "Our new fund has guaranteed returns, you can't lose.", 7500, 11000)
COMPLAINT = Turn("customer", "This is unacceptable, I want to make a complaint.", 11500, 14000)
CLOSING = Turn("agent", "Is there anything else I can help you with today?", 14500, 17000)


def forbidden(turn: Turn = PROMISE) -> Finding:
    return Finding("forbidden_phrase", "critical", "guaranteed returns", turn.start_ms + 800, turn.start_ms + 2500,
                   "agent", "promise_returns")  # fmt: skip


def complaint(turn: Turn = COMPLAINT, detail: str = "complaint_request") -> Finding:
    return Finding("customer_complaint", "major", "I want to make a complaint", turn.start_ms + 1000, turn.end_ms,
                   "customer", detail)  # fmt: skip


def reason(question_id: str) -> Finding:
    return Finding("call_reason", "info", "I lost my credit card", LOST_CARD.start_ms, LOST_CARD.end_ms, "customer",
                   question_id)  # fmt: skip


def silence() -> Finding:
    return Finding("long_silence", "minor", "9.2 s of silence", 17000, 26200, "agent", "9.2")


def inspection(
    call_id: str,
    *,
    started_at: datetime = T0,
    agent_id: str | None = "agent-1",
    team: str | None = "cards",
    turns: Sequence[Turn] = (GREETING, LOST_CARD, PROMISE, COMPLAINT, CLOSING),
    findings: Sequence[Finding] = (),
    path: str = "/nonexistent/recording.wav",
    phone: str | None = "+8613800138000",
) -> Inspection:
    """One inspected call, scored on the default form; flagged when below the pass mark or with a major or worse
    finding (the pipeline's rule)."""
    cards, default = load_scorecards()
    card = next(c for c in cards if c.id == default)
    score = score_call(card, findings)
    worst = max((SEVERITIES.index(f.severity) for f in findings), default=0)
    flagged = not score.passed or worst >= SEVERITIES.index("major")
    duration = max((t.end_ms for t in turns), default=0) + 1000
    meta = RecordingMeta(call_id, agent_id, phone, started_at, "inbound", team)
    transcript = CallTranscript(tuple(turns), duration, "en", "stereo")
    return Inspection(meta, path, "0" * 64, transcript, tuple(findings), score, flagged, {"rules": 0.01}, "test")


def save(store: QaStore, *inspections: Inspection) -> None:
    for item in inspections:
        store.save(item, source="import")


def qa_sessions(path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a fresh SQLite database at ``path`` with the QA tables (a fixture body: yields, then disposes)."""
    engine = create_engine(f"sqlite:///{path}")
    Base.metadata.create_all(engine)
    try:
        yield sessionmaker(engine, expire_on_commit=False)
    finally:
        engine.dispose()


def standard_calls(store: QaStore) -> None:
    """Five calls over two weeks: three flagged (a promise of returns; a complaint; both), two clean."""
    save(
        store,
        inspection("c-promise", started_at=T0, findings=(reason("cards.report_lost_card"), forbidden())),
        inspection(
            "c-complaint",
            started_at=T0 + timedelta(hours=2),
            agent_id="agent-2",
            findings=(reason("cards.report_lost_card"), complaint()),
        ),
        inspection(
            "c-both",
            started_at=T0 + timedelta(days=1),
            agent_id="agent-2",
            team="wealth",
            findings=(reason("wealth.fund_info"), forbidden(), complaint(detail="unacceptable"), silence()),
        ),
        inspection("c-clean", started_at=T0 + timedelta(days=1, hours=1), findings=(reason("cards.report_lost_card"),)),
        inspection("c-later", started_at=T0 + timedelta(days=8), agent_id="agent-3", team="wealth", findings=()),
    )


def write_wav(path: Path, seconds: float = 20.0, rate_hz: int = 8000) -> bytes:
    """A real stereo 16-bit WAV: a 440 Hz tone on the customer (left) channel, 880 Hz on the agent (right)."""
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    left = (3000 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    right = (3000 * np.sin(2 * np.pi * 880 * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate_hz)
        out.writeframes(np.column_stack([left, right]).tobytes())
    return path.read_bytes()
