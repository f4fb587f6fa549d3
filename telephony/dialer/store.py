"""The dialer's database side: campaigns, contacts, attempts and the DNC list, each change one transaction.

The guarantees the dialer relies on:

* :meth:`DialerStore.claim_due` turns due contacts into ``queued`` attempts. One conditional ``UPDATE … WHERE
  status = 'pending'`` per contact and the unique ``(contact_id, number)`` make it safe for several dialers at once.
  A contact has at most one live attempt.
* :meth:`DialerStore.move` only follows :data:`telephony.dialer.attempts.TRANSITIONS`, and only from the state the
  caller last saw (a compare-and-set). ``dialing`` is committed before the INVITE, and it counts the attempt.
* :meth:`DialerStore.close` ends an attempt and reschedules or finishes its contact in the same transaction.
* :meth:`DialerStore.recover` is run when a dialer starts. It cancels attempts that were queued but never dialed
  (not counted) and closes live ones as ``interrupted`` (counted, never redialed).

Synchronous; each method opens its own session, so any thread may call it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock, SystemClock
from core.db import session_scope
from core.errors import ConflictError, ImportRejectedError, NotFoundError, RowError
from core.logging import get_logger
from telephony.dialer.attempts import FINAL_STATES, LIVE_STATES, AttemptState, check_move
from telephony.dialer.lists import ListContact
from telephony.dialer.tables import AttemptRow, ContactRow, DncRow

log = get_logger(__name__)

__all__ = ["Claim", "DialerStore", "DueContact", "LiveAttempt", "Recovery"]

Rescheduler = Callable[["DueContact", AttemptState, datetime], datetime | None]
"""Given a contact (its ``attempts`` already counting the attempt that ended), the outcome and when it ended: when
to try again, or ``None`` when the contact is done."""


@dataclass(frozen=True)
class DueContact:
    """A contact as the dialer sees it."""

    contact_id: int
    campaign_id: str
    phone: str
    zones: tuple[str, ...]
    language: str
    customer_id: str | None
    fields: Mapping[str, str]
    attempts: int


@dataclass(frozen=True)
class Claim:
    """A ``queued`` attempt the caller now owns."""

    attempt_id: str
    number: int
    """The attempt's sequence number for its contact (1, 2, …; a cancelled, never-dialed attempt has one too)."""
    contact: DueContact


@dataclass(frozen=True)
class LiveAttempt:
    """An attempt that is queued or live."""

    attempt_id: str
    campaign_id: str
    contact_id: int
    number: int
    state: AttemptState
    dialer_id: str | None


@dataclass
class Recovery:
    """What :meth:`DialerStore.recover` found."""

    interrupted: list[str] = field(default_factory=list)
    """Attempts that were live: closed as ``interrupted``."""
    cancelled: list[str] = field(default_factory=list)
    """Attempts that were queued, never dialed: cancelled, their contacts pending again."""


def _due(row: ContactRow) -> DueContact:
    return DueContact(
        row.contact_id,
        row.campaign_id,
        row.phone,
        tuple(row.zones.split()),
        row.language,
        row.customer_id,
        json.loads(row.fields or "{}"),
        row.attempts,
    )


