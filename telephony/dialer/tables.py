"""Tables of the dialer: campaigns, their contacts, every dial attempt, and the do-not-call list.

Private layout of :class:`telephony.dialer.store.DialerStore`. Crash safety lives here:

* ``(contact_id, number)`` is unique, so one attempt of a contact can exist only once, however many dialers race;
* a contact is claimed by one conditional ``UPDATE … WHERE status = 'pending'`` that also writes the attempt row in
  the same transaction, so two dialers can never both dial it;
* ``dialing`` is committed before the INVITE goes out (see :mod:`telephony.dialer.attempts`).

``customer_id`` has no foreign key to the profile store (rooms own their tables). Times are UTC.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, UtcDateTime


class CampaignRow(Base):
    """One outbound campaign: what it says, to whom, when, and how hard it dials."""

    __tablename__ = "dialer_campaigns"

    campaign_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(24))
    lang: Mapped[str] = mapped_column(String(2))
    status: Mapped[str] = mapped_column(String(12), default="draft", index=True)
    """``draft``, ``running``, ``paused``, ``stopped`` or ``completed``."""
    max_channels: Mapped[int] = mapped_column(Integer, default=4)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    config: Mapped[str] = mapped_column(Text, default="{}")
    """JSON: calendar, retry delays, ring timeout, answering-machine action, product, agent skill group."""
    created_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ContactRow(Base):
    """One number of a campaign's dialing list, with where it stands."""

    __tablename__ = "dialer_contacts"

    contact_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("dialer_campaigns.campaign_id", ondelete="CASCADE"))
    phone: Mapped[str] = mapped_column(String(32))
    zones: Mapped[str] = mapped_column(String(512))
    """Space-separated IANA zones the callee may be in."""
    language: Mapped[str] = mapped_column(String(2))
    customer_id: Mapped[str | None] = mapped_column(String(32), index=True)
    fields: Mapped[str] = mapped_column(Text, default="{}")
    """JSON: the campaign kind's list fields (amount due, due date, product…)."""
    status: Mapped[str] = mapped_column(String(12), default="pending")
    """``pending`` (waiting for ``next_attempt_at``), ``active`` (an attempt is live) or ``done``."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    outcome: Mapped[str | None] = mapped_column(String(24))
    """The final outcome when ``done``: reached, opted_out, blocked_dnc, no_consent, attempts_exhausted…"""
    result: Mapped[str] = mapped_column(Text, default="{}")
    """JSON: fields the dialog captured (promise-to-pay date, survey scores, interest…)."""
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        UniqueConstraint("campaign_id", "phone", name="uq_dialer_contacts_campaign_phone"),
        Index("ix_dialer_contacts_due", "campaign_id", "status", "next_attempt_at"),
    )


class AttemptRow(Base):
    """One dial attempt, moved through :class:`telephony.dialer.attempts.AttemptState` one transaction at a time."""

    __tablename__ = "dialer_attempts"

    attempt_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("dialer_campaigns.campaign_id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("dialer_contacts.contact_id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    """1 for the first attempt of the contact, 2 for the second…"""
    state: Mapped[str] = mapped_column(String(12), index=True)
    dialer_id: Mapped[str | None] = mapped_column(String(64))
    """The dialer process that claimed it (its live attempts are interrupted when it restarts)."""
    call_id: Mapped[str | None] = mapped_column(String(64))
    media_worker: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    dialed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sip_code: Mapped[int | None] = mapped_column(Integer)
    machine: Mapped[bool | None] = mapped_column(Boolean)
    """Answering-machine detection's verdict, once answered."""
    detail: Mapped[str | None] = mapped_column(String(256))

    __table_args__ = (
        UniqueConstraint("contact_id", "number", name="uq_dialer_attempts_contact_number"),
        Index("ix_dialer_attempts_campaign_state", "campaign_id", "state"),
    )


class DncRow(Base):
    """A number the bank must not call (a customer's opt-out, a regulator's list, a complaint)."""

    __tablename__ = "dnc_numbers"

    phone: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32))
    """``opt_out`` (said on a call), ``customer_request``, ``regulator``, ``import``…"""
    source: Mapped[str | None] = mapped_column(String(64))
    """Campaign or user that added it."""
    added_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
