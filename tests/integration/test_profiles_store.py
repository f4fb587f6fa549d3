"""The profile store and CSV import/export on real SQLite and real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import inspect

from core.errors import ImportRejectedError, NotFoundError
from profiles.importer import export_customers, import_customers
from profiles.models import Tag
from voxdesk.container import Container

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)

GOOD = """customer_id,name,phones,language,gender,birth_date,branch_id,aum_cny,risk_tolerance,tier,grade,groups,vip,consent_marketing_calls,consent_recording,consent_biometrics,email
C1,张伟,138 0013 8000;+86 139-0013-9000,zh,M,1980-05-01,BR01,120000.50,C3,,B,payroll;car_owner,false,true,true,false,
C2,Jane Doe,+44 20 7946 0958,en,F,1975-01-31,BR02,8000000,C5,private,A,,true,false,true,true,jane@example.com
C3,李娜,0086 13700137000,zh,F,,BR01,0,,,C,pension,false,,,,
"""

HOLDINGS = """customer_id,product_id,amount_cny,opened_on,maturity_on
C1,DEP-1Y,50000,2025-01-10,2026-01-10
C2,WM-R4-01,2000000.00,2024-03-01,
"""


def test_import_lookup_and_round_trip(container: Container) -> None:
    result = import_customers(container.profiles, GOOD, HOLDINGS, now=NOW)
    assert (result.customers, result.holdings) == (3, 2)
    assert container.profiles.count() == 3

    c1 = container.profiles.get("C1")
    assert c1.phones == ("+8613800138000", "+8613900139000")
    assert c1.tier == "gold"  # derived from AUM when the column is empty
    assert c1.aum_cny == Decimal("120000.50")
    assert c1.groups == ("payroll", "car_owner")
    assert c1.has_consent("marketing_calls") and not c1.has_consent("biometrics")
    assert [h.product_id for h in c1.holdings] == ["DEP-1Y"]

    # Lookup by any formatting of the number (the live call path).
    for raw in ("+8613900139000", "139 0013 9000", "008613900139000"):
        assert [c.customer_id for c in container.profiles.find_by_phone(raw)] == ["C1"]
    assert container.profiles.find_by_phone("+8613000000000") == []
    assert container.profiles.find_by_phone("not a number") == []

    customers_csv, holdings_csv = export_customers(container.profiles.iter_all())
    container.profiles.delete("C1")
    container.profiles.delete("C2")
    container.profiles.delete("C3")
    assert container.profiles.count() == 0
    import_customers(container.profiles, customers_csv, holdings_csv, now=NOW)
    again = container.profiles.get("C2")
    assert again.vip and again.email == "jane@example.com" and again.tier == "private"
    assert again.holdings[0].amount_cny == Decimal("2000000.00")
    assert export_customers(container.profiles.iter_all()) == (customers_csv, holdings_csv)


def test_phone_lookup_is_indexed(container: Container) -> None:
    indexes = inspect(container.engine).get_indexes("customer_phones")
    assert any(ix["column_names"] == ["e164"] for ix in indexes)


def test_one_bad_row_imports_nothing_and_names_the_row(container: Container) -> None:
    bad = GOOD.replace("C3,李娜,0086 13700137000", "C3,李娜,12345")
    with pytest.raises(ImportRejectedError) as info:
        import_customers(container.profiles, bad, HOLDINGS, now=NOW)
    assert [(e.row, e.column) for e in info.value.rows] == [(4, "phones")]
    assert "row 4" in str(info.value)
    assert container.profiles.count() == 0


def test_many_bad_rows_are_all_reported(container: Container) -> None:
    bad = (
        GOOD.replace("120000.50", "lots").replace("C5,private", "C9,private")
        + "C1,dup,13800138001,zh"
        + "," * 13
        + "\n"
    )
    with pytest.raises(ImportRejectedError) as info:
        import_customers(container.profiles, bad, None, now=NOW)
    found = {(e.row, e.column) for e in info.value.rows}
    assert found == {(2, "aum_cny"), (3, "risk_tolerance"), (5, "customer_id")}
    assert container.profiles.count() == 0


def test_bad_holdings_row_rolls_back_customers_too(container: Container) -> None:
    bad_holdings = HOLDINGS + "C9,DEP-1Y,100,2025-01-01,\n"
    with pytest.raises(ImportRejectedError) as info:
        import_customers(container.profiles, GOOD, bad_holdings, now=NOW)
    assert [(e.row, e.column) for e in info.value.rows] == [(4, "customer_id")]
    assert container.profiles.count() == 0


def test_header_problems(container: Container) -> None:
    with pytest.raises(ImportRejectedError) as info:
        import_customers(container.profiles, "customer_id,name,colour\nC1,x,red\n", None, now=NOW)
    assert {(e.row, e.column) for e in info.value.rows} == {(1, "phones"), (1, "colour")}


def test_consent_tags_timeline(container: Container) -> None:
    import_customers(container.profiles, GOOD, None, now=NOW)
    container.profiles.set_consent("C3", "marketing_calls", True, source="branch-form")
    assert container.profiles.get("C3").has_consent("marketing_calls")
    container.profiles.set_consent("C3", "marketing_calls", False, source="call-opt-out")
    c3 = container.profiles.get("C3")
    assert not c3.has_consent("marketing_calls")
    assert c3.consents[0].source == "call-opt-out"

    container.profiles.set_tag("C3", Tag(name="prefers_evening", value="yes", source="qa"))
    past = datetime.now(UTC) - timedelta(days=1)
    container.profiles.set_tag("C3", Tag(name="expired_offer", value="gold", expires_at=past))
    assert [t.name for t in container.profiles.get("C3").tags] == ["prefers_evening"]
    assert container.profiles.search(tag="prefers_evening").total == 1
    assert container.profiles.remove_tag("C3", "prefers_evening")
    assert not container.profiles.remove_tag("C3", "prefers_evening")

    container.profiles.add_timeline("C3", "call", "asked about card annual fee", ref="call-1")
    entries = container.profiles.timeline("C3")
    assert [e.kind for e in entries][:1] == ["call"]
    assert any("consent marketing_calls withdrawn" in e.summary for e in entries)

    with pytest.raises(NotFoundError):
        container.profiles.get("nope")
    with pytest.raises(NotFoundError):
        container.profiles.set_consent("nope", "recording", True, source="x")


def test_search(container: Container) -> None:
    import_customers(container.profiles, GOOD, None, now=NOW)
    assert container.profiles.search(text="张").total == 1
    assert container.profiles.search(text="13700137000").items[0].customer_id == "C3"
    assert container.profiles.search(tier="private").total == 1
    page = container.profiles.search(limit=2)
    assert (page.total, len(page.items)) == (3, 2)


def test_changes_are_handed_to_the_outbox(container: Container) -> None:
    import_customers(container.profiles, GOOD, None, now=NOW)
    container.profiles.set_consent("C1", "recording", False, source="ivr")
    assert container.outbox.pending() == 4
