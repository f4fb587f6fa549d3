"""The demo bank: bundled products and branches, and the deterministic customer generator."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pytest

from core.errors import InvalidInputError
from knowledge.catalog import CATEGORIES, RISK_GRADES, Product, eligible, risk_suitable
from profiles.importer import parse_customers, parse_holdings
from profiles.models import Customer, Holding
from profiles.tiers import TIERS, tier_for_aum
from voxdesk.demo import load_branches, load_products
from voxdesk.demo.generate import DEMO_AS_OF, generate_customers

pytestmark = pytest.mark.unit

CUSTOMER_HEADER = (
    "customer_id,name,phones,language,gender,birth_date,branch_id,aum_cny,risk_tolerance,tier,grade,groups,vip,"
    "consent_marketing_calls,consent_recording,consent_biometrics,email"
)
HOLDING_HEADER = "customer_id,product_id,amount_cny,opened_on,maturity_on"
ROOT = Path(__file__).resolve().parents[2]
Parsed = tuple[list[Customer], dict[str, list[Holding]]]


@pytest.fixture(scope="module")
def generated() -> tuple[str, str]:
    return generate_customers(200, seed=7)


@pytest.fixture(scope="module")
def parsed(generated: tuple[str, str]) -> Parsed:
    customers_csv, holdings_csv = generated
    customers = parse_customers(customers_csv, now=datetime(2026, 11, 1, tzinfo=UTC))
    ids = {c.customer_id for c in customers}
    holdings = parse_holdings(holdings_csv, known_customers=lambda wanted: set(wanted) & ids)
    return customers, holdings


@pytest.fixture(scope="module")
def products() -> dict[str, Product]:
    return {p.product_id: p for p in load_products()}


# --- bundled JSON ------------------------------------------------------------------------------------------


def test_products_json_is_valid_and_covers_every_category(products: dict[str, Product]) -> None:
    raw = json.loads(resources.files("voxdesk.demo").joinpath("products.json").read_text(encoding="utf-8"))
    assert raw["bank"]["name_en"] == "Voxdesk Demo Bank" and raw["bank"]["name_zh"] == "沃思德演示银行"
    assert len(raw["products"]) == len(products) >= 35
    assert set(CATEGORIES) == {p.category for p in products.values()}
    assert {p.risk_grade for p in products.values() if p.category == "wealth"} == set(RISK_GRADES)
    assert any(not p.on_sale for p in products.values())
    for p in products.values():
        for text in (p.name_zh, p.name_en, p.description_zh, p.description_en):
            assert text.strip(), p.product_id
        assert any("\u4e00" <= ch <= "\u9fff" for ch in p.name_zh + p.description_zh), p.product_id
        assert p.description_en.isascii(), p.product_id
        # one sentence per language
        assert p.description_zh.endswith("。") and p.description_zh.count("。") == 1, p.product_id
        assert p.description_en.endswith(".") and ". " not in p.description_en, p.product_id
        if p.category in ("wealth", "fund", "precious_metal"):
            assert "risk" in p.description_en.lower() and ("风险" in p.description_zh), p.product_id
        if p.category in ("credit_card", "loan"):
            assert p.risk_grade is None


def test_products_json_has_the_expected_product_kinds(products: dict[str, Product]) -> None:
    names = " ".join(p.name_en for p in products.values())
    for kind in (
        "Demand",
        "Time Deposit",
        "Certificate of Deposit",
        "Cash",
        "Money Market",
        "Bond",
        "Index",
        "QDII",
        "Gold",
        "Platinum",
        "Young",
        "Car",
        "Mortgage",
        "Business",
        "Accident",
        "Critical Illness",
        "Annuity",
        "Gold Accumulation",
        "Gold Bar",
    ):
        assert kind in names, kind


def test_branches_json_is_valid() -> None:
    branches = load_branches()
    assert 5 <= len(branches) <= 8
    assert len({b.branch_id for b in branches}) == len(branches)
    assert any(b.county for b in branches) and any(not b.county for b in branches)
    assert all(b.name_zh and b.name_en and b.city for b in branches)


def test_load_products_from_a_path_and_bad_files(tmp_path: Path) -> None:
    good = tmp_path / "p.json"
    good.write_text(
        json.dumps(
            {
                "products": [
                    {
                        "product_id": "P1",
                        "category": "deposit",
                        "name_zh": "活期",
                        "name_en": "Demand",
                        "risk_grade": "R1",
                        "expected_yield_pct": 0.35,
                    }
                ]
            }
        ),
        encoding="utf-8",
    )
    [product] = load_products(good)
    assert product.expected_yield_pct == Decimal("0.35")
    bad = tmp_path / "bad.json"
    bad.write_text('{"products": [{"product_id": "P1"}]}', encoding="utf-8")
    with pytest.raises(InvalidInputError):
        load_products(bad)
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(InvalidInputError):
        load_products(broken)


# --- generator ---------------------------------------------------------------------------------------------


def test_deterministic_for_a_seed(generated: tuple[str, str]) -> None:
    assert generate_customers(200, seed=7) == generated
    assert generate_customers(200, seed=8) != generated
    assert generate_customers(0, seed=7) == (CUSTOMER_HEADER + "\n", HOLDING_HEADER + "\n")


def test_deterministic_across_processes() -> None:
    code = (
        "import hashlib; from voxdesk.demo.generate import generate_customers; "
        "c, h = generate_customers(60, 3); print(hashlib.sha256((c + h).encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={"PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }
    c, h = generate_customers(60, 3)
    assert digests == {hashlib.sha256((c + h).encode()).hexdigest()}


def test_default_is_200_rows_in_the_import_format() -> None:
    customers_csv, holdings_csv = generate_customers()
    assert customers_csv.splitlines()[0] == CUSTOMER_HEADER
    assert holdings_csv.splitlines()[0] == HOLDING_HEADER
    rows = list(csv.DictReader(io.StringIO(customers_csv)))
    assert len(rows) == 200
    assert [r["customer_id"] for r in rows] == [f"C{i:06d}" for i in range(1, 201)]


def test_rows_parse_with_the_real_importer(generated: tuple[str, str], parsed: Parsed) -> None:
    customers, holdings = parsed
    assert len(customers) == 200
    rows = list(csv.DictReader(io.StringIO(generated[0])))
    for row in rows:
        assert row["vip"] in ("true", "false") and row["gender"] in ("F", "M")
        assert row["language"] in ("zh", "en")
        date.fromisoformat(row["birth_date"])
        assert row["aum_cny"] == f"{Decimal(row['aum_cny']):.2f}"
    assert sum(len(h) for h in holdings.values()) == len(generated[1].splitlines()) - 1


def test_population_is_varied(parsed: Parsed) -> None:
    customers, _ = parsed
    assert {c.tier for c in customers} == set(TIERS)
    assert all(c.tier == tier_for_aum(c.aum_cny) for c in customers)
    assert all(date(1945, 1, 1) <= c.birth_date <= date(2005, 12, 31) for c in customers if c.birth_date)
    english = [c for c in customers if c.language == "en"]
    assert 0.08 <= len(english) / len(customers) <= 0.25
    assert all(" " in c.name and c.name.isascii() for c in english)
    assert all(not c.name.isascii() for c in customers if c.language == "zh")
    assert sum(c.email is not None for c in english) > len(english) / 2
    unassessed = sum(c.risk_tolerance is None for c in customers)
    assert 0.02 <= unassessed / len(customers) <= 0.16
    assert {c.risk_tolerance for c in customers} >= {"C1", "C2", "C3", "C4"}
    assert set(Counter(c.grade for c in customers)) == {"A", "B", "C", "D"}
    vips = [c for c in customers if c.vip]
    assert 0.02 <= len(vips) / len(customers) <= 0.09
    assert sum(c.tier in ("diamond", "private") for c in vips) > len(vips) / 2
    groups = Counter(g for c in customers for g in c.groups)
    assert set(groups) >= {"payroll", "pension", "car_owner", "county", "merchant", "new_citizen"}
    consents = {
        k: sum(c.has_consent(k) for c in customers) / len(customers)
        for k in ("marketing_calls", "recording", "biometrics")
    }
    assert 0.55 <= consents["marketing_calls"] <= 0.85
    assert consents["recording"] >= 0.88
    assert 0.15 <= consents["biometrics"] <= 0.45


def test_county_group_follows_the_branch(parsed: Parsed) -> None:
    county = {b.branch_id for b in load_branches() if b.county}
    known = {b.branch_id for b in load_branches()}
    for c in parsed[0]:
        assert c.branch_id in known
        assert ("county" in c.groups) == (c.branch_id in county)


def test_phones_are_unique_and_in_mixed_spellings(generated: tuple[str, str], parsed: Parsed) -> None:
    customers, _ = parsed
    all_phones = [p for c in customers for p in c.phones]
    assert len(all_phones) == len(set(all_phones))
    assert all(p.startswith("+861") and len(p) == 14 for p in all_phones)
    assert all(1 <= len(c.phones) <= 2 for c in customers)
    assert any(len(c.phones) == 2 for c in customers)
    raw = [p for r in csv.DictReader(io.StringIO(generated[0])) for p in r["phones"].split(";")]
    shapes = {("+" in p, " " in p, "-" in p, p.startswith("00")) for p in raw}
    assert len(shapes) >= 4


def test_holdings_respect_suitability_eligibility_and_aum(parsed: Parsed, products: dict[str, Product]) -> None:
    customers, holdings = parsed
    seen_products: set[str] = set()
    for c in customers:
        held = holdings.get(c.customer_id, [])
        assert len(held) <= 5
        assert len({h.product_id for h in held}) == len(held)
        assert sum((h.amount_cny for h in held), Decimal("0")) <= c.aum_cny
        age = c.age_on(DEMO_AS_OF)
        for h in held:
            p = products[h.product_id]
            seen_products.add(p.product_id)
            assert p.on_sale
            assert risk_suitable(c.risk_tolerance, p.risk_grade), (c.customer_id, p.product_id)
            assert eligible(p, tier=c.tier, age=age, groups=c.groups), (c.customer_id, p.product_id)
            if p.category in ("credit_card", "loan"):
                assert h.amount_cny == 0
            else:
                assert h.amount_cny >= (p.min_amount_cny or Decimal("0.01")), (c.customer_id, p.product_id)
            assert h.opened_on is not None and h.opened_on <= DEMO_AS_OF
            assert c.birth_date is not None and h.opened_on.year - c.birth_date.year >= 17
            if p.term_days is not None:
                assert h.maturity_on is not None and h.maturity_on > DEMO_AS_OF
                assert (h.maturity_on - h.opened_on).days == p.term_days
            else:
                assert h.maturity_on is None
    assert len(seen_products) >= 20
    assert 0 < sum(1 for c in customers if not holdings.get(c.customer_id)) < len(customers) / 3


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_tier_appears_for_other_seeds(seed: int) -> None:
    rows = list(csv.DictReader(io.StringIO(generate_customers(200, seed)[0])))
    assert {r["tier"] for r in rows} == set(TIERS)


def test_demo_bank_loads_through_the_real_import_path() -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.orm import sessionmaker
    from sqlalchemy.pool import StaticPool

    import knowledge.tables  # noqa: F401
    import profiles.tables  # noqa: F401
    from core.db import Base
    from knowledge.catalog import ProductCatalog
    from profiles.importer import import_customers
    from profiles.store import ProfileStore

    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    Base.metadata.create_all(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    catalog, store = ProductCatalog(sessions), ProfileStore(sessions)
    assert catalog.upsert_many(load_products()) == len(load_products())
    customers_csv, holdings_csv = generate_customers(50, seed=11)
    result = import_customers(store, customers_csv, holdings_csv, now=datetime(2026, 11, 1, tzinfo=UTC))
    assert result.customers == 50 and store.count() == 50
    first = store.get("C000001")
    assert first.phones and all(
        h.product_id in {p.product_id for p in catalog.list(on_sale_only=False)}
        for c in store.iter_all()
        for h in c.holdings
    )
    assert store.find_by_phone(first.phones[0])[0].customer_id == "C000001"
    engine.dispose()