class DialerStore:
    """Contacts, attempts and the DNC list on SQLAlchemy."""

    def __init__(self, sessions: sessionmaker[Session], *, clock: Clock | None = None) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()

    # --- contacts ------------------------------------------------------------------------------------------

    def add_contacts(self, campaign_id: str, contacts: Sequence[ListContact]) -> int:
        """Add a validated dialing list to a campaign, all or nothing; a number already in the campaign rejects
        the import naming its row. Returns the number added."""
        phones = [c.phone for c in contacts]
        with session_scope(self._sessions, write=True) as s:
            existing = set(
                s.scalars(
                    select(ContactRow.phone).where(ContactRow.campaign_id == campaign_id, ContactRow.phone.in_(phones))
                )
            )
            if existing:
                rows = [RowError(c.line, "phone", "already in this campaign") for c in contacts if c.phone in existing]
                raise ImportRejectedError("dialing list rejected, nothing was imported", rows)
            s.add_all(
                ContactRow(
                    campaign_id=campaign_id,
                    phone=c.phone,
                    zones=" ".join(c.zones),
                    language=c.language,
                    customer_id=c.customer_id,
                    fields=json.dumps(c.fields, ensure_ascii=False),
                    status="pending",
                )
                for c in contacts
            )
        return len(contacts)

    def contact(self, contact_id: int) -> DueContact:
        with session_scope(self._sessions) as s:
            row = s.get(ContactRow, contact_id)
            if row is None:
                raise NotFoundError("no such contact", contact_id=contact_id)
            return _due(row)

    # --- attempts ------------------------------------------------------------------------------------------

    def claim_due(self, campaign_id: str, *, limit: int, dialer_id: str) -> list[Claim]:
        """Up to ``limit`` contacts of the campaign whose next attempt is due now, each with a new ``queued``
        attempt owned by ``dialer_id``, oldest due first. Contacts another dialer claimed first are skipped."""
        if limit <= 0:
            return []
        now = self._clock.now()
        claims: list[Claim] = []
        with session_scope(self._sessions, write=True) as s:
            due = s.scalars(
                select(ContactRow)
                .where(
                    ContactRow.campaign_id == campaign_id,
                    ContactRow.status == "pending",
                    or_(ContactRow.next_attempt_at.is_(None), ContactRow.next_attempt_at <= now),
                )
                .order_by(ContactRow.next_attempt_at.is_not(None), ContactRow.next_attempt_at, ContactRow.contact_id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
            for row in due:
                won = s.execute(
                    update(ContactRow)
                    .where(ContactRow.contact_id == row.contact_id, ContactRow.status == "pending")
                    .values(status="active")
                    .execution_options(synchronize_session=False)
                )
                if won.rowcount != 1:  # type: ignore[attr-defined]
                    continue
                last = s.scalar(select(func.max(AttemptRow.number)).where(AttemptRow.contact_id == row.contact_id))
                attempt = AttemptRow(
                    attempt_id=uuid.uuid4().hex,
                    campaign_id=campaign_id,
                    contact_id=row.contact_id,
                    number=(last or 0) + 1,
                    state=AttemptState.QUEUED.value,
                    dialer_id=dialer_id,
                    created_at=now,
                )
                s.add(attempt)
                claims.append(Claim(attempt.attempt_id, attempt.number, _due(row)))
            try:
                s.flush()
            except IntegrityError as exc:  # a racing dialer wrote the same attempt number: take nothing
                raise ConflictError("another dialer claimed these contacts") from exc
        return claims

    def move(self, attempt_id: str, current: AttemptState, new: AttemptState, **values: Any) -> None:
        """Move a live attempt ``current → new`` (not to a final state: see :meth:`close`), writing ``values``
        (``call_id``, ``media_worker``, ``sip_code``, ``machine``, ``detail``). ``dialing`` stamps ``dialed_at``
        and counts the attempt on the contact; ``answered`` stamps ``answered_at``. Raises
        :class:`ConflictError` when the move is not allowed or the attempt is no longer in ``current``."""
        check_move(current, new)
        if new in FINAL_STATES:
            raise ConflictError("final states are reached with close()", state=str(new))
        now = self._clock.now()
        stamps = {"dialed_at": now} if new is AttemptState.DIALING else {}
        if new is AttemptState.ANSWERED:
            stamps = {"answered_at": now}
        with session_scope(self._sessions, write=True) as s:
            done = s.execute(
                update(AttemptRow)
                .where(AttemptRow.attempt_id == attempt_id, AttemptRow.state == current.value)
                .values(state=new.value, **stamps, **values)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise ConflictError("the attempt is no longer in that state", state=str(current))
            if new is AttemptState.DIALING:
                row = s.get(AttemptRow, attempt_id)
                assert row is not None
                s.execute(
                    update(ContactRow)
                    .where(ContactRow.contact_id == row.contact_id)
                    .values(attempts=ContactRow.attempts + 1)
                )

    def close(
        self,
        attempt_id: str,
        current: AttemptState,
        outcome: AttemptState,
        *,
        retry_at: datetime | None,
        final: str | None = None,
        result: Mapping[str, Any] | None = None,
        **values: Any,
    ) -> None:
        """End an attempt with ``outcome`` and, in the same transaction, put its contact back to ``pending`` for
        ``retry_at`` or mark it ``done`` with ``final`` (default: the outcome) and the dialog's ``result``."""
        check_move(current, outcome)
        if outcome not in FINAL_STATES:
            raise ConflictError("close() needs a final state", state=str(outcome))
        now = self._clock.now()
        with session_scope(self._sessions, write=True) as s:
            done = s.execute(
                update(AttemptRow)
                .where(AttemptRow.attempt_id == attempt_id, AttemptRow.state == current.value)
                .values(state=outcome.value, ended_at=now, **values)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise ConflictError("the attempt is no longer in that state", state=str(current))
            row = s.get(AttemptRow, attempt_id)
            assert row is not None
            contact: dict[str, Any] = {"status": "pending", "next_attempt_at": retry_at}
            if retry_at is None:
                contact = {"status": "done", "next_attempt_at": None, "outcome": final or outcome.value}
            if result:
                contact["result"] = json.dumps(dict(result), ensure_ascii=False)
            s.execute(update(ContactRow).where(ContactRow.contact_id == row.contact_id).values(**contact))

    def release(self, attempt_id: str, next_attempt_at: datetime | None, reason: str) -> None:
        """Give back a ``queued`` attempt that was never dialed, because the dial-time check found the callee
        outside the calling window. The attempt row is removed (nothing happened) and the contact waits for
        ``next_attempt_at``, or is finished as ``no_window`` when the calendar has no opening ahead."""
        with session_scope(self._sessions, write=True) as s:
            row = s.get(AttemptRow, attempt_id)
            if row is None or row.state != AttemptState.QUEUED.value:
                raise ConflictError("only a queued attempt can be released")
            contact_id = row.contact_id
            s.delete(row)
            values: dict[str, Any] = {"status": "pending", "next_attempt_at": next_attempt_at}
            if next_attempt_at is None:
                values = {"status": "done", "next_attempt_at": None, "outcome": "no_window"}
            s.execute(update(ContactRow).where(ContactRow.contact_id == contact_id).values(**values))
        log.info("dial attempt released", reason=reason)

    def live_attempts(self, *, campaign_id: str | None = None, dialer_id: str | None = None) -> list[LiveAttempt]:
        """Attempts queued or live, optionally of one campaign or one dialer."""
        states = [s.value for s in LIVE_STATES | {AttemptState.QUEUED}]
        query = select(AttemptRow).where(AttemptRow.state.in_(states))
        if campaign_id is not None:
            query = query.where(AttemptRow.campaign_id == campaign_id)
        if dialer_id is not None:
            query = query.where(AttemptRow.dialer_id == dialer_id)
        with session_scope(self._sessions) as s:
            return [
                LiveAttempt(r.attempt_id, r.campaign_id, r.contact_id, r.number, AttemptState(r.state), r.dialer_id)
                for r in s.scalars(query)
            ]

    def recover(self, reschedule: Rescheduler, *, dialer_id: str | None = None) -> Recovery:
        """Settle what a stopped dialer left (``dialer_id``, or every dialer when ``None``): queued attempts are
        cancelled and their contacts pending again; live ones are closed ``interrupted`` and rescheduled."""
        report = Recovery()
        now = self._clock.now()
        for row in self.live_attempts(dialer_id=dialer_id):
            state = row.state
            try:
                if state is AttemptState.QUEUED:
                    self._cancel_queued(row.attempt_id)
                    report.cancelled.append(row.attempt_id)
                else:
                    contact = self.contact(row.contact_id)
                    retry_at = reschedule(contact, AttemptState.INTERRUPTED, now)
                    self.close(row.attempt_id, state, AttemptState.INTERRUPTED, retry_at=retry_at, detail="recovered")
                    report.interrupted.append(row.attempt_id)
            except ConflictError:  # it moved on meanwhile (another process settled it)
                continue
        if report.interrupted or report.cancelled:
            log.warning("dialer recovery", interrupted=len(report.interrupted), cancelled=len(report.cancelled))
        return report

    def _cancel_queued(self, attempt_id: str) -> None:
        with session_scope(self._sessions, write=True) as s:
            done = s.execute(
                update(AttemptRow)
                .where(AttemptRow.attempt_id == attempt_id, AttemptRow.state == AttemptState.QUEUED.value)
                .values(state=AttemptState.CANCELLED.value, ended_at=self._clock.now(), detail="never dialed")
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise ConflictError("the attempt is no longer queued")
            row = s.get(AttemptRow, attempt_id)
            assert row is not None
            s.execute(update(ContactRow).where(ContactRow.contact_id == row.contact_id).values(status="pending"))

    def answered_today(self, campaign_id: str, since: datetime) -> tuple[int, int]:
        """``(answered, abandoned)``: attempts of the campaign that ended since ``since`` answered (a person or a
        machine) and, of those, abandoned; for the abandon-rate ceiling."""
        answered = (AttemptState.COMPLETED.value, AttemptState.VOICEMAIL.value, AttemptState.ABANDONED.value)
        with session_scope(self._sessions) as s:
            rows = s.execute(
                select(AttemptRow.state, func.count())
                .where(AttemptRow.campaign_id == campaign_id, AttemptRow.ended_at >= since,
                       AttemptRow.state.in_(answered))
                .group_by(AttemptRow.state)
            ).all()  # fmt: skip
        counts: dict[str, int] = {str(state): int(n) for state, n in rows}
        return sum(counts.values()), counts.get(AttemptState.ABANDONED.value, 0)

    # --- do not call ---------------------------------------------------------------------------------------

    def add_dnc(self, phone: str, *, reason: str, source: str | None = None) -> bool:
        """Put an E.164 number on the DNC list; ``False`` when it already was."""
        with session_scope(self._sessions, write=True) as s:
            if s.get(DncRow, phone) is not None:
                return False
            s.add(DncRow(phone=phone, reason=reason, source=source, added_at=self._clock.now()))
            return True

    def remove_dnc(self, phone: str) -> bool:
        with session_scope(self._sessions, write=True) as s:
            row = s.get(DncRow, phone)
            if row is None:
                return False
            s.delete(row)
            return True

    def dnc_numbers(self, phones: Iterable[str]) -> set[str]:
        """The ones of ``phones`` that are on the DNC list."""
        wanted = list(set(phones))
        with session_scope(self._sessions) as s:
            return set(s.scalars(select(DncRow.phone).where(DncRow.phone.in_(wanted)))) if wanted else set()
