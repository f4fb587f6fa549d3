"""The bank's product catalog: products, risk suitability (适当性管理) and eligibility.

:class:`ProductCatalog` stores products on SQLAlchemy. It is synchronous and thread-safe (each method opens its
own session from the injected ``sessionmaker``); async callers use ``asyncio.to_thread`` or FastAPI's thread pool.
:func:`risk_suitable` and :func:`eligible` are pure functions that the recommender, the assist panel and the
demo generator share, so that no room ever offers a product a customer may not buy.

The tier and risk vocabularies repeat those of ``profiles.tiers`` on purpose: ``knowledge`` imports only
``core``.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from decimal import Decimal
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock, SystemClock
from core.db import session_scope
from core.errors import InvalidInputError, NotFoundError
from core.ids import ProductId
from knowledge.tables import ProductRow

ProductCategory = Literal["deposit", "wealth", "fund", "credit_card", "loan", "insurance", "precious_metal"]
"""deposit (存款), wealth (理财), fund (基金), credit_card (信用卡), loan (贷款), insurance (保险),
precious_metal (贵金属)."""
ProductRisk = Literal["R1", "R2", "R3", "R4", "R5"]
"""Product risk grade: R1 lowest (谨慎型) … R5 highest (激进型)."""
CustomerRisk = Literal["C1", "C2", "C3", "C4", "C5"]
"""Customer risk tolerance from the suitability assessment: C1 conservative … C5 aggressive."""
ProductTier = Literal["mass", "gold", "platinum", "diamond", "private"]
"""Customer tiers, lowest first (same values as ``profiles.tiers.Tier``)."""
ProductStatus = Literal["on_sale", "closed"]

CATEGORIES: tuple[ProductCategory, ...] = (
    "deposit",
    "wealth",
    "fund",
    "credit_card",
    "loan",
    "insurance",
    "precious_metal",
)
RISK_GRADES: tuple[ProductRisk, ...] = ("R1", "R2", "R3", "R4", "R5")
CUSTOMER_RISKS: tuple[CustomerRisk, ...] = ("C1", "C2", "C3", "C4", "C5")
TIER_ORDER: tuple[ProductTier, ...] = ("mass", "gold", "platinum", "diamond", "private")
GRADED_CATEGORIES: frozenset[str] = frozenset({"deposit", "wealth", "fund"})
"""Categories whose products must carry a risk grade."""

IneligibleReason = Literal["closed", "tier", "age_unknown", "too_young", "too_old", "group"]


class Product(BaseModel):
    """A product as the rest of Voxdesk sees it. Amounts in CNY yuan, terms in days, yields in annual percent."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    product_id: ProductId = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    category: ProductCategory
    name_zh: str = Field(min_length=1, max_length=128)
    name_en: str = Field(min_length=1, max_length=128)
    risk_grade: ProductRisk | None = None
    """``None`` for products outside suitability grading (credit cards, loans, protection insurance)."""
    min_amount_cny: Decimal | None = Field(default=None, ge=0, max_digits=18, decimal_places=2)
    """Minimum purchase (loans: minimum loan amount), CNY yuan."""
    term_days: int | None = Field(default=None, gt=0)
    """Term in days; ``None`` for open-ended products (demand deposits, cash management, open funds)."""
    expected_yield_pct: Decimal | None = Field(default=None, ge=-100, le=100, decimal_places=3)
    """Annualised expected yield / performance benchmark in percent, never a promise; loans: reference rate."""
    description_zh: str = ""
    description_en: str = ""
    min_tier: ProductTier | None = None
    """Lowest customer tier that may buy; ``None`` = every tier."""
    min_age: int | None = Field(default=None, ge=0, le=150)
    """Youngest eligible age, whole years, inclusive."""
    max_age: int | None = Field(default=None, ge=0, le=150)
    """Oldest eligible age, whole years, inclusive."""
    target_groups: tuple[str, ...] = ()
    """Groups (payroll, pension, car_owner, county, merchant, new_citizen, student) the product is restricted
    to: a customer must belong to at least one. Empty = open to everyone."""
    target_segments: tuple[str, ...] = ()
    """Marketing segments the product is aimed at (young_professional, retiree, affluent, …): whom campaigns and
    recommendations offer it to first. Unlike ``target_groups`` it restricts nobody."""
    status: ProductStatus = "on_sale"
    updated_at: datetime | None = None
    """When the catalog last changed this product (UTC); ``None`` before it is stored."""

    @model_validator(mode="after")
    def _consistent(self) -> Product:
        if self.min_age is not None and self.max_age is not None and self.min_age > self.max_age:
            raise ValueError("min_age is above max_age")
        if self.category in GRADED_CATEGORIES and self.risk_grade is None:
            raise ValueError(f"{self.category} products need a risk grade")
        if self.category == "deposit" and self.risk_grade != "R1":
            raise ValueError("deposits are graded R1")
        return self

    @property
    def on_sale(self) -> bool:
        """True while the product can be bought."""
        return self.status == "on_sale"


