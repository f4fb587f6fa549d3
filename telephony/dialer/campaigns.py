"""Campaigns: create, read, and move through their life cycle (draft → running ⇄ paused → stopped/completed).

Synchronous; each method opens its own session, so any thread may call it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock, SystemClock
from core.db import session_scope
from core.errors import ConflictError, InvalidInputError, NotFoundError
from telephony.dialer.policy import CAMPAIGN_KINDS, CampaignKind
from telephony.dialer.tables import AttemptRow, CampaignRow, ContactRow

__all__ = ["STATUS_MOVES", "Campaign", "CampaignBook", "CampaignStats", "CampaignStatus", "NewCampaign"]

CampaignStatus = Literal["draft", "running", "paused", "stopped", "completed"]
STATUS_MOVES: Final[Mapping[str, frozenset[str]]] = {
    "draft": frozenset({"running", "stopped"}),
    "running": frozenset({"paused", "stopped", "completed"}),
    "paused": frozenset({"running", "stopped"}),
    "stopped": frozenset(),
    "completed": frozenset(),
}
_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class NewCampaign:
    """What a new campaign needs."""

    campaign_id: str
    name: str
    kind: CampaignKind
    lang: Literal["zh", "en"]
    max_channels: int = 4
    max_attempts: int = 3
    config: Mapping[str, Any] = field(default_factory=dict)
    created_by: str | None = None


@dataclass(frozen=True)
class Campaign:
    """A stored campaign."""

    campaign_id: str
    name: str
    kind: CampaignKind
    lang: Literal["zh", "en"]
    status: CampaignStatus
    max_channels: int
    max_attempts: int
    config: Mapping[str, Any]
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None


def _campaign(row: CampaignRow) -> Campaign:
    return Campaign(
        row.campaign_id,
        row.name,
        row.kind,  # type: ignore[arg-type]
        row.lang,  # type: ignore[arg-type]
        row.status,  # type: ignore[arg-type]
        row.max_channels,
        row.max_attempts,
        json.loads(row.config or "{}"),
        row.created_at,
        row.started_at,
        row.ended_at,
    )


@dataclass
class CampaignStats:
    """A campaign's progress: contacts by status, final outcomes, attempts by state."""

    contacts: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)


class CampaignBook:
    """Campaign rows on SQLAlchemy."""

    def __init__(self, sessions: sessionmaker[Session], *, clock: Clock | None = None) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()

    def create(self, new: NewCampaign) -> Campaign:
        """Store a draft campaign; raises :class:`InvalidInputError` or :class:`ConflictError` (id taken)."""
        if not _ID.match(new.campaign_id):
            raise InvalidInputError("campaign id must be 1-64 letters, digits, '.', '-' or '_'")
        if new.kind not in CAMPAIGN_KINDS:
            raise InvalidInputError(f"campaign kind must be one of {', '.join(CAMPAIGN_KINDS)}")
        if not 1 <= new.max_channels <= 256 or not 1 <= new.max_attempts <= 10:
            raise InvalidInputError("max_channels must be 1-256 and max_attempts 1-10")
        if not new.name.strip() or len(new.name) > 128:
            raise InvalidInputError("campaign name must be 1-128 characters")
        with session_scope(self._sessions, write=True) as s:
            if s.get(CampaignRow, new.campaign_id) is not None:
                raise ConflictError("a campaign with this id exists", campaign_id=new.campaign_id)
            row = CampaignRow(
                campaign_id=new.campaign_id,
                name=new.name.strip(),
                kind=new.kind,
                lang=new.lang,
                status="draft",
                max_channels=new.max_channels,
                max_attempts=new.max_attempts,
                config=json.dumps(dict(new.config), ensure_ascii=False),
                created_by=new.created_by,
                created_at=self._clock.now(),
            )
            s.add(row)
            s.flush()
            return _campaign(row)

    def get(self, campaign_id: str) -> Campaign:
        with session_scope(self._sessions) as s:
            row = s.get(CampaignRow, campaign_id)
            if row is None:
                raise NotFoundError("no such campaign", campaign_id=campaign_id)
            return _campaign(row)

    def find(self, *, status: str | None = None, limit: int = 200) -> list[Campaign]:
        """Campaigns, newest first, optionally of one status."""
        query = select(CampaignRow).order_by(CampaignRow.created_at.desc()).limit(limit)
        if status is not None:
            query = query.where(CampaignRow.status == status)
        with session_scope(self._sessions) as s:
            return [_campaign(r) for r in s.scalars(query)]

    def stats(self, campaign_id: str) -> CampaignStats:
        """Counts of the campaign's contacts (by status and final outcome) and attempts (by state)."""
        self.get(campaign_id)  # NotFoundError for an unknown id
        with session_scope(self._sessions) as s:
            contacts = s.execute(
                select(ContactRow.status, ContactRow.outcome, func.count())
                .where(ContactRow.campaign_id == campaign_id)
                .group_by(ContactRow.status, ContactRow.outcome)
            ).all()
            attempts = s.execute(
                select(AttemptRow.state, func.count())
                .where(AttemptRow.campaign_id == campaign_id)
                .group_by(AttemptRow.state)
            ).all()
        out = CampaignStats()
        for status, outcome, n in contacts:
            out.contacts[status] = out.contacts.get(status, 0) + n
            if outcome is not None:
                out.outcomes[outcome] = out.outcomes.get(outcome, 0) + n
        for state, n in attempts:
            out.attempts[state] = n
        return out

    def running(self) -> list[Campaign]:
        """Campaigns the dialer should be dialing now."""
        with session_scope(self._sessions) as s:
            query = select(CampaignRow).where(CampaignRow.status == "running").order_by(CampaignRow.created_at)
            return [_campaign(r) for r in s.scalars(query)]

    def set_status(self, campaign_id: str, status: CampaignStatus) -> Campaign:
        """Move a campaign along :data:`STATUS_MOVES` (compare-and-set); raises :class:`ConflictError`."""
        current = self.get(campaign_id)
        if status not in STATUS_MOVES[current.status]:
            raise ConflictError(f"a {current.status} campaign cannot become {status}", status=current.status)
        now = self._clock.now()
        stamps: dict[str, Any] = {}
        if status == "running" and current.started_at is None:
            stamps["started_at"] = now
        if status in ("stopped", "completed"):
            stamps["ended_at"] = now
        with session_scope(self._sessions, write=True) as s:
            done = s.execute(
                update(CampaignRow)
                .where(CampaignRow.campaign_id == campaign_id, CampaignRow.status == current.status)
                .values(status=status, **stamps)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise ConflictError("the campaign changed meanwhile", campaign_id=campaign_id)
        return self.get(campaign_id)
