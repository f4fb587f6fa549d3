"""Tables of the shared customer profile store.

Every other room (calls, campaigns, QA, marketing, branch vision) reads and writes customers through
:class:`profiles.store.ProfileStore`; these tables are its private layout.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import utcnow
from core.db import Base, UtcDateTime


class CustomerRow(Base):
    """One bank customer (客户)."""

    __tablename__ = "customers"

    customer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    language: Mapped[str] = mapped_column(String(2), default="zh")
    gender: Mapped[str | None] = mapped_column(String(1))
    birth_date: Mapped[date | None] = mapped_column(Date)
    branch_id: Mapped[str | None] = mapped_column(String(32), index=True)
    aum_cny: Mapped[Decimal] = mapped_column(Numeric(18, 2), default=Decimal("0"))
    risk_tolerance: Mapped[str | None] = mapped_column(String(2))
    risk_assessed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    tier: Mapped[str] = mapped_column(String(16), index=True)
    grade: Mapped[str] = mapped_column(String(1), default="C", index=True)
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    vip: Mapped[bool] = mapped_column(Boolean, default=False)
    email: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    phones: Mapped[list[PhoneRow]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="PhoneRow.position"
    )
    holdings: Mapped[list[HoldingRow]] = relationship(back_populates="customer", cascade="all, delete-orphan")
    consents: Mapped[list[ConsentRow]] = relationship(back_populates="customer", cascade="all, delete-orphan")
    tags: Mapped[list[TagRow]] = relationship(back_populates="customer", cascade="all, delete-orphan")


class PhoneRow(Base):
    """A customer's phone number, E.164-normalised; indexed for caller lookup on the live call path."""

    __tablename__ = "customer_phones"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id", ondelete="CASCADE"))
    e164: Mapped[str] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(Integer, default=0)

    customer: Mapped[CustomerRow] = relationship(back_populates="phones")

    __table_args__ = (
        Index("ix_customer_phones_e164", "e164"),
        UniqueConstraint("customer_id", "e164", name="uq_customer_phones_customer_e164"),
    )


class HoldingRow(Base):
    """A product a customer holds (持仓): ``amount_cny`` in yuan."""

    __tablename__ = "customer_holdings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id", ondelete="CASCADE"), index=True)
    product_id: Mapped[str] = mapped_column(String(32), index=True)
    amount_cny: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    opened_on: Mapped[date | None] = mapped_column(Date)
    maturity_on: Mapped[date | None] = mapped_column(Date)

    customer: Mapped[CustomerRow] = relationship(back_populates="holdings")


class ConsentRow(Base):
    """One consent flag with when and how it was last set."""

    __tablename__ = "customer_consents"

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    granted: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    source: Mapped[str] = mapped_column(String(64), default="")

    customer: Mapped[CustomerRow] = relationship(back_populates="consents")


class TagRow(Base):
    """A tag on a customer (标签): ``value`` is free text; ``expires_at`` makes it lapse."""

    __tablename__ = "customer_tags"

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(256), default="")
    source: Mapped[str] = mapped_column(String(64), default="manual")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    customer: Mapped[CustomerRow] = relationship(back_populates="tags")

    __table_args__ = (Index("ix_customer_tags_name_value", "name", "value"),)


class TimelineRow(Base):
    """An event in a customer's history: a call, a campaign outcome, a branch visit, a QA finding."""

    __tablename__ = "customer_timeline"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    summary: Mapped[str] = mapped_column(Text, default="")
    ref: Mapped[str | None] = mapped_column(String(64))
    """Id of the thing this entry is about (call id, campaign id, finding id)."""
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_customer_timeline_customer_at", "customer_id", "at"),)
