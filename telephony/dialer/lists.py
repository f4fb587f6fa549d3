"""Dialing lists: a CSV (or API rows) of numbers to call, validated all or nothing.

Columns: ``phone`` (required), ``customer_id``, ``language`` (``zh``/``en``, else the campaign's), ``timezone``
(IANA, else taken from the number's prefix), and the campaign kind's own fields (e.g. ``amount_due``, ``due_date``
for a collection reminder; see :data:`KIND_FIELDS`). Every number is normalised to E.164 with the list's default
region. A number that appears twice is an error naming both rows. A number whose zone cannot be told (no column,
unknown prefix) is an error, because the calling window could not be checked. Nothing is returned unless every row is
good: :class:`core.errors.ImportRejectedError` names each bad row by its line number (the header is line 1; API rows
count from 2 the same way). Pure; any thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Final, Literal, Protocol

from core.csv_rows import MAX_ERRORS, read_rows
from core.errors import ConfigError, ImportRejectedError, InvalidInputError, RowError
from core.phones import normalise_phone, number_time_zones
from telephony.dialer.calendar import zone
from telephony.dialer.policy import CampaignKind

__all__ = ["BASE_COLUMNS", "KIND_FIELDS", "ListContact", "parse_contacts", "parse_list_csv"]

BASE_COLUMNS: Final = ("phone", "customer_id", "language", "timezone")
KIND_FIELDS: Final[Mapping[CampaignKind, tuple[str, ...]]] = {
    "identity_verification": (),
    "collection": ("amount_due", "due_date", "card_last4"),
    "notification": ("notice", "card_last4", "expiry_date", "maturity_date", "amount", "merchant"),
    "survey": ("survey_topic",),
    "marketing": ("product_id",),
}
"""The campaign kind's own columns, all optional per row; what the kind's dialog says with them."""
REQUIRED_FIELDS: Final[Mapping[CampaignKind, tuple[str, ...]]] = {
    "collection": ("amount_due", "due_date"),
    "notification": ("notice",),
}
_DATE_FIELDS: Final = frozenset({"due_date", "expiry_date", "maturity_date"})
_AMOUNT_FIELDS: Final = frozenset({"amount_due", "amount"})
_NOTICES: Final = frozenset({"card_expiry", "deposit_maturity", "suspicious_transaction"})
_CUSTOMER_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_LAST4 = re.compile(r"^\d{4}$")
_PRODUCT = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


@dataclass(frozen=True)
class ListContact:
    """One validated row of a dialing list."""

    line: int
    """The row's line number in the file (header = 1)."""
    phone: str
    """E.164."""
    zones: tuple[str, ...]
    """IANA zones the callee may be in (never empty)."""
    language: Literal["zh", "en"]
    customer_id: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    """The campaign kind's fields, normalised (dates ISO, amounts with two decimals)."""


def parse_list_csv(
    text: str, *, kind: CampaignKind, default_language: Literal["zh", "en"], default_region: str = "CN"
) -> list[ListContact]:
    """Validate a dialing-list CSV; raises :class:`ImportRejectedError` (nothing is kept) on any bad row."""
    allowed = BASE_COLUMNS + KIND_FIELDS[kind]
    rows, errors = read_rows(text, ("phone",), allowed)
    return _validate(rows, errors, kind=kind, default_language=default_language, default_region=default_region)


def parse_contacts(
    rows: Iterable[Mapping[str, object]],
    *,
    kind: CampaignKind,
    default_language: Literal["zh", "en"],
    default_region: str = "CN",
) -> list[ListContact]:
    """Validate API rows (dicts with the CSV's column names) the same way; the first row is "line 2"."""
    allowed = set(BASE_COLUMNS + KIND_FIELDS[kind])
    numbered: list[tuple[int, dict[str, str]]] = []
    errors: list[RowError] = []
    for line, row in enumerate(rows, start=2):
        unknown = sorted(set(row) - allowed)
        if unknown:
            errors.extend(RowError(line, c, "unknown field") for c in unknown)
            continue
        numbered.append((line, {k: "" if v is None else str(v).strip() for k, v in row.items()}))
    if not numbered and not errors:
        raise ImportRejectedError("dialing list has no rows", [RowError(1, None, "no data rows")])
    return _validate(numbered, errors, kind=kind, default_language=default_language, default_region=default_region)