class ProductReader(Protocol):
    """The read API of a catalog; :class:`ProductCatalog` and ``knowledge.testing.FakeProductCatalog`` have it."""

    def get(self, product_id: str) -> Product: ...

    def list(self, category: str | None = None, on_sale_only: bool = True) -> builtins.list[Product]: ...

    def count(self) -> int: ...


# --- suitability and eligibility ---------------------------------------------------------------------------


def risk_suitable(customer_risk: str | None, product_risk: str | None) -> bool:
    """Whether a customer of risk tolerance ``customer_risk`` may buy a product of grade ``product_risk``.

    The suitability rule (适当性管理) of the CBIRC, now NFRA, for wealth products and of the CSRC for funds: a
    customer assessed Cn may buy products up to Rn (C1 → R1 only, C2 → up to R2, …, C5 → up to R5).
    A customer who was never assessed (``None``) may buy only products with no risk grade (cards, loans,
    protection insurance) or graded R1, such as deposits and cash management; everything else needs an
    assessment first. Products with no risk grade suit everyone. Raises :class:`InvalidInputError` for values
    other than C1–C5 / R1–R5 / ``None``.
    """
    if customer_risk is not None and customer_risk not in CUSTOMER_RISKS:
        raise InvalidInputError("unknown customer risk tolerance", value=customer_risk)
    if product_risk is not None and product_risk not in RISK_GRADES:
        raise InvalidInputError("unknown product risk grade", value=product_risk)
    if product_risk is None:
        return True
    product_level = int(product_risk[1])
    if customer_risk is None:
        return product_level == 1
    return product_level <= int(customer_risk[1])


def ineligibility_reasons(
    product: Product, *, tier: str | None, age: int | None, groups: Iterable[str]
) -> builtins.list[IneligibleReason]:
    """Why a customer may not buy ``product`` (empty list when eligible); risk is checked by :func:`risk_suitable`.

    ``tier`` is the customer's tier (``None`` counts as ``mass``), ``age`` whole years (``None`` = unknown: not
    eligible for age-limited products), ``groups`` the customer's group names. A closed product is never
    eligible. Raises :class:`InvalidInputError` for an unknown tier.
    """
    if tier is not None and tier not in TIER_ORDER:
        raise InvalidInputError("unknown customer tier", value=tier)
    reasons: builtins.list[IneligibleReason] = []
    if not product.on_sale:
        reasons.append("closed")
    if product.min_tier is not None and TIER_ORDER.index(tier or "mass") < TIER_ORDER.index(product.min_tier):
        reasons.append("tier")
    if product.min_age is not None or product.max_age is not None:
        if age is None:
            reasons.append("age_unknown")
        elif product.min_age is not None and age < product.min_age:
            reasons.append("too_young")
        elif product.max_age is not None and age > product.max_age:
            reasons.append("too_old")
    if product.target_groups and not set(product.target_groups) & set(groups):
        reasons.append("group")
    return reasons


def eligible(product: Product, *, tier: str | None, age: int | None, groups: Iterable[str]) -> bool:
    """True when a customer of this ``tier``, ``age`` (years) and ``groups`` may buy ``product`` (risk aside).

    See :func:`ineligibility_reasons` for the rules.
    """
    return not ineligibility_reasons(product, tier=tier, age=age, groups=groups)


def check_category(category: str | None) -> ProductCategory | None:
    """``category`` if it is a known category (or ``None``); raises :class:`InvalidInputError` otherwise."""
    if category is None:
        return None
    if category not in CATEGORIES:
        raise InvalidInputError("unknown product category", value=category)
    return category


