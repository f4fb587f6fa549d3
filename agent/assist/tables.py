"""Tables of the assist store: the assist state of each assisted call, what its panel showed, the agents' feedback.

Private layout of :class:`agent.assist.store.AssistStore`. ``call_id`` matches the call store's calls but has no
foreign key to them: the agent process may see a call before the server has stored it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, UtcDateTime


class AssistCallRow(Base):
    """One assisted call as the supervisor view lists it (UTC times; sentiment in [-1, 1])."""

    __tablename__ = "assist_calls"

    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    line: Mapped[str] = mapped_column(String(32))
    lang: Mapped[str] = mapped_column(String(2), default="zh")
    customer_id: Mapped[str | None] = mapped_column(String(32), index=True)
    agent_uri: Mapped[str] = mapped_column(String(256), default="")
    agent_user: Mapped[str] = mapped_column(String(64), default="", index=True)
    """User part of the agent leg's SIP URI (``agent101``): how a logged-in agent finds their call."""
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    sentiment: Mapped[float | None] = mapped_column(Float)
    sentiment_trend: Mapped[float | None] = mapped_column(Float)
    alerts: Mapped[int] = mapped_column(Integer, default=0)
    supervisor_alerts: Mapped[int] = mapped_column(Integer, default=0)
    suggestions: Mapped[int] = mapped_column(Integer, default=0)
    last_intent: Mapped[str] = mapped_column(String(256), default="")
    summary: Mapped[str] = mapped_column(Text, default="")


class AssistItemRow(Base):
    """One event shown on a call's panel (intent, suggestion, alert, sentiment, summary), as event JSON."""

    __tablename__ = "assist_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    item_id: Mapped[str] = mapped_column(String(64), default="")
    """``suggestion_id`` / ``alert_id`` (empty for intents and sentiment)."""
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    event: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ix_assist_items_call_id_id", "call_id", "id"), Index("ix_assist_items_item_id", "item_id"))


class AssistFeedbackRow(Base):
    """An agent's *used* / *dismissed* on a suggestion card (feeds the marketing models)."""

    __tablename__ = "assist_feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(String(64), index=True)
    suggestion_id: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    question_id: Mapped[str | None] = mapped_column(String(96))
    script_id: Mapped[str | None] = mapped_column(String(64))
    product_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    customer_id: Mapped[str | None] = mapped_column(String(32), index=True)
