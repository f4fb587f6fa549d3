"""The product catalog on in-memory SQLite, its fake, risk suitability (适当性) and eligibility."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import StaticPool

import knowledge.tables
import profiles.tables  # noqa: F401  (all tables on the shared Base, as the application has them)
from core.db import Base
from core.errors import InvalidInputError, NotFoundError
from core.ids import ProductId
from knowledge.catalog import (
    CATEGORIES,
    Product,
    ProductCatalog,
    ProductReader,
    eligible,
    ineligibility_reasons,
    risk_suitable,
)
from knowledge.testing import FakeProductCatalog, sample_products

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


class StepClock:
    """A clock that the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.current = now

    def now(self) -> datetime:
        return self.current

    def monotonic(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> StepClock:
    return StepClock(T0)


@pytest.fixture
def catalog(clock: StepClock) -> Iterator[ProductCatalog]:
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    Base.metadata.create_all(engine)
    assert "products" in Base.metadata.tables and knowledge.tables.ProductRow.__tablename__ == "products"
    try:
        yield ProductCatalog(sessionmaker(engine, expire_on_commit=False), clock=clock)
    finally:
        engine.dispose()


def _product(**changes: object) -> Product:
    base = {
        "product_id": "X-1",
        "category": "wealth",
        "name_zh": "测试理财",
        "name_en": "Test Wealth",
        "risk_grade": "R2",
        "description_zh": "测试用产品。",
        "description_en": "A product for tests.",
    }
    return Product.model_validate({**base, **changes})


# --- ProductCatalog -------------------------------------------------------------------------------------------


def test_upsert_and_get_round_trip(catalog: ProductCatalog) -> None:
    products = sample_products()
    assert catalog.upsert_many(products) == len(products)
    assert catalog.count() == len(products)
    got = catalog.get("T-WM-R3")
    want = next(p for p in products if p.product_id == "T-WM-R3")
    assert got.model_copy(update={"updated_at": None}) == want
    assert got.min_amount_cny == Decimal("10000") and isinstance(got.min_amount_cny, Decimal)
    assert got.expected_yield_pct == Decimal("3.10")
    assert got.updated_at == T0 and got.updated_at.tzinfo is not None
    loan = catalog.get("T-LN-BIZ")
    assert loan.target_groups == ("merchant",) and loan.risk_grade is None and loan.term_days == 1095
    segmented = got.model_copy(update={"target_segments": ("affluent", "steady_investor"), "updated_at": None})
    assert catalog.upsert_many([segmented]) == 1
    assert catalog.get("T-WM-R3").target_segments == ("affluent", "steady_investor")
    assert catalog.upsert_many([segmented]) == 0  # unchanged segments are not rewritten


def test_get_unknown_raises_not_found(catalog: ProductCatalog) -> None:
    with pytest.raises(NotFoundError):
        catalog.get("NOPE")


def test_list_filters_by_category_and_status(catalog: ProductCatalog) -> None:
    catalog.upsert_many(sample_products())
    on_sale = catalog.list()
    assert [p.product_id for p in on_sale] == sorted(p.product_id for p in on_sale)
    assert "T-WM-OLD" not in {p.product_id for p in on_sale}
    assert {p.product_id for p in catalog.list(on_sale_only=False)} >= {"T-WM-OLD"}
    assert [p.product_id for p in catalog.list(category="wealth")] == ["T-WM-R3"]
    assert [p.product_id for p in catalog.list(category="wealth", on_sale_only=False)] == ["T-WM-OLD", "T-WM-R3"]
    assert catalog.list(category="insurance") == []
    with pytest.raises(InvalidInputError):
        catalog.list(category="crypto")


def test_upsert_skips_unchanged_and_stamps_changed(catalog: ProductCatalog, clock: StepClock) -> None:
    catalog.upsert_many(sample_products())
    clock.current = T0 + timedelta(days=1)
    assert catalog.upsert_many(sample_products()) == 0
    assert catalog.get("T-DEP-1Y").updated_at == T0
    changed = catalog.get("T-DEP-1Y").model_copy(update={"expected_yield_pct": Decimal("1.30"), "updated_at": None})
    assert catalog.upsert_many([changed, _product(product_id="NEW-1")]) == 2
    assert catalog.get("T-DEP-1Y").expected_yield_pct == Decimal("1.30")
    assert catalog.get("T-DEP-1Y").updated_at == T0 + timedelta(days=1)
    assert catalog.count() == len(sample_products()) + 1


def test_upsert_closes_a_product(catalog: ProductCatalog) -> None:
    catalog.upsert_many(sample_products())
    closed = catalog.get("T-FD-R5").model_copy(update={"status": "closed"})
    assert catalog.upsert_many([closed]) == 1
    assert "T-FD-R5" not in {p.product_id for p in catalog.list()}
    assert catalog.get("T-FD-R5").on_sale is False


def test_upsert_rejects_duplicates_and_writes_nothing(catalog: ProductCatalog) -> None:
    with pytest.raises(InvalidInputError):
        catalog.upsert_many([_product(), _product(name_en="Again")])
    assert catalog.count() == 0


def test_get_many(catalog: ProductCatalog) -> None:
    catalog.upsert_many(sample_products())
    assert sorted(catalog.get_many(["T-DEP-1Y", "T-CC-PLAT", "NOPE"])) == ["T-CC-PLAT", "T-DEP-1Y"]


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"product_id": "bad id!"}, "product_id"),
        ({"category": "crypto"}, "category"),
        ({"risk_grade": "R6"}, "risk_grade"),
        ({"risk_grade": None}, "risk grade"),
        ({"category": "deposit", "risk_grade": "R2"}, "R1"),
        ({"min_age": 60, "max_age": 18}, "min_age"),
        ({"min_amount_cny": "-1"}, "min_amount_cny"),
        ({"min_tier": "bronze"}, "min_tier"),
        ({"status": "paused"}, "status"),
        ({"name_en": ""}, "name_en"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
def test_product_validation(changes: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValidationError, match=fragment):
        _product(**changes)


def test_product_is_frozen() -> None:
    with pytest.raises(ValidationError):
        _product().name_en = "changed"  # type: ignore[misc]


# --- risk suitability --------------------------------------------------------------------------------------

# Rows: customer risk tolerance; columns: product risk grade None, R1, R2, R3, R4, R5.
SUITABILITY = {
    None: (True, True, False, False, False, False),
    "C1": (True, True, False, False, False, False),
    "C2": (True, True, True, False, False, False),
    "C3": (True, True, True, True, False, False),
    "C4": (True, True, True, True, True, False),
    "C5": (True, True, True, True, True, True),
}
PRODUCT_RISKS = (None, "R1", "R2", "R3", "R4", "R5")


@pytest.mark.parametrize("customer", list(SUITABILITY))
@pytest.mark.parametrize("column", range(len(PRODUCT_RISKS)))
def test_suitability_matrix(customer: str | None, column: int) -> None:
    assert risk_suitable(customer, PRODUCT_RISKS[column]) is SUITABILITY[customer][column]


@pytest.mark.parametrize(("customer", "product"), [("C6", "R1"), ("c3", "R1"), ("", "R1"), ("C3", "R0"), ("C3", "")])
def test_suitability_rejects_unknown_levels(customer: str | None, product: str | None) -> None:
    with pytest.raises(InvalidInputError):
        risk_suitable(customer, product)


# --- eligibility -------------------------------------------------------------------------------------------


def test_tier_minimum() -> None:
    card = _product(category="credit_card", risk_grade=None, min_tier="platinum")
    assert not eligible(card, tier="mass", age=40, groups=())
    assert not eligible(card, tier="gold", age=40, groups=())
    assert not eligible(card, tier=None, age=40, groups=())
    assert eligible(card, tier="platinum", age=40, groups=())
    assert eligible(card, tier="private", age=40, groups=())
    assert eligible(_product(), tier=None, age=None, groups=())
    with pytest.raises(InvalidInputError):
        eligible(card, tier="bronze", age=40, groups=())


def test_age_limits_are_inclusive() -> None:
    young = _product(category="credit_card", risk_grade=None, min_age=18, max_age=30)
    assert ineligibility_reasons(young, tier="mass", age=17, groups=()) == ["too_young"]
    assert eligible(young, tier="mass", age=18, groups=())
    assert eligible(young, tier="mass", age=30, groups=())
    assert ineligibility_reasons(young, tier="mass", age=31, groups=()) == ["too_old"]
    assert ineligibility_reasons(young, tier="mass", age=None, groups=()) == ["age_unknown"]
    only_max = _product(max_age=60)
    assert eligible(only_max, tier="mass", age=5, groups=()) and not eligible(only_max, tier="mass", age=61, groups=())


def test_target_groups_restrict() -> None:
    loan = _product(category="loan", risk_grade=None, target_groups=["merchant", "county"])
    assert not eligible(loan, tier="mass", age=40, groups=())
    assert not eligible(loan, tier="mass", age=40, groups=["payroll"])
    assert eligible(loan, tier="mass", age=40, groups=["payroll", "county"])
    assert eligible(loan, tier="mass", age=40, groups=iter(["merchant"]))


def test_closed_products_are_not_eligible_and_reasons_accumulate() -> None:
    closed = _product(status="closed", min_tier="gold", min_age=18, target_groups=["pension"])
    assert ineligibility_reasons(closed, tier="mass", age=10, groups=()) == ["closed", "tier", "too_young", "group"]
    assert not eligible(closed, tier="private", age=70, groups=["pension"])


# --- the fake ----------------------------------------------------------------------------------------------


def test_fake_catalog_matches_the_real_one(catalog: ProductCatalog) -> None:
    fake = FakeProductCatalog(sample_products())
    catalog.upsert_many(sample_products())
    readers: list[ProductReader] = [fake, catalog]
    for reader in readers:
        assert reader.count() == len(sample_products())
        for category in (None, *CATEGORIES):
            for on_sale_only in (True, False):
                got = [p.product_id for p in reader.list(category=category, on_sale_only=on_sale_only)]
                assert got == [p.product_id for p in catalog.list(category=category, on_sale_only=on_sale_only)]
        assert reader.get("T-CC-PLAT").min_tier == "platinum"
        with pytest.raises(NotFoundError):
            reader.get("NOPE")
        with pytest.raises(InvalidInputError):
            reader.list(category="crypto")
    assert fake.get("T-DEP-1Y").updated_at is not None
    assert fake.upsert_many(sample_products()) == 0
    assert fake.upsert_many([_product(product_id=ProductId("X-2"))]) == 1
    assert sorted(fake.get_many(["X-2", "NOPE"])) == ["X-2"]
