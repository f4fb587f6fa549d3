"""The shared customer profile store.

Synchronous (SQLAlchemy sessions); async callers use ``asyncio.to_thread`` or FastAPI's thread pool. Thread-safe:
each method opens its own session from the injected ``sessionmaker``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session, selectinload, sessionmaker

from core.clock import Clock, SystemClock
from core.db import session_scope
from core.errors import NotFoundError
from core.events import ProfileChanged
from core.ids import CustomerId
from profiles.models import (
    Consent,
    ConsentKind,
    Customer,
    CustomerPage,
    Holding,
    Tag,
    TimelineEntry,
    TimelineKind,
)
from profiles.phones import try_normalise_phone
from profiles.tables import ConsentRow, CustomerRow, HoldingRow, PhoneRow, TagRow, TimelineRow

ChangeSink = Callable[[ProfileChanged], None]
"""Receives a :class:`ProfileChanged` after each committed change (called on the caller's thread)."""

_LOAD = (
    selectinload(CustomerRow.phones),
    selectinload(CustomerRow.holdings),
    selectinload(CustomerRow.consents),
    selectinload(CustomerRow.tags),
)


class ProfileStore:
    """Customers, consents, tags and timelines on SQLAlchemy."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        clock: Clock | None = None,
        on_change: ChangeSink | None = None,
        default_region: str = "CN",
    ) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()
        self._on_change = on_change
        self.default_region = default_region

    # --- reads ---------------------------------------------------------------------------------------------

    def get(self, customer_id: str) -> Customer:
        """The customer with this bank customer id; raises :class:`NotFoundError`."""
        with self._read() as s:
            row = s.scalars(select(CustomerRow).where(CustomerRow.customer_id == customer_id).options(*_LOAD)).first()
            if row is None:
                raise NotFoundError("unknown customer", customer_id=customer_id)
            return self._to_domain(row)

    def find_by_phone(self, raw_phone: str) -> list[Customer]:
        """Customers with this phone number (any format; normalised to E.164), most recently updated first.

        Usually one; a shared family number gives several; an unparseable or unknown number gives none.
        Uses the ``customer_phones.e164`` index: one indexed lookup, cheap enough for call set-up.
        """
        e164 = try_normalise_phone(raw_phone, self.default_region)
        if e164 is None:
            return []
        with self._read() as s:
            rows = s.scalars(
                select(CustomerRow)
                .join(PhoneRow)
                .where(PhoneRow.e164 == e164)
                .options(*_LOAD)
                .order_by(CustomerRow.updated_at.desc())
            ).unique()
            return [self._to_domain(r) for r in rows]

    def search(
        self,
        *,
        text: str | None = None,
        tier: str | None = None,
        branch_id: str | None = None,
        tag: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> CustomerPage:
        """Filter customers; ``text`` matches id, name prefix or a phone number. ``limit`` is capped at 500."""
        limit = max(1, min(limit, 500))
        conditions = []
        if text:
            e164 = try_normalise_phone(text, self.default_region)
            alternatives = [CustomerRow.customer_id == text, CustomerRow.name.startswith(text)]
            if e164:
                alternatives.append(
                    CustomerRow.customer_id.in_(select(PhoneRow.customer_id).where(PhoneRow.e164 == e164))
                )
            conditions.append(or_(*alternatives))
        if tier:
            conditions.append(CustomerRow.tier == tier)
        if branch_id:
            conditions.append(CustomerRow.branch_id == branch_id)
        if tag:
            conditions.append(CustomerRow.customer_id.in_(select(TagRow.customer_id).where(TagRow.name == tag)))
        with self._read() as s:
            total = s.scalar(select(func.count()).select_from(CustomerRow).where(*conditions)) or 0
            rows = s.scalars(
                select(CustomerRow)
                .where(*conditions)
                .options(*_LOAD)
                .order_by(CustomerRow.customer_id)
                .offset(offset)
                .limit(limit)
            ).all()
            return CustomerPage(items=[self._to_domain(r) for r in rows], total=total, offset=offset, limit=limit)

    def count(self) -> int:
        """Number of customers."""
        with self._read() as s:
            return s.scalar(select(func.count()).select_from(CustomerRow)) or 0

    def existing_ids(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are stored customers (one query per 500 ids)."""
        wanted = sorted(set(ids))
        found: set[str] = set()
        with self._read() as s:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                found.update(s.scalars(select(CustomerRow.customer_id).where(CustomerRow.customer_id.in_(chunk))))
        return found

    def iter_all(self, batch: int = 500) -> Iterable[Customer]:
        """Every customer ordered by id, loaded ``batch`` at a time (for exports)."""
        last = ""
        while True:
            with self._read() as s:
                rows = s.scalars(
                    select(CustomerRow)
                    .where(CustomerRow.customer_id > last)
                    .options(*_LOAD)
                    .order_by(CustomerRow.customer_id)
                    .limit(batch)
                ).all()
                customers = [self._to_domain(r) for r in rows]
            if not customers:
                return
            yield from customers
            last = customers[-1].customer_id

    def timeline(self, customer_id: str, *, limit: int = 100) -> list[TimelineEntry]:
        """The newest ``limit`` timeline entries of a customer, newest first."""
        self.get(customer_id)
        with self._read() as s:
            rows = s.scalars(
                select(TimelineRow)
                .where(TimelineRow.customer_id == customer_id)
                .order_by(TimelineRow.at.desc(), TimelineRow.id.desc())
                .limit(limit)
            ).all()
            return [
                TimelineEntry(
                    id=r.id,
                    customer_id=CustomerId(r.customer_id),
                    at=r.at,
                    kind=r.kind,
                    summary=r.summary,
                    ref=r.ref,
                    data=r.data,
                )
                for r in rows
            ]

    # --- writes --------------------------------------------------------------------------------------------

    def upsert_many(self, customers: Sequence[Customer], *, source: str, replace_holdings: bool = True) -> int:
        """Create or update ``customers`` in one transaction (all or nothing); returns how many were written.

        Consents given on a customer are written only when they differ from the stored ones (so their
        timestamps keep meaning "when it last changed"). Tags given are merged; holdings are replaced when
        ``replace_holdings`` and the customer carries any.
        """
        now = self._clock.now()
        changes: list[ProfileChanged] = []
        with self._write() as s:
            ids = [c.customer_id for c in customers]
            existing = {
                r.customer_id: r
                for r in s.scalars(select(CustomerRow).where(CustomerRow.customer_id.in_(ids)).options(*_LOAD))
            }
            for c in customers:
                row = existing.get(c.customer_id)
                created = row is None
                if row is None:
                    row = CustomerRow(customer_id=c.customer_id, created_at=now)
                    s.add(row)
                    existing[c.customer_id] = row
                _apply(row, c, now, replace_holdings=replace_holdings)
                changes.append(
                    ProfileChanged(customer_id=c.customer_id, change="created" if created else "updated", source=source)
                )
        self._emit(changes)
        return len(customers)

    def set_consent(self, customer_id: str, kind: ConsentKind, granted: bool, *, source: str) -> Consent:
        """Record a consent decision now; also adds a timeline entry."""
        now = self._clock.now()
        with self._write() as s:
            row = self._row(s, customer_id)
            current = next((c for c in row.consents if c.kind == kind), None)
            if current is None:
                current = ConsentRow(kind=kind, granted=granted, updated_at=now, source=source)
                row.consents.append(current)
            else:
                current.granted, current.updated_at, current.source = granted, now, source
            s.add(
                TimelineRow(
                    customer_id=customer_id,
                    at=now,
                    kind="profile",
                    summary=f"consent {kind} {'granted' if granted else 'withdrawn'}",
                    data={"source": source},
                )
            )
        self._emit(
            [ProfileChanged(customer_id=CustomerId(customer_id), change="consent", fields=(kind,), source=source)]
        )
        return Consent(kind=kind, granted=granted, updated_at=now, source=source)

    def set_tag(self, customer_id: str, tag: Tag) -> None:
        """Create or replace one tag (by name)."""
        now = self._clock.now()
        with self._write() as s:
            row = self._row(s, customer_id)
            existing = next((t for t in row.tags if t.name == tag.name), None)
            if existing is None:
                existing = TagRow(name=tag.name)
                row.tags.append(existing)
            existing.value, existing.source = tag.value, tag.source
            existing.updated_at, existing.expires_at = now, tag.expires_at
        self._emit(
            [
                ProfileChanged(
                    customer_id=CustomerId(customer_id), change="tagged", fields=(tag.name,), source=tag.source
                )
            ]
        )

    def remove_tag(self, customer_id: str, name: str) -> bool:
        """Remove a tag; returns whether it existed."""
        with self._write() as s:
            row = self._row(s, customer_id)
            tag = next((t for t in row.tags if t.name == name), None)
            if tag is None:
                return False
            row.tags.remove(tag)
        self._emit([ProfileChanged(customer_id=CustomerId(customer_id), change="tagged", fields=(name,))])
        return True

    def add_timeline(
        self,
        customer_id: str,
        kind: TimelineKind,
        summary: str,
        *,
        ref: str | None = None,
        data: dict[str, object] | None = None,
        at: datetime | None = None,
    ) -> TimelineEntry:
        """Append to a customer's timeline (a call, a campaign outcome, a visit, a QA finding)."""
        when = at or self._clock.now()
        with self._write() as s:
            self._row(s, customer_id)
            row = TimelineRow(customer_id=customer_id, at=when, kind=kind, summary=summary, ref=ref, data=data or {})
            s.add(row)
            s.flush()
            entry_id = row.id
        return TimelineEntry(
            id=entry_id,
            customer_id=CustomerId(customer_id),
            at=when,
            kind=kind,
            summary=summary,
            ref=ref,
            data=data or {},
        )

    def delete(self, customer_id: str) -> None:
        """Erase a customer and everything attached (right to erasure)."""
        with self._write() as s:
            row = self._row(s, customer_id)
            s.execute(delete(TimelineRow).where(TimelineRow.customer_id == customer_id))
            s.delete(row)
        self._emit([ProfileChanged(customer_id=CustomerId(customer_id), change="deleted")])

    # --- helpers -------------------------------------------------------------------------------------------

    def _read(self) -> AbstractContextManager[Session]:
        return self._session(write=False)

    def _write(self) -> AbstractContextManager[Session]:
        return self._session(write=True)

    def _session(self, *, write: bool = False) -> AbstractContextManager[Session]:
        return session_scope(self._sessions, write=write)

    @staticmethod
    def _row(s: Session, customer_id: str) -> CustomerRow:
        row = s.scalars(select(CustomerRow).where(CustomerRow.customer_id == customer_id).options(*_LOAD)).first()
        if row is None:
            raise NotFoundError("unknown customer", customer_id=customer_id)
        return row

    def _to_domain(self, row: CustomerRow) -> Customer:
        now = self._clock.now()
        return Customer(
            customer_id=CustomerId(row.customer_id),
            name=row.name,
            phones=tuple(p.e164 for p in row.phones),
            language=row.language,
            gender=row.gender,
            birth_date=row.birth_date,
            branch_id=row.branch_id,
            aum_cny=row.aum_cny,
            risk_tolerance=row.risk_tolerance,
            tier=row.tier,
            grade=row.grade,
            groups=tuple(row.groups or ()),
            vip=row.vip,
            email=row.email,
            holdings=tuple(
                Holding(
                    product_id=h.product_id, amount_cny=h.amount_cny, opened_on=h.opened_on, maturity_on=h.maturity_on
                )
                for h in row.holdings
            ),
            consents=tuple(
                Consent(kind=c.kind, granted=c.granted, updated_at=c.updated_at, source=c.source)
                for c in sorted(row.consents, key=lambda c: c.kind)
            ),
            tags=tuple(
                Tag(name=t.name, value=t.value, source=t.source, updated_at=t.updated_at, expires_at=t.expires_at)
                for t in sorted(row.tags, key=lambda t: t.name)
                if t.expires_at is None or t.expires_at > now
            ),
        )

    def _emit(self, changes: list[ProfileChanged]) -> None:
        if self._on_change is None:
            return
        for change in changes:
            self._on_change(change)


def _apply(row: CustomerRow, c: Customer, now: datetime, *, replace_holdings: bool) -> None:
    row.name, row.language, row.gender, row.birth_date = c.name, c.language, c.gender, c.birth_date
    row.branch_id, row.aum_cny, row.tier, row.grade = c.branch_id, c.aum_cny, c.tier, c.grade
    if row.risk_tolerance != c.risk_tolerance:
        row.risk_tolerance = c.risk_tolerance
        row.risk_assessed_at = now if c.risk_tolerance else None
    row.groups, row.vip, row.email, row.updated_at = list(c.groups), c.vip, c.email, now
    wanted = list(dict.fromkeys(c.phones))
    if [p.e164 for p in row.phones] != wanted:
        row.phones.clear()
        row.phones.extend(PhoneRow(e164=p, position=i) for i, p in enumerate(wanted))
    if replace_holdings and c.holdings:
        row.holdings.clear()
        row.holdings.extend(
            HoldingRow(
                product_id=h.product_id, amount_cny=h.amount_cny, opened_on=h.opened_on, maturity_on=h.maturity_on
            )
            for h in c.holdings
        )
    for consent in c.consents:
        current = next((x for x in row.consents if x.kind == consent.kind), None)
        if current is None:
            row.consents.append(
                ConsentRow(
                    kind=consent.kind, granted=consent.granted, updated_at=consent.updated_at, source=consent.source
                )
            )
        elif current.granted != consent.granted:
            current.granted, current.updated_at, current.source = consent.granted, consent.updated_at, consent.source
    for tag in c.tags:
        current_tag = next((x for x in row.tags if x.name == tag.name), None)
        if current_tag is None:
            current_tag = TagRow(name=tag.name)
            row.tags.append(current_tag)
        current_tag.value, current_tag.source = tag.value, tag.source
        current_tag.updated_at, current_tag.expires_at = tag.updated_at or now, tag.expires_at
