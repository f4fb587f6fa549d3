"""Dialing-list validation: E.164 numbers, duplicates, time zones from the column or the number, languages, the
campaign kind's fields; all or nothing, with line numbers."""

from __future__ import annotations

import pytest

from core.errors import ImportRejectedError
from telephony.dialer.lists import parse_contacts, parse_list_csv

pytestmark = pytest.mark.unit


def test_a_good_collection_list() -> None:
    text = (
        "phone,customer_id,language,timezone,amount_due,due_date\n"
        '138 0013 8000,C000001,zh,,"1,250.5",2026-12-25\n'
        "+1 212 555 0100,,EN,America/New_York,80,2026-12-20\n"
        "\n"
        "0086-139-0013-9000,C000002,,,0,2026-12-31\n"
    )
    rows = parse_list_csv(text, kind="collection", default_language="en")
    assert [(r.line, r.phone, r.zones, r.language, r.customer_id) for r in rows] == [
        (2, "+8613800138000", ("Asia/Shanghai",), "zh", "C000001"),
        (3, "+12125550100", ("America/New_York",), "en", None),
        (5, "+8613900139000", ("Asia/Shanghai",), "en", "C000002"),
    ]
    assert rows[0].fields == {"amount_due": "1250.50", "due_date": "2026-12-25"}


def test_every_bad_row_is_named_and_nothing_is_kept() -> None:
    text = (
        "phone,customer_id,language,timezone,amount_due,due_date\n"
        "13800138000,C1,zh,,100,2026-12-25\n"
        "not a number,C2,zh,,100,2026-12-25\n"
        "+86 138 0013 8000,C3,zh,,100,2026-12-25\n"  # row 2's number again
        "13900139000,C4,fr,Mars/Olympus,-5,25/12/2026\n"
        "13700137000,C 5,zh,,,\n"
    )
    with pytest.raises(ImportRejectedError) as err:
        parse_list_csv(text, kind="collection", default_language="zh")
    found = {(e.row, e.column) for e in err.value.rows}
    assert found == {
        (3, "phone"),
        (4, "phone"),
        (5, "language"),
        (5, "timezone"),
        (5, "amount_due"),
        (5, "due_date"),
        (6, "customer_id"),
        (6, "amount_due"),
        (6, "due_date"),
    }
    assert "the same number as row 2" in str(err.value)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("number\n13800138000\n", (1, "phone")),
        ("phone,secret\n13800138000,x\n", (1, "secret")),
        ("phone\n", (1, None)),
        ('phone\n"13800138000\n', (2, None)),
        ("phone,customer_id\n13800138000,C1,extra\n", (2, None)),
    ],
)
def test_bad_files_are_rejected_at_the_right_line(text: str, where: tuple[int, str | None]) -> None:
    with pytest.raises(ImportRejectedError) as err:
        parse_list_csv(text, kind="marketing", default_language="zh")
    assert (err.value.rows[0].row, err.value.rows[0].column) == where


def test_kind_fields_are_checked_per_campaign_kind() -> None:
    notice = "phone,notice,card_last4,expiry_date\n13800138000,card_expiry,4412,2027-01-31\n"
    [row] = parse_list_csv(notice, kind="notification", default_language="zh")
    assert row.fields == {"notice": "card_expiry", "card_last4": "4412", "expiry_date": "2027-01-31"}
    with pytest.raises(ImportRejectedError):
        parse_list_csv("phone,notice\n13800138000,lottery_win\n", kind="notification", default_language="zh")
    with pytest.raises(ImportRejectedError):  # a collection list needs the amount and the date
        parse_list_csv("phone\n13800138000\n", kind="collection", default_language="zh")
    with pytest.raises(ImportRejectedError):  # the marketing kind has no amount_due column
        parse_list_csv("phone,amount_due\n13800138000,5\n", kind="marketing", default_language="zh")


def test_api_rows_are_validated_the_same_way() -> None:
    rows = parse_contacts(
        [{"phone": "13800138000", "product_id": "CC-PLAT"}, {"phone": "+447911123456", "language": "en"}],
        kind="marketing",
        default_language="zh",
    )
    assert rows[0].fields == {"product_id": "CC-PLAT"} and rows[0].line == 2
    assert "Europe/London" in rows[1].zones and len(rows[1].zones) > 1  # every zone the number may be in
    with pytest.raises(ImportRejectedError) as err:
        parse_contacts([{"phone": "13800138000", "pin": "1234"}], kind="marketing", default_language="zh")
    assert (err.value.rows[0].row, err.value.rows[0].column) == (2, "pin")
    with pytest.raises(ImportRejectedError):
        parse_contacts([], kind="marketing", default_language="zh")
