"""Campaign results land in the shared customer profile (SQLite and PostgreSQL): the dialer loop with a scripted
placer records each attempt on the customer's timeline and tags the settled outcome (promise to pay, interest in a
product, opt-out); consent withdrawn in the profile store stops a marketing call at dial time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from core.ids import CustomerId
from core.testing import FakeClock
from profiles.models import Customer
from telephony.dialer.attempts import AttemptState
from telephony.dialer.campaigns import NewCampaign
from telephony.dialer.engine import Dialer, DialResult
from telephony.dialer.lists import parse_contacts
from telephony.dialer.testing import ScriptedPlacer
from voxdesk.dialer_main import consent_lookup
from voxdesk.dialer_results import profile_writer

pytestmark = pytest.mark.integration
MONDAY_10 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
CALENDAR = {"weekdays": {d: ["09:00-20:00"] for d in ("mon", "tue", "wed", "thu", "fri")}}


def _run(container: Any, kind: str, rows: list[dict[str, str]], script: dict[str, list[DialResult]]) -> Dialer:
    clock = FakeClock(MONDAY_10)
    container.campaigns.create(
        NewCampaign("c1", "Spring offer", kind, "zh", max_channels=4, max_attempts=2, config={"calendar": CALENDAR})
    )
    container.dialer.add_contacts("c1", parse_contacts(rows, kind=kind, default_language="zh"))
    container.campaigns.set_status("c1", "running")
    dialer = Dialer(container.dialer, container.campaigns, ScriptedPlacer(script=script),
                    consent=consent_lookup(container), dialer_id="d1", clock=clock,
                    on_recorded=profile_writer(container.profiles))  # fmt: skip

    async def go() -> None:
        await dialer.tick()
        await dialer.drain()

    asyncio.run(go())
    return dialer


def test_collection_results_go_to_the_timeline_and_tags(container: Any) -> None:
    container.profiles.upsert_many([Customer(customer_id=CustomerId("C1"), name="王芳", phones=("+8613800138001",)),
                                    Customer(customer_id=CustomerId("C2"), name="李雷", phones=("+8613800138002",))],
                                   source="test")  # fmt: skip
    rows = [{"phone": "+8613800138001", "customer_id": "C1", "amount_due": "3200", "due_date": "2026-12-20"},
            {"phone": "+8613800138002", "customer_id": "C2", "amount_due": "99", "due_date": "2026-12-20"}]  # fmt: skip
    script = {
        "+8613800138001": [DialResult(AttemptState.COMPLETED, final="promised", result={"promise_date": "2026-12-25"})],
        "+8613800138002": [DialResult(AttemptState.BUSY, sip_code=486)],
    }
    _run(container, "collection", rows, script)
    [entry] = container.profiles.timeline("C1")
    assert (
        entry.kind == "campaign"
        and entry.summary == 'payment reminder "Spring offer": promised (promise_date 2026-12-25)'
    )
    assert entry.data["final"] == "promised" and entry.ref
    tags = {t.name: t for t in container.profiles.get("C1").tags}
    assert tags["campaign:c1"].value == "promised" and tags["promise_to_pay"].value == "2026-12-25"
    assert tags["promise_to_pay"].expires_at is not None
    [busy] = container.profiles.timeline("C2")
    assert busy.summary == 'payment reminder "Spring offer": busy, to be tried again'
    assert not [t for t in container.profiles.get("C2").tags if t.name.startswith("campaign:")]


def test_marketing_interest_opt_out_and_consent(container: Any) -> None:
    from profiles.models import Consent

    people = [Customer(customer_id=CustomerId(f"M{i}"), name=f"客户{i}", phones=(f"+861390013900{i}",),
                       consents=(Consent(kind="marketing_calls", granted=i != 3, source="test", updated_at=MONDAY_10),)) for i in (1, 2, 3)]  # fmt: skip
    container.profiles.upsert_many(people, source="test")
    rows = [{"phone": f"+861390013900{i}", "customer_id": f"M{i}", "product_id": "WM-001"} for i in (1, 2, 3)]
    script = {
        "+8613900139001": [DialResult(AttemptState.COMPLETED, final="interested", result={"interest": "callback"})],
        "+8613900139002": [DialResult(AttemptState.COMPLETED, opt_out=True)],
    }
    _run(container, "marketing", rows, script)
    assert {t.name: t.value for t in container.profiles.get("M1").tags}["interested:WM-001"] == "callback"
    assert {t.name: t.value for t in container.profiles.get("M2").tags}["calls_opted_out"] == "c1"
    assert container.dialer.dnc_numbers(["+8613900139002"]) == {"+8613900139002"}
    assert container.profiles.timeline("M3") == []  # no consent: never dialed, nothing to record
    stats = container.campaigns.stats("c1")
    assert stats.outcomes.get("no_consent") == 1
