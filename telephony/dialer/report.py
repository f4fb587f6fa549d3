"""What a campaign's dashboard and export show: the outcome funnel, conversion, opt-outs, live channels, the abandon
rate of the day, recent attempts, and one export row per contact.

:class:`CampaignReports` reads the dialer's tables (a few grouped queries; blocking, run in a worker thread).

* **Funnel** (contacts, each counted once): on the list → dialed (an attempt reached ``dialing``) → answered (by a
  person or a machine) → reached a person (a ``completed`` attempt) → converted (the final outcome is a success of
  the campaign's kind, :data:`SUCCESS_OUTCOMES`). Conversion = converted / reached.
* **Abandon rate** of a day (the campaign's day in UTC): abandoned attempts / answered attempts of that day. The
  dialer never connects a call ahead of a free agent — the bot takes every answered call at once — so attempts are
  abandoned only when the bot could not serve an answered call; the rate is shown so that the 3 % ceiling that
  regulators set for predictive dialing can be watched.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from core.pii import mask_text
from telephony.dialer.attempts import LIVE_STATES, AttemptState
from telephony.dialer.tables import AttemptRow, CampaignRow, ContactRow

__all__ = ["EXPORT_COLUMNS", "SUCCESS_OUTCOMES", "AttemptLine", "CampaignReport", "CampaignReports"]

SUCCESS_OUTCOMES: Final[Mapping[str, frozenset[str]]] = {
    "identity_verification": frozenset({"verified"}),
    "collection": frozenset({"promised"}),
    "notification": frozenset({"acknowledged", "confirmed_genuine", "reported_fraud"}),
    "survey": frozenset({"surveyed"}),
    "marketing": frozenset({"interested"}),
}
"""Final outcomes that count as a conversion, per campaign kind."""

EXPORT_COLUMNS: Final = (
    "phone", "customer_id", "language", "status", "outcome", "attempts", "last_state", "last_sip_code",
    "last_attempt_at", "next_attempt_at", "result",
)  # fmt: skip
_ANSWERED: Final = (AttemptState.COMPLETED, AttemptState.VOICEMAIL, AttemptState.ABANDONED)


@dataclass(frozen=True)
class AttemptLine:
    """One recent attempt, number masked."""

    attempt_id: str
    phone_masked: str
    state: str
    sip_code: int | None
    dialed_at: datetime | None
    ended_at: datetime | None
    outcome: str | None
    call_id: str | None


@dataclass
class CampaignReport:
    """The dashboard figures of one campaign (see the module docstring)."""

    contacts: int = 0
    dialed: int = 0
    answered: int = 0
    reached: int = 0
    converted: int = 0
    done: int = 0
    opt_outs: int = 0
    live: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    states: dict[str, int] = field(default_factory=dict)
    answered_today: int = 0
    abandoned_today: int = 0

    @property
    def conversion(self) -> float | None:
        """Converted / reached a person (``None`` before anyone was reached)."""
        return self.converted / self.reached if self.reached else None

    @property
    def abandon_rate_today(self) -> float | None:
        return self.abandoned_today / self.answered_today if self.answered_today else None

    @property
    def progress(self) -> float:
        """Share of contacts that are done."""
        return self.done / self.contacts if self.contacts else 0.0

    def funnel(self) -> list[tuple[str, int]]:
        return [("contacts", self.contacts), ("dialed", self.dialed), ("answered", self.answered),
                ("reached", self.reached), ("converted", self.converted)]  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        return {
            "contacts": self.contacts, "dialed": self.dialed, "answered": self.answered, "reached": self.reached,
            "converted": self.converted, "done": self.done, "opt_outs": self.opt_outs, "live": self.live,
            "conversion": self.conversion, "progress": self.progress, "outcomes": self.outcomes,
            "states": self.states, "abandon_rate_today": self.abandon_rate_today,
            "answered_today": self.answered_today, "abandoned_today": self.abandoned_today,
        }  # fmt: skip


class CampaignReports:
    """Reads for the campaign dashboard and export."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def report(self, campaign_id: str, *, now: datetime) -> CampaignReport:
        """The figures of ``campaign_id`` (an unknown id gives zeros: the caller checks it exists)."""
        out = CampaignReport()
        day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        with session_scope(self._sessions) as s:
            kind = s.scalar(select(CampaignRow.kind).where(CampaignRow.campaign_id == campaign_id)) or ""
            for status, outcome, n in s.execute(
                select(ContactRow.status, ContactRow.outcome, func.count())
                .where(ContactRow.campaign_id == campaign_id)
                .group_by(ContactRow.status, ContactRow.outcome)
            ):
                out.contacts += n
                out.done += n if status == "done" else 0
                if outcome:
                    out.outcomes[outcome] = out.outcomes.get(outcome, 0) + n
            attempts = AttemptRow.campaign_id == campaign_id

            def distinct(*conditions: Any) -> int:
                query = select(func.count(func.distinct(AttemptRow.contact_id))).where(attempts, *conditions)
                return int(s.scalar(query) or 0)

            out.dialed = distinct(AttemptRow.dialed_at.is_not(None))
            out.answered = distinct(AttemptRow.state.in_([a.value for a in _ANSWERED]))
            out.reached = distinct(AttemptRow.state == AttemptState.COMPLETED.value)
            for state, n in s.execute(
                select(AttemptRow.state, func.count()).where(attempts).group_by(AttemptRow.state)
            ):
                out.states[state] = n
            today = (AttemptRow.ended_at >= day, AttemptRow.ended_at < day + timedelta(days=1))
            for state, n in s.execute(
                select(AttemptRow.state, func.count())
                .where(attempts, *today, AttemptRow.state.in_([a.value for a in _ANSWERED]))
                .group_by(AttemptRow.state)
            ):
                out.answered_today += n
                out.abandoned_today += n if state == AttemptState.ABANDONED.value else 0
        out.live = sum(n for state, n in out.states.items() if state in {s.value for s in LIVE_STATES})
        out.converted = sum(n for o, n in out.outcomes.items() if o in SUCCESS_OUTCOMES.get(kind, frozenset()))
        out.opt_outs = out.outcomes.get("opted_out", 0)
        return out

    def recent(self, campaign_id: str, *, limit: int = 20) -> list[AttemptLine]:
        """The latest attempts, newest first, numbers masked."""
        query = (
            select(AttemptRow, ContactRow.phone, ContactRow.outcome)
            .join(ContactRow, ContactRow.contact_id == AttemptRow.contact_id)
            .where(AttemptRow.campaign_id == campaign_id)
            .order_by(AttemptRow.created_at.desc())
            .limit(limit)
        )
        with session_scope(self._sessions) as s:
            rows = s.execute(query).all()
        return [
            AttemptLine(a.attempt_id, mask_text(p), a.state, a.sip_code, a.dialed_at, a.ended_at, o, a.call_id)
            for a, p, o in rows
        ]

    def export_rows(self, campaign_id: str, *, batch: int = 1000) -> Iterator[dict[str, str]]:
        """One row per contact (:data:`EXPORT_COLUMNS`), in list order; full numbers (the export is audited)."""
        last = 0
        while True:
            with session_scope(self._sessions) as s:
                contacts = list(
                    s.scalars(
                        select(ContactRow)
                        .where(ContactRow.campaign_id == campaign_id, ContactRow.contact_id > last)
                        .order_by(ContactRow.contact_id)
                        .limit(batch)
                    )
                )
                ids = [c.contact_id for c in contacts]
                latest: dict[int, AttemptRow] = {}
                for row in s.scalars(select(AttemptRow).where(AttemptRow.contact_id.in_(ids))) if ids else []:
                    if row.contact_id not in latest or row.number > latest[row.contact_id].number:
                        latest[row.contact_id] = row
            for c in contacts:
                a: AttemptRow | None = latest.get(c.contact_id)
                yield {
                    "phone": c.phone, "customer_id": c.customer_id or "", "language": c.language,
                    "status": c.status, "outcome": c.outcome or "", "attempts": str(c.attempts),
                    "last_state": a.state if a else "", "last_sip_code": str(a.sip_code or "") if a else "",
                    "last_attempt_at": a.created_at.isoformat() if a else "",
                    "next_attempt_at": c.next_attempt_at.isoformat() if c.next_attempt_at else "",
                    "result": json.dumps(json.loads(c.result or "{}"), ensure_ascii=False, sort_keys=True),
                }  # fmt: skip
            if len(contacts) < batch:
                return
            last = contacts[-1].contact_id
