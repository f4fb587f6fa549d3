"""Tables of the call store: calls, their legs, final utterances and DTMF digits.

Private layout of :class:`telephony.callstore.CallStore`; other rooms read calls through the store. ``customer_id``
is the bank customer number resolved from the caller at call set-up; it deliberately has no foreign key to the
profile store's tables (rooms own their tables; a customer erased later leaves an unlinked call record).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import utcnow
from core.db import Base, UtcDateTime


class CallRow(Base):
    """One telephone call (both legs), from offer to hangup; times are UTC, durations in ms."""

    __tablename__ = "calls"

    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    direction: Mapped[str] = mapped_column(String(8))
    line: Mapped[str] = mapped_column(String(32))
    caller_e164: Mapped[str | None] = mapped_column(String(32))
    """The customer's number: the caller of an inbound call, the callee of an outbound (campaign) call."""
    customer_id: Mapped[str | None] = mapped_column(String(32), index=True)
    campaign_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    end_reason: Mapped[str | None] = mapped_column(String(16))
    sip_code: Mapped[int | None] = mapped_column(Integer)
    media_worker: Mapped[str | None] = mapped_column(String(64))
    recording_path: Mapped[str | None] = mapped_column(String(512))
    recording_sha256: Mapped[str | None] = mapped_column(String(64))
    recording_duration_ms: Mapped[int | None] = mapped_column(Integer)
    lang: Mapped[str | None] = mapped_column(String(2))

    legs: Mapped[list[CallLegRow]] = relationship(
        back_populates="call", cascade="all, delete-orphan", order_by="CallLegRow.connected_at"
    )

    __table_args__ = (Index("ix_calls_line_started_at", "line", "started_at"),)


class CallLegRow(Base):
    """One leg of a call (customer, agent or bot) with its far end and when its media flowed."""

    __tablename__ = "call_legs"

    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id", ondelete="CASCADE"), primary_key=True)
    leg: Mapped[str] = mapped_column(String(8), primary_key=True)
    remote_uri: Mapped[str] = mapped_column(String(256), default="")
    connected_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    call: Mapped[CallRow] = relationship(back_populates="legs")


class UtteranceRow(Base):
    """The final text of one utterance; ``start_ms``/``end_ms`` from the call's start.

    ``(call_id, leg, start_ms)`` is unique: a re-delivered transcript event is recorded once.
    """

    __tablename__ = "utterances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id", ondelete="CASCADE"), index=True)
    leg: Mapped[str] = mapped_column(String(8))
    start_ms: Mapped[int] = mapped_column(Integer)
    end_ms: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text, default="")
    lang: Mapped[str | None] = mapped_column(String(2))
    confidence: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("call_id", "leg", "start_ms", name="uq_utterances_call_leg_start"),)


class DtmfRow(Base):
    """One DTMF digit; ``at_ms`` from the call's start, ``duration_ms`` as signalled (when known).

    ``(call_id, at_ms, digit)`` is unique: a re-delivered digit event is recorded once.
    """

    __tablename__ = "call_dtmf"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id", ondelete="CASCADE"))
    digit: Mapped[str] = mapped_column(String(1))
    at_ms: Mapped[int] = mapped_column(Integer)
    duration_ms: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("call_id", "at_ms", "digit", name="uq_call_dtmf_call_at_digit"),)
