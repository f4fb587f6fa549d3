"""The dialer loop with a scripted placer and an injected clock: channel limits, retries by outcome, calling
windows, DNC and consent at dial time, opt-out to DNC, and restart after a crash without dialing anyone twice."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from core.testing import FakeClock
from telephony.dialer.attempts import AttemptState
from telephony.dialer.campaigns import CampaignBook, NewCampaign
from telephony.dialer.engine import Dialer, DialResult
from telephony.dialer.lists import parse_list_csv
from telephony.dialer.store import DialerStore
from telephony.dialer.testing import ScriptedPlacer
from tests.dialer_samples import dialer_sessions

pytestmark = pytest.mark.unit
S = AttemptState
MONDAY_10 = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
CALENDAR = {"weekdays": {d: ["09:00-20:00"] for d in ("mon", "tue", "wed", "thu", "fri")}}


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    yield from dialer_sessions(tmp_path / "dialer.db")


def setup(
    sessions: sessionmaker[Session], clock: FakeClock, *, kind: str = "collection", n: int = 5, channels: int = 2
) -> tuple[DialerStore, CampaignBook]:
    book = CampaignBook(sessions, clock=clock)
    config = {"calendar": CALENDAR, "retry_minutes": {"busy": 10, "no_answer": 60}}
    book.create(NewCampaign("c1", "Test", kind, "zh", max_channels=channels, max_attempts=3, config=config))  # type: ignore[arg-type]
    store = DialerStore(sessions, clock=clock)
    header = "phone,customer_id,amount_due,due_date\n" if kind == "collection" else "phone,customer_id\n"
    extra = ",100,2026-12-25" if kind == "collection" else ""
    rows = "".join(f"1380013{8000 + i},C{i}{extra}\n" for i in range(n))
    store.add_contacts("c1", parse_list_csv(header + rows, kind=kind, default_language="zh"))  # type: ignore[arg-type]
    book.set_status("c1", "running")
    return store, book


def phone(i: int) -> str:
    return f"+861380013{8000 + i}"


async def settle(dialer: Dialer) -> None:
    await dialer.tick()
    await dialer.drain()


def test_channels_are_never_exceeded_and_everyone_is_called_once(sessions: sessionmaker[Session]) -> None:
    clock = FakeClock(MONDAY_10)
    store, book = setup(sessions, clock, n=7, channels=3)
    hold = asyncio.Event()
    placer = ScriptedPlacer(hold=hold)
    dialer = Dialer(store, book, placer, consent=lambda _c: True, dialer_id="d1", max_channels=8, clock=clock)

    async def scenario() -> None:
        assert await dialer.tick() == 3
        await asyncio.sleep(0.2)
        assert await dialer.tick() == 0  # the campaign's 3 channels are busy
        hold.set()
        await dialer.drain()
        for _ in range(3):
            await settle(dialer)

    asyncio.run(scenario())
    assert placer.max_concurrent == 3
    assert sorted(p for p, _ in placer.placed) == sorted(phone(i) for i in range(7))  # each once
    assert store.live_attempts() == []


def test_retries_follow_the_outcome_and_stop_at_max_attempts(sessions: sessionmaker[Session]) -> None:
    clock = FakeClock(MONDAY_10)
    store, book = setup(sessions, clock, n=2)
    busy, no_answer = DialResult(S.BUSY, sip_code=486), DialResult(S.NO_ANSWER, sip_code=487)
    placer = ScriptedPlacer(script={phone(0): [busy], phone(1): [no_answer, DialResult(S.COMPLETED, final="promised")]})
    dialer = Dialer(store, book, placer, consent=lambda _c: True, dialer_id="d1", clock=clock)

    async def scenario() -> None:
        await settle(dialer)  # both dialed once
        clock.advance(10 * 60)
        await settle(dialer)  # phone 0 again after 10 min (busy); phone 1 waits 60
        clock.advance(50 * 60)
        await settle(dialer)  # phone 0's third try and phone 1's second
        clock.advance(3600)
        await settle(dialer)  # phone 0 has no attempts left

    asyncio.run(scenario())
    calls = [p for p, _ in placer.placed]
    assert calls.count(phone(0)) == 3 and calls.count(phone(1)) == 2
    assert store.contact(1).attempts == 3 and store.contact(2).attempts == 2


def test_nobody_is_called_outside_the_window_on_dnc_or_without_consent(sessions: sessionmaker[Session]) -> None:
    clock = FakeClock(datetime(2026, 11, 30, 13, 0, tzinfo=UTC))  # 21:00 in Shanghai: closed
    store, book = setup(sessions, clock, kind="marketing", n=4)
    store.add_dnc(phone(0), reason="customer_request")
    consents = {"C0": True, "C1": True, "C2": False, "C3": None}
    placer = ScriptedPlacer()
    dialer = Dialer(store, book, placer, consent=consents.get, dialer_id="d1", clock=clock)

    async def scenario() -> None:
        await settle(dialer)
        assert placer.placed == []  # the window is closed for everyone
        clock.advance(12 * 3600)  # Tuesday 09:00 local
        for _ in range(3):  # two channels: contacts never tried come first, then the deferred one
            await settle(dialer)

    asyncio.run(scenario())
    assert [p for p, _ in placer.placed] == [phone(1)]  # DNC, refused consent and unknown consent are not called
    assert store.contact(1).attempts == 0 and store.contact(3).attempts == 0


def test_an_opt_out_puts_the_number_on_the_dnc_list(sessions: sessionmaker[Session]) -> None:
    clock = FakeClock(MONDAY_10)
    store, book = setup(sessions, clock, n=1)
    placer = ScriptedPlacer(script={phone(0): [DialResult(S.COMPLETED, opt_out=True)]})
    dialer = Dialer(store, book, placer, consent=lambda _c: True, dialer_id="d1", clock=clock)
    asyncio.run(settle(dialer))
    assert store.dnc_numbers([phone(0)]) == {phone(0)}


def test_a_restart_after_a_crash_dials_nobody_twice(sessions: sessionmaker[Session]) -> None:
    clock = FakeClock(MONDAY_10)
    store, book = setup(sessions, clock, n=4, channels=4)
    # The first run dies with two calls live (answered, never recorded) and two claimed but not yet dialed.
    claims = store.claim_due("c1", limit=4, dialer_id="d1")
    for c in claims[:2]:
        store.move(c.attempt_id, S.QUEUED, S.DIALING)
        store.move(c.attempt_id, S.DIALING, S.ANSWERED)
    placer = ScriptedPlacer()
    dialer = Dialer(store, book, placer, consent=lambda _c: True, dialer_id="d1", tick_s=1, clock=clock)

    async def scenario() -> None:
        run = asyncio.create_task(dialer.run())
        await clock.wait_for_sleepers()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run

    asyncio.run(scenario())
    dialed_now = {p for p, _ in placer.placed}
    live = {claims[0].contact.phone, claims[1].contact.phone}
    assert dialed_now == {claims[2].contact.phone, claims[3].contact.phone}  # the never-dialed ones
    assert dialed_now.isdisjoint(live)  # the interrupted ones wait for their retry
    assert store.contact(claims[0].contact.contact_id).attempts == 1


def test_a_campaign_over_the_abandon_ceiling_is_paused(sessions: sessionmaker[Session]) -> None:
    clock = FakeClock(MONDAY_10)
    store, book = setup(sessions, clock, n=25, channels=25)
    placer = ScriptedPlacer(script={phone(i): [DialResult(S.ABANDONED, sip_code=200)] for i in range(25)})
    dialer = Dialer(store, book, placer, consent=lambda _c: True, dialer_id="d1", clock=clock, max_channels=25)

    async def scenario() -> None:
        await settle(dialer)
        assert len(placer.placed) == 25 and book.get("c1").status == "running"
        clock.advance(31)
        await settle(dialer)

    asyncio.run(scenario())
    assert book.get("c1").status == "paused"
    assert store.answered_today("c1", MONDAY_10.replace(hour=0)) == (25, 25)
