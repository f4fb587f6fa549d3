"""Domain objects of the profile store: what other rooms see of a customer."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.ids import CustomerId
from profiles.tiers import Grade, RiskLevel, Tier

ConsentKind = Literal["marketing_calls", "recording", "biometrics"]
CONSENT_KINDS: tuple[ConsentKind, ...] = ("marketing_calls", "recording", "biometrics")

TimelineKind = Literal["call", "campaign", "visit", "qa", "profile", "marketing", "note"]


class Consent(BaseModel):
    """One consent flag and when/how it was set."""

    model_config = ConfigDict(frozen=True)

    kind: ConsentKind
    granted: bool
    updated_at: datetime
    source: str = ""


class Tag(BaseModel):
    """A tag on a customer; lapsed tags (``expires_at`` in the past) are not returned by the store."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, max_length=64)
    value: str = Field(default="", max_length=256)
    source: str = "manual"
    updated_at: datetime | None = None
    expires_at: datetime | None = None


class Holding(BaseModel):
    """A product held: ``amount_cny`` in yuan."""

    model_config = ConfigDict(frozen=True)

    product_id: str
    amount_cny: Decimal
    opened_on: date | None = None
    maturity_on: date | None = None


class Customer(BaseModel):
    """A bank customer as the rest of Voxdesk sees it."""

    model_config = ConfigDict(frozen=True)

    customer_id: CustomerId
    name: str
    phones: tuple[str, ...] = ()
    """E.164 numbers, primary first."""
    language: Literal["zh", "en"] = "zh"
    gender: Literal["F", "M"] | None = None
    birth_date: date | None = None
    branch_id: str | None = None
    aum_cny: Decimal = Decimal("0")
    risk_tolerance: RiskLevel | None = None
    tier: Tier = "mass"
    grade: Grade = "C"
    groups: tuple[str, ...] = ()
    vip: bool = False
    email: str | None = None
    holdings: tuple[Holding, ...] = ()
    consents: tuple[Consent, ...] = ()
    tags: tuple[Tag, ...] = ()

    def has_consent(self, kind: ConsentKind) -> bool:
        """True when ``kind`` was explicitly granted (absent means not granted)."""
        return any(c.kind == kind and c.granted for c in self.consents)

    def age_on(self, day: date) -> int | None:
        """Age in whole years on ``day``, or ``None`` when the birth date is unknown."""
        if self.birth_date is None:
            return None
        b = self.birth_date
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))


class TimelineEntry(BaseModel):
    """One entry of a customer's history."""

    model_config = ConfigDict(frozen=True)

    id: int | None = None
    customer_id: CustomerId
    at: datetime
    kind: TimelineKind
    summary: str = ""
    ref: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class CustomerPage(BaseModel):
    """A page of search results."""

    items: list[Customer]
    total: int
    offset: int
    limit: int