def check_unique(products: Sequence[Product]) -> None:
    """Raise :class:`InvalidInputError` when a product id appears twice in ``products``."""
    seen: set[str] = set()
    for p in products:
        if p.product_id in seen:
            raise InvalidInputError("duplicate product id in one upsert", product_id=p.product_id)
        seen.add(p.product_id)


# --- the SQLAlchemy catalog -------------------------------------------------------------------------------

_FIELDS: tuple[str, ...] = (
    "category",
    "name_zh",
    "name_en",
    "risk_grade",
    "min_amount_cny",
    "term_days",
    "expected_yield_pct",
    "description_zh",
    "description_en",
    "min_tier",
    "min_age",
    "max_age",
    "status",
)


class ProductCatalog:
    """Products on SQLAlchemy (table ``products``)."""

    def __init__(self, sessions: sessionmaker[Session], *, clock: Clock | None = None) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()

    def upsert_many(self, products: Sequence[Product]) -> int:
        """Create or update ``products`` in one transaction (all or nothing).

        Returns how many products were created or changed; unchanged products are not rewritten and keep their
        ``updated_at``. A changed product gets its own ``updated_at`` if it carries one, else the clock's now.
        Raises :class:`InvalidInputError` for duplicate ids, :class:`StorageError` when the database fails.
        """
        check_unique(products)
        now = self._clock.now()
        written = 0
        with self._session(write=True) as s:
            ids = [p.product_id for p in products]
            existing = {r.product_id: r for r in s.scalars(select(ProductRow).where(ProductRow.product_id.in_(ids)))}
            for p in products:
                row = existing.get(p.product_id)
                if row is not None and _same(row, p):
                    continue
                if row is None:
                    row = ProductRow(product_id=p.product_id)
                    s.add(row)
                for name in _FIELDS:
                    setattr(row, name, getattr(p, name))
                row.target_groups = list(p.target_groups)
                row.target_segments = list(p.target_segments)
                row.updated_at = p.updated_at or now
                written += 1
        return written

    def get(self, product_id: str) -> Product:
        """The product with this id (on sale or closed); raises :class:`NotFoundError`."""
        with self._session() as s:
            row = s.get(ProductRow, product_id)
            if row is None:
                raise NotFoundError("unknown product", product_id=product_id)
            return _to_domain(row)

    def list(self, category: str | None = None, on_sale_only: bool = True) -> builtins.list[Product]:
        """Products ordered by id, of one ``category`` if given, only those on sale unless ``on_sale_only`` is off.

        Raises :class:`InvalidInputError` for an unknown category.
        """
        wanted = check_category(category)
        query = select(ProductRow).order_by(ProductRow.product_id)
        if wanted is not None:
            query = query.where(ProductRow.category == wanted)
        if on_sale_only:
            query = query.where(ProductRow.status == "on_sale")
        with self._session() as s:
            return [_to_domain(r) for r in s.scalars(query)]

    def get_many(self, product_ids: Collection[str]) -> dict[str, Product]:
        """The products among ``product_ids`` that exist, by id (unknown ids are left out)."""
        wanted = sorted(set(product_ids))
        found: dict[str, Product] = {}
        with self._session() as s:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                for row in s.scalars(select(ProductRow).where(ProductRow.product_id.in_(chunk))):
                    found[row.product_id] = _to_domain(row)
        return found

    def known_ids(self, product_ids: Collection[str]) -> set[str]:
        """The ids among ``product_ids`` that the catalog has (on sale or closed), for validating imports."""
        return set(self.get_many(product_ids))

    def count(self) -> int:
        """Number of products, on sale or closed."""
        with self._session() as s:
            return s.scalar(select(func.count()).select_from(ProductRow)) or 0

    def _session(self, *, write: bool = False) -> AbstractContextManager[Session]:
        return session_scope(self._sessions, write=write)


def _same(row: ProductRow, p: Product) -> bool:
    return (
        all(getattr(row, n) == getattr(p, n) for n in _FIELDS)
        and list(row.target_groups or []) == list(p.target_groups)
        and list(row.target_segments or []) == list(p.target_segments)
    )


def _to_domain(row: ProductRow) -> Product:
    return Product.model_validate(
        {
            "product_id": row.product_id,
            **{n: getattr(row, n) for n in _FIELDS},
            "target_groups": tuple(row.target_groups or ()),
            "target_segments": tuple(row.target_segments or ()),
            "updated_at": row.updated_at,
        }
    )