def _validate(
    rows: list[tuple[int, dict[str, str]]],
    errors: list[RowError],
    *,
    kind: CampaignKind,
    default_language: Literal["zh", "en"],
    default_region: str,
) -> list[ListContact]:
    seen: dict[str, int] = {}
    out: list[ListContact] = []
    for line, row in rows:
        row_errors: list[RowError] = []

        def bad(column: str | None, reason: str, line: int = line, row_errors: list[RowError] = row_errors) -> None:
            row_errors.append(RowError(line, column, reason))

        phone = _phone(row.get("phone", ""), default_region, bad)
        if phone is not None:
            if phone in seen:
                bad("phone", f"the same number as row {seen[phone]}")
            else:
                seen[phone] = line
        zones = _zones(row.get("timezone", ""), phone, bad)
        language = _language(row.get("language", ""), default_language, bad)
        customer_id = row.get("customer_id") or None
        if customer_id is not None and not _CUSTOMER_ID.match(customer_id):
            bad("customer_id", "must be 1-32 letters, digits, '-' or '_'")
        fields = _fields(row, kind, bad)
        if row_errors:
            errors.extend(row_errors)
        elif phone is not None:
            out.append(ListContact(line, phone, zones, language, customer_id, fields))
    if errors:
        errors.sort(key=lambda e: e.row)
        raise ImportRejectedError("dialing list rejected, nothing was imported", errors[:MAX_ERRORS])
    return out


class _Bad(Protocol):
    def __call__(self, column: str | None, reason: str) -> None: ...


def _phone(raw: str, region: str, bad: _Bad) -> str | None:
    if not raw:
        bad("phone", "required")
        return None
    try:
        return normalise_phone(raw, region)
    except InvalidInputError:
        bad("phone", "not a valid phone number")
        return None


def _zones(raw: str, phone: str | None, bad: _Bad) -> tuple[str, ...]:
    if raw:
        try:
            return (zone(raw).key,)
        except ConfigError:
            bad("timezone", "not an IANA time zone (e.g. Asia/Shanghai)")
            return ()
    zones = number_time_zones(phone) if phone is not None else ()
    if phone is not None and not zones:
        bad("timezone", "the number's time zone is unknown: give a timezone column")
    return zones


def _language(raw: str, default: Literal["zh", "en"], bad: _Bad) -> Literal["zh", "en"]:
    value = raw.lower()
    if not value:
        return default
    if value in ("zh", "zh-cn", "cmn"):
        return "zh"
    if value in ("en", "en-us", "en-gb"):
        return "en"
    bad("language", "must be zh or en")
    return default


def _fields(row: Mapping[str, str], kind: CampaignKind, bad: _Bad) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in REQUIRED_FIELDS.get(kind, ()):
        if not row.get(name):
            bad(name, f"required for a {kind} campaign")
    for name in KIND_FIELDS[kind]:
        value = row.get(name, "")
        if not value:
            continue
        checked = _field(name, value, bad)
        if checked is not None:
            out[name] = checked
    return out


def _field(name: str, value: str, bad: _Bad) -> str | None:
    if name in _DATE_FIELDS:
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            bad(name, "must be a date YYYY-MM-DD")
            return None
    if name in _AMOUNT_FIELDS:
        try:
            amount = Decimal(value.replace(",", ""))
        except InvalidOperation:
            amount = Decimal(-1)
        if not amount.is_finite() or amount < 0 or amount >= Decimal("1e12"):
            bad(name, "must be an amount ≥ 0 (CNY)")
            return None
        return str(amount.quantize(Decimal("0.01")))
    if name == "notice" and value not in _NOTICES:
        bad(name, f"must be one of {', '.join(sorted(_NOTICES))}")
        return None
    if name == "card_last4" and not _LAST4.match(value):
        bad(name, "must be the card's last 4 digits")
        return None
    if name == "product_id" and not _PRODUCT.match(value):
        bad(name, "must be a product id")
        return None
    if len(value) > 200:
        bad(name, "longer than 200 characters")
        return None
    return value
