"""Tables of the QA store: inspected recordings, their turns and findings, and reviewers' decisions.

Private layout of :class:`qa.store.QaStore`. ``qa_recordings.call_id`` is the idempotency key of the pipeline: a
recording is inspected once, however often a batch is re-run. ``customer_phone`` is the E.164 number the repeat-call
rule matches on (masked in logs like every phone number).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import utcnow
from core.db import Base, UtcDateTime


class QaRecordingRow(Base):
    """One recording in the QA pipeline, from queued to inspected (or failed), with its score and review state."""

    __tablename__ = "qa_recordings"

    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(16))
    """``voxdesk`` (a recorded call) or ``import`` (a folder of recordings)."""
    path: Mapped[str] = mapped_column(String(1024))
    sha256: Mapped[str | None] = mapped_column(String(64))
    agent_id: Mapped[str | None] = mapped_column(String(64), index=True)
    team: Mapped[str | None] = mapped_column(String(64), index=True)
    customer_phone: Mapped[str | None] = mapped_column(String(32), index=True)
    customer_id: Mapped[str | None] = mapped_column(String(32), index=True)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    direction: Mapped[str] = mapped_column(String(8), default="inbound")
    status: Mapped[str] = mapped_column(String(12), default="pending", index=True)
    """``pending`` → ``running`` → ``done`` | ``failed``."""
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    lang: Mapped[str | None] = mapped_column(String(2))
    parties: Mapped[str | None] = mapped_column(String(10))
    """How the parties were told apart: ``stereo``, ``diarized`` or ``mono``."""
    reason: Mapped[str | None] = mapped_column(String(64), index=True)
    """The call reason (question id) found by the ``call_reason`` rule."""
    scorecard_id: Mapped[str | None] = mapped_column(String(40))
    score: Mapped[float | None] = mapped_column(Float)
    auto_failed: Mapped[bool] = mapped_column(Boolean, default=False)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    """Below the pass mark, auto-failed or with a major/critical finding: in the review queue."""
    max_severity: Mapped[str | None] = mapped_column(String(10))
    findings_count: Mapped[int] = mapped_column(Integer, default=0)
    pipeline_ms: Mapped[int | None] = mapped_column(Integer)
    rules_version: Mapped[str | None] = mapped_column(String(16))
    queued_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    inspected_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    review_status: Mapped[str] = mapped_column(String(12), default="open", index=True)
    """``open`` → ``reviewed``."""
    reviewed_score: Mapped[float | None] = mapped_column(Float)
    reviewer: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    review_note: Mapped[str | None] = mapped_column(Text)

    turns: Mapped[list[QaTurnRow]] = relationship(
        back_populates="recording", cascade="all, delete-orphan", order_by="QaTurnRow.idx"
    )
    findings: Mapped[list[QaFindingRow]] = relationship(
        back_populates="recording", cascade="all, delete-orphan", order_by="QaFindingRow.start_ms"
    )


class QaTurnRow(Base):
    """One turn of an inspected call; ``words`` is JSON ``[[text, start_ms, end_ms], …]``."""

    __tablename__ = "qa_turns"
    __table_args__ = (UniqueConstraint("call_id", "idx"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("qa_recordings.call_id", ondelete="CASCADE"))
    idx: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(10))
    start_ms: Mapped[int] = mapped_column(Integer)
    end_ms: Mapped[int] = mapped_column(Integer)
    lang: Mapped[str] = mapped_column(String(2))
    text: Mapped[str] = mapped_column(Text)
    words: Mapped[str] = mapped_column(Text, default="[]")
    confidence: Mapped[float | None] = mapped_column(Float)

    recording: Mapped[QaRecordingRow] = relationship(back_populates="turns")


class QaFindingRow(Base):
    """A finding of a rule (``origin`` ``ai``) or one a reviewer added (``human``), with the review decision."""

    __tablename__ = "qa_findings"
    __table_args__ = (Index("ix_qa_findings_rule_reviewed", "rule_id", "reviewed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("qa_recordings.call_id", ondelete="CASCADE"), index=True)
    rule_id: Mapped[str] = mapped_column(String(40), index=True)
    severity: Mapped[str] = mapped_column(String(10))
    evidence: Mapped[str] = mapped_column(Text)
    start_ms: Mapped[int] = mapped_column(Integer)
    end_ms: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str | None] = mapped_column(String(10))
    detail: Mapped[str] = mapped_column(String(200), default="")
    origin: Mapped[str] = mapped_column(String(8), default="ai")
    decision: Mapped[str | None] = mapped_column(String(10))
    """``None`` (not reviewed), ``confirmed`` or ``rejected``."""
    reviewer: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    note: Mapped[str | None] = mapped_column(Text)

    recording: Mapped[QaRecordingRow] = relationship(back_populates="findings")
