"""CSV import and export of customers and holdings.

Imports are all-or-nothing: every row is validated first; if any row is bad, nothing is written and
:class:`ImportRejectedError` lists each bad row by its line number in the file (the header is line 1).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Protocol

from core.csv_rows import MAX_ERRORS, read_rows
from core.errors import ImportRejectedError, InvalidInputError, RowError
from core.ids import CustomerId
from profiles.models import CONSENT_KINDS, Consent, Customer, Holding
from profiles.phones import normalise_phone
from profiles.store import ProfileStore
from profiles.tiers import tier_for_aum

CUSTOMER_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "name",
    "phones",
    "language",
    "gender",
    "birth_date",
    "branch_id",
    "aum_cny",
    "risk_tolerance",
    "tier",
    "grade",
    "groups",
    "vip",
    "consent_marketing_calls",
    "consent_recording",
    "consent_biometrics",
    "email",
)
REQUIRED_CUSTOMER_COLUMNS = ("customer_id", "name", "phones")
HOLDING_COLUMNS: tuple[str, ...] = ("customer_id", "product_id", "amount_cny", "opened_on", "maturity_on")

_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_PRODUCT = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TRUE = {"true", "yes", "y", "1", "是"}
_FALSE = {"false", "no", "n", "0", "否", ""}


@dataclass
class ImportResult:
    """What an import committed."""

    customers: int = 0
    holdings: int = 0
    warnings: list[str] = field(default_factory=list)


def parse_customers(text: str, *, default_region: str = "CN", now: datetime) -> list[Customer]:
    """Validate a customers CSV (columns :data:`CUSTOMER_COLUMNS`); raises :class:`ImportRejectedError`."""
    rows, errors = read_rows(text, REQUIRED_CUSTOMER_COLUMNS, CUSTOMER_COLUMNS)
    customers: list[Customer] = []
    seen: dict[str, int] = {}
    for line, raw in rows:
        row_errors: list[RowError] = []

        def bad(column: str, reason: str, line: int = line, row_errors: list[RowError] = row_errors) -> None:
            row_errors.append(RowError(line, column, reason))

        cid = raw.get("customer_id", "").strip()
        if not _ID.match(cid):
            bad("customer_id", "must be 1-32 letters, digits, '-' or '_'")
        elif cid in seen:
            bad("customer_id", f"duplicate of row {seen[cid]}")
        else:
            seen[cid] = line
        name = raw.get("name", "").strip()
        if not name or len(name) > 128:
            bad("name", "required, at most 128 characters")
        phones: list[str] = []
        for part in _split(raw.get("phones", "")):
            try:
                phones.append(normalise_phone(part, default_region))
            except InvalidInputError:
                bad("phones", "not a valid phone number")
        if not phones and not any(e.column == "phones" for e in row_errors):
            bad("phones", "at least one phone number is required")
        language = (raw.get("language") or "zh").strip().lower()
        if language not in ("zh", "en"):
            bad("language", "must be zh or en")
        gender = (raw.get("gender") or "").strip().upper() or None
        if gender not in (None, "F", "M"):
            bad("gender", "must be F, M or empty")
        birth = _date(raw.get("birth_date"), "birth_date", bad)
        aum = _decimal(raw.get("aum_cny") or "0", "aum_cny", bad)
        risk = (raw.get("risk_tolerance") or "").strip().upper() or None
        if risk not in (None, "C1", "C2", "C3", "C4", "C5"):
            bad("risk_tolerance", "must be C1-C5 or empty")
        tier = (raw.get("tier") or "").strip().lower() or (tier_for_aum(aum) if aum is not None else "mass")
        if tier not in ("mass", "gold", "platinum", "diamond", "private"):
            bad("tier", "must be mass, gold, platinum, diamond or private")
        grade = (raw.get("grade") or "C").strip().upper()
        if grade not in ("A", "B", "C", "D"):
            bad("grade", "must be A, B, C or D")
        email = (raw.get("email") or "").strip() or None
        if email and not _EMAIL.match(email):
            bad("email", "not an e-mail address")
        flags = {col: _bool(raw.get(col), col, bad) for col in ("vip", *(f"consent_{k}" for k in CONSENT_KINDS))}
        if row_errors or aum is None:
            errors.extend(row_errors)
            continue
        consents = tuple(
            Consent(kind=k, granted=bool(flags[f"consent_{k}"]), updated_at=now, source="import")
            for k in CONSENT_KINDS
            if raw.get(f"consent_{k}") not in (None, "")
        )
        customers.append(
            Customer(
                customer_id=CustomerId(cid),
                name=name,
                phones=tuple(phones),
                language=language,
                gender=gender,
                birth_date=birth,
                branch_id=(raw.get("branch_id") or "").strip() or None,
                aum_cny=aum,
                risk_tolerance=risk,
                tier=tier,
                grade=grade,
                groups=tuple(_split(raw.get("groups", ""))),
                vip=bool(flags["vip"]),
                email=email,
                consents=consents,
            )
        )
    if errors:
        raise ImportRejectedError("customer import rejected, nothing was imported", errors[:MAX_ERRORS])
    return customers


def parse_holdings(text: str, *, known_customers: Callable[[Collection[str]], set[str]]) -> dict[str, list[Holding]]:
    """Validate a holdings CSV. ``known_customers(ids)`` returns which of ``ids`` exist (in the customers file
    being imported or in the store); holdings of any other customer are rejected."""
    rows, errors = read_rows(text, ("customer_id", "product_id", "amount_cny"), HOLDING_COLUMNS)
    known = known_customers({raw.get("customer_id", "").strip() for _, raw in rows})
    out: dict[str, list[Holding]] = {}
    for line, raw in rows:
        row_errors: list[RowError] = []

        def bad(column: str, reason: str, line: int = line, row_errors: list[RowError] = row_errors) -> None:
            row_errors.append(RowError(line, column, reason))

        cid = raw.get("customer_id", "").strip()
        if cid not in known:
            bad("customer_id", "unknown customer")
        pid = raw.get("product_id", "").strip()
        if not _PRODUCT.match(pid):
            bad("product_id", "must be 1-32 letters, digits, '.', '-' or '_'")
        amount = _decimal(raw.get("amount_cny"), "amount_cny", bad)
        opened = _date(raw.get("opened_on"), "opened_on", bad)
        maturity = _date(raw.get("maturity_on"), "maturity_on", bad)
        if opened and maturity and maturity < opened:
            bad("maturity_on", "is before opened_on")
        if row_errors or amount is None:
            errors.extend(row_errors)
            continue
        out.setdefault(cid, []).append(
            Holding(product_id=pid, amount_cny=amount, opened_on=opened, maturity_on=maturity)
        )
    if errors:
        raise ImportRejectedError("holdings import rejected, nothing was imported", errors[:MAX_ERRORS])
    return out


def import_customers(
    store: ProfileStore,
    customers_csv: str,
    holdings_csv: str | None = None,
    *,
    now: datetime,
    source: str = "csv-import",
) -> ImportResult:
    """Validate both files fully, then write everything in one transaction (or nothing)."""
    customers = parse_customers(customers_csv, default_region=store.default_region, now=now)
    holdings: dict[str, list[Holding]] = {}
    if holdings_csv is not None:
        in_file = {c.customer_id for c in customers}

        def known(ids: Collection[str]) -> set[str]:
            return (set(ids) & in_file) | store.existing_ids(set(ids) - in_file)

        holdings = parse_holdings(holdings_csv, known_customers=known)
    merged = [c.model_copy(update={"holdings": tuple(holdings.get(c.customer_id, ()))}) for c in customers]
    extra = set(holdings) - {c.customer_id for c in customers}
    for cid in sorted(extra):
        merged.append(store.get(cid).model_copy(update={"holdings": tuple(holdings[cid])}))
    store.upsert_many(merged, source=source)
    return ImportResult(customers=len(customers), holdings=sum(len(h) for h in holdings.values()))


def export_customers(customers: Iterable[Customer]) -> tuple[str, str]:
    """Write customers and their holdings as two CSV texts in the import format (round-trips)."""
    cbuf, hbuf = io.StringIO(), io.StringIO()
    cw = csv.DictWriter(cbuf, fieldnames=CUSTOMER_COLUMNS, lineterminator="\n")
    hw = csv.DictWriter(hbuf, fieldnames=HOLDING_COLUMNS, lineterminator="\n")
    cw.writeheader()
    hw.writeheader()
    for c in customers:
        consents = {x.kind: x.granted for x in c.consents}
        cw.writerow(
            {
                "customer_id": c.customer_id,
                "name": c.name,
                "phones": ";".join(c.phones),
                "language": c.language,
                "gender": c.gender or "",
                "birth_date": c.birth_date.isoformat() if c.birth_date else "",
                "branch_id": c.branch_id or "",
                "aum_cny": f"{c.aum_cny:.2f}",
                "risk_tolerance": c.risk_tolerance or "",
                "tier": c.tier,
                "grade": c.grade,
                "groups": ";".join(c.groups),
                "vip": str(c.vip).lower(),
                **{f"consent_{k}": ("" if k not in consents else str(consents[k]).lower()) for k in CONSENT_KINDS},
                "email": c.email or "",
            }
        )
        for h in c.holdings:
            hw.writerow(
                {
                    "customer_id": c.customer_id,
                    "product_id": h.product_id,
                    "amount_cny": f"{h.amount_cny:.2f}",
                    "opened_on": h.opened_on.isoformat() if h.opened_on else "",
                    "maturity_on": h.maturity_on.isoformat() if h.maturity_on else "",
                }
            )
    return cbuf.getvalue(), hbuf.getvalue()


# --- field parsers ------------------------------------------------------------------------------------------


def _split(value: str | None) -> list[str]:
    return [p.strip() for p in (value or "").replace("；", ";").split(";") if p.strip()]


def _date(value: str | None, column: str, bad: _Bad) -> date | None:
    if not value or not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        bad(column, "must be a date YYYY-MM-DD")
        return None


def _decimal(value: str | None, column: str, bad: _Bad) -> Decimal | None:
    try:
        amount = Decimal((value or "").strip().replace(",", ""))
    except InvalidOperation:
        bad(column, "must be a number")
        return None
    if not amount.is_finite() or amount < 0 or amount >= Decimal("1e16"):
        bad(column, "must be a non-negative amount below 10^16")
        return None
    return amount.quantize(Decimal("0.01"))


def _bool(value: str | None, column: str, bad: _Bad) -> bool | None:
    text = (value or "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    bad(column, "must be true or false")
    return None


class _Bad(Protocol):
    def __call__(self, column: str, reason: str) -> None: ...
