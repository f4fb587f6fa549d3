"""The SIP placer with fake media workers on the in-memory bus: outcomes from the call events, the dialog's outcome
(also when it comes after the hangup), slots taken from heartbeats (calls the placer did not place count too), a
worker lost mid-call, and hanging up everything when the dialer stops."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import pytest

from core.bus.memory import InMemoryEventBus
from core.media import PlayAudio, PlayControl
from telephony.dialer.attempts import AttemptState
from telephony.dialer.campaigns import Campaign
from telephony.dialer.engine import DialRequest, DialResult
from telephony.dialer.sip_placer import SipPlacer
from telephony.dialer.testing import FakeMediaWorkers

pytestmark = pytest.mark.unit
S = AttemptState
CAMPAIGN = Campaign("c1", "Reminder", "collection", "zh", "running", 4, 3, {"dialog": {"callback_number": "95500"}},
                    datetime(2026, 12, 1, tzinfo=UTC), None, None)  # fmt: skip


class Progress:
    def __init__(self) -> None:
        self.seen: list[str] = []

    async def ringing(self) -> None:
        self.seen.append("ringing")

    async def answered(self, *, machine: bool | None = None) -> None:
        self.seen.append("answered")


def request(phone: str, attempt: str = "a1") -> DialRequest:
    return DialRequest(attempt, CAMPAIGN, phone, "zh", "C1", {"amount_due": "3200"}, 20.0)


async def with_placer(
    callees: dict[str, str], body: Callable[[SipPlacer, FakeMediaWorkers], Coroutine[Any, Any, None]], **kw: Any
) -> None:
    bus = InMemoryEventBus()
    await bus.start()
    workers = FakeMediaWorkers(bus, callees, max_calls=kw.pop("max_calls", 4))
    placer = SipPlacer(bus, workers, workers=kw.pop("workers", [0]), route=lambda p: f"sip:{p}@127.0.0.1:5090",
                       outcome_grace_s=0.5, lost_after_s=kw.pop("lost_after_s", 5.0), **kw)  # fmt: skip
    events = asyncio.create_task(placer.run())
    try:
        await asyncio.sleep(0.01)
        await workers.beat(0, 1)
        await body(placer, workers)
    finally:
        events.cancel()
        await asyncio.gather(events, return_exceptions=True)
        await bus.aclose()


def run(callees: dict[str, str], body: Callable[[SipPlacer, FakeMediaWorkers], Coroutine[Any, Any, None]],
        **kw: Any) -> None:  # fmt: skip
    asyncio.run(asyncio.wait_for(with_placer(callees, body, **kw), 20))


def test_outcomes_follow_the_call_events() -> None:  # a dialog speaks on every answered call here
    callees = {"+861": "busy", "+862": "answer", "+863": "machine", "+864": "late_outcome"}
    results: dict[str, tuple[DialResult, list[str]]] = {}

    async def body(placer: SipPlacer, workers: FakeMediaWorkers) -> None:
        for phone in callees:
            progress = Progress()
            results[phone] = (await placer.place(request(phone), progress), progress.seen)

    run(callees, body)
    busy, _ = results["+861"]
    assert (busy.outcome, busy.sip_code) == (S.BUSY, 486)
    person, seen = results["+862"]
    assert (person.outcome, person.final, dict(person.result)) == (
        S.COMPLETED,
        "promised",
        {"promise_date": "2026-12-25"},
    )
    assert seen == ["ringing", "answered"] and person.call_id
    assert results["+863"][0].outcome is S.VOICEMAIL
    late, _ = results["+864"]
    assert (late.outcome, late.final) == (S.COMPLETED, "promised")  # waited for the outcome after the hangup


def test_the_dial_command_and_the_campaign_context() -> None:
    async def body(placer: SipPlacer, workers: FakeMediaWorkers) -> None:
        await placer.place(request("+862"), Progress())
        [(worker, dial)] = [(w, c) for w, c in workers.commands if isinstance(c, PlayControl) and c.action == "dial"]
        assert (worker, dial.target, dial.ring_timeout_s, dial.campaign_id) == (
            0,
            "sip:+862@127.0.0.1:5090",
            20.0,
            "c1",
        )

    run({"+862": "answer"}, body)


def test_slots_count_calls_the_placer_did_not_place() -> None:
    async def body(placer: SipPlacer, workers: FakeMediaWorkers) -> None:
        await workers.beat(0, foreign=1)  # worker 0 holds a call (inbound, or left by a killed dialer)
        await workers.beat(1, foreign=0)
        ringing = [asyncio.create_task(placer.place(request(f"+86{i}", f"a{i}"), Progress())) for i in range(2)]
        await asyncio.sleep(0.1)
        assert sorted(w for w, c in workers.commands if isinstance(c, PlayControl) and c.action == "dial") == [
            1
        ]  # one free slot in all
        await workers.beat(0, foreign=0)  # the other call ended
        await asyncio.sleep(0.1)
        assert sorted(w for w, c in workers.commands if isinstance(c, PlayControl) and c.action == "dial") == [0, 1]
        placer.hang_up_all("test")
        results = await asyncio.gather(*ringing)
        assert {r.outcome for r in results} == {S.INTERRUPTED}

    run({f"+86{i}": "ring" for i in range(2)}, body, workers=[0, 1], max_calls=1, slots_per_worker=1)


def test_a_worker_that_falls_silent_fails_its_calls() -> None:
    async def body(placer: SipPlacer, workers: FakeMediaWorkers) -> None:
        result = await placer.place(request("+869"), Progress())
        assert result.outcome is S.FAILED

    run({"+869": "vanish"}, body, lost_after_s=0.3)


def test_no_worker_heard_means_no_dial() -> None:
    async def body(placer: SipPlacer, workers: FakeMediaWorkers) -> None:
        task = asyncio.create_task(placer.place(request("+862"), Progress()))
        await asyncio.sleep(0.2)
        assert workers.commands == []  # worker 2 never sent a heartbeat
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    run({"+862": "answer"}, body, workers=[2])


def test_an_answered_call_no_dialog_speaks_on_is_abandoned_with_the_message() -> None:
    async def body(placer: SipPlacer, workers: FakeMediaWorkers) -> None:
        result = await placer.place(request("+865"), Progress())
        assert result.outcome is S.ABANDONED
        sent = [c for _, c in workers.commands]
        kinds = [getattr(c, "action", "audio") for c in sent]
        assert kinds == ["dial", "audio", "hangup"]
        assert isinstance(sent[1], PlayAudio) and sent[1].payload == b"\x01\x00" * 160 and not sent[1].interruptible

    run({"+865": "no_dialog"}, body, silent_after_s=0.3, abandon_message={"zh": b"\x01\x00" * 160})
