"""The dialer's store on SQLite: all-or-nothing lists, claims that never hand one contact to two dialers, moves
only along the state graph, and recovery after a crash that never redials a live attempt and loses none."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from core.errors import ConflictError, ImportRejectedError
from core.testing import FakeClock
from telephony.dialer.attempts import AttemptState, RetryPolicy
from telephony.dialer.campaigns import CampaignBook, NewCampaign
from telephony.dialer.lists import parse_list_csv
from telephony.dialer.store import DialerStore, DueContact
from tests.dialer_samples import dialer_sessions

pytestmark = pytest.mark.unit
S = AttemptState
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
LIST = "phone,amount_due,due_date\n" + "".join(f"1380013{8000 + i},100,2026-12-25\n" for i in range(6))


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    yield from dialer_sessions(tmp_path / "dialer.db")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store(sessions: sessionmaker[Session], clock: FakeClock) -> DialerStore:
    CampaignBook(sessions, clock=clock).create(NewCampaign("c1", "Reminders", "collection", "zh"))
    s = DialerStore(sessions, clock=clock)
    s.add_contacts("c1", parse_list_csv(LIST, kind="collection", default_language="zh"))
    return s


def test_lists_are_added_all_or_nothing(store: DialerStore) -> None:
    again = parse_list_csv("phone,amount_due,due_date\n13900139000,5,2026-12-25\n13800138003,5,2026-12-25\n",
                           kind="collection", default_language="zh")  # fmt: skip
    with pytest.raises(ImportRejectedError) as err:
        store.add_contacts("c1", again)
    assert [(e.row, e.reason) for e in err.value.rows] == [(3, "already in this campaign")]
    assert len(store.claim_due("c1", limit=100, dialer_id="d1")) == 6  # the new number was not added either


def test_an_attempt_from_claim_to_retry_and_to_done(store: DialerStore, clock: FakeClock) -> None:
    [claim] = store.claim_due("c1", limit=1, dialer_id="d1")
    assert claim.number == 1 and claim.contact.attempts == 0
    assert store.claim_due("c1", limit=10, dialer_id="d1") != []  # the others, not this one again
    store.move(claim.attempt_id, S.QUEUED, S.DIALING, call_id="call-1")
    assert store.contact(claim.contact.contact_id).attempts == 1  # counted when dialed
    store.move(claim.attempt_id, S.DIALING, S.RINGING)
    with pytest.raises(ConflictError):  # a stale view of the state
        store.move(claim.attempt_id, S.DIALING, S.RINGING)
    store.close(claim.attempt_id, S.RINGING, S.BUSY, retry_at=T0 + timedelta(minutes=10), sip_code=486)
    clock.advance(5 * 60)
    assert all(
        c.contact.contact_id != claim.contact.contact_id for c in store.claim_due("c1", limit=10, dialer_id="d1")
    )
    clock.advance(5 * 60)
    [second] = store.claim_due("c1", limit=10, dialer_id="d1")
    assert second.contact.contact_id == claim.contact.contact_id and second.number == 2
    store.move(second.attempt_id, S.QUEUED, S.DIALING)
    store.move(second.attempt_id, S.DIALING, S.ANSWERED)
    store.close(second.attempt_id, S.ANSWERED, S.COMPLETED, retry_at=None, final="promised", result={"ptp": "12-20"})
    clock.advance(86400)
    assert store.claim_due("c1", limit=10, dialer_id="d1") == []  # everything else is still active from above


def test_two_dialers_never_claim_the_same_contact(store: DialerStore) -> None:
    got: list[list[int]] = []
    barrier = threading.Barrier(4)

    def claim(name: str) -> None:
        barrier.wait()
        for _ in range(6):
            try:
                got.append([c.contact.contact_id for c in store.claim_due("c1", limit=1, dialer_id=name)])
            except ConflictError:
                continue

    threads = [threading.Thread(target=claim, args=(f"d{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [i for batch in got for i in batch]
    assert len(ids) == len(set(ids)) == 6


def test_recovery_cancels_queued_and_interrupts_live_attempts(store: DialerStore, clock: FakeClock) -> None:
    claims = store.claim_due("c1", limit=3, dialer_id="crashed")
    store.claim_due("c1", limit=1, dialer_id="alive")
    queued, dialing, answered = claims
    store.move(dialing.attempt_id, S.QUEUED, S.DIALING)
    store.move(answered.attempt_id, S.QUEUED, S.DIALING)
    store.move(answered.attempt_id, S.DIALING, S.ANSWERED)
    policy = RetryPolicy(max_attempts=3)
    seen: list[tuple[int, AttemptState]] = []

    def reschedule(contact: DueContact, outcome: AttemptState, at: datetime) -> datetime | None:
        seen.append((contact.attempts, outcome))
        return policy.retry_at(outcome, at, contact.attempts)

    report = store.recover(reschedule, dialer_id="crashed")
    assert sorted(report.interrupted) == sorted([dialing.attempt_id, answered.attempt_id])
    assert report.cancelled == [queued.attempt_id]
    assert seen == [(1, S.INTERRUPTED), (1, S.INTERRUPTED)]
    assert len(store.live_attempts(dialer_id="alive")) == 1  # another dialer's attempt is left alone
    assert store.live_attempts(dialer_id="crashed") == []
    assert store.contact(queued.contact.contact_id).attempts == 0  # never dialed: not counted
    # The queued contact is due again at once (with the two never claimed); the interrupted ones after the delay.
    now_due = store.claim_due("c1", limit=10, dialer_id="new")
    assert queued.contact.contact_id in {c.contact.contact_id for c in now_due} and len(now_due) == 3
    assert {c.contact.contact_id for c in now_due}.isdisjoint({dialing.contact.contact_id, answered.contact.contact_id})
    clock.advance(30 * 60)
    redial = store.claim_due("c1", limit=10, dialer_id="new")
    assert sorted(c.contact.contact_id for c in redial) == sorted(
        [dialing.contact.contact_id, answered.contact.contact_id]
    )
    assert [c.contact.attempts for c in redial] == [1, 1] and [c.number for c in redial] == [2, 2]
    assert store.recover(reschedule, dialer_id="crashed").interrupted == []  # idempotent


def test_dnc_list(store: DialerStore) -> None:
    assert store.add_dnc("+8613800138001", reason="opt_out", source="c1")
    assert not store.add_dnc("+8613800138001", reason="opt_out")
    assert store.dnc_numbers(["+8613800138001", "+8613800138002"]) == {"+8613800138001"}
    assert store.remove_dnc("+8613800138001") and not store.remove_dnc("+8613800138001")
    assert store.dnc_numbers([]) == set()
