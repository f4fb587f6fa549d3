"""The in-memory event bus, the bus interface helpers, and the test doubles in ``core.testing``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from core.bus import DEFAULT_QUEUE_SIZE, EventBus, InMemoryEventBus, Subscription, kind_matches, matching_kinds
from core.clock import Clock
from core.errors import BusError, InvalidInputError
from core.events import EVENT_KINDS, CallEnded, CallStarted, Event, FinalTranscript, PartialTranscript, SpeechStarted
from core.ids import CallId
from core.testing import FakeClock, RecordingBus

pytestmark = [pytest.mark.unit, pytest.mark.asyncio]

CALL = CallId("call-1")


def partial(n: int) -> PartialTranscript:
    return PartialTranscript(call_id=CALL, leg="customer", text=f"p{n}", start_ms=0, end_ms=n)


async def take(sub: Subscription, n: int, timeout_s: float = 1.0) -> list[Event]:
    out: list[Event] = []

    async def run() -> None:
        async for event in sub:
            out.append(event)
            if len(out) == n:
                return

    await asyncio.wait_for(run(), timeout_s)
    return out


async def test_kind_prefix_helpers() -> None:
    assert kind_matches("speech.final", ())
    assert kind_matches("speech.final", ("speech.",))
    assert kind_matches("speech.final", ("call.", "speech.final"))
    assert not kind_matches("speech.final", ("call.",))
    assert matching_kinds(("speech.",)) == ("speech.started", "speech.partial", "speech.final")
    assert matching_kinds(()) == EVENT_KINDS
    with pytest.raises(InvalidInputError):
        matching_kinds(("spech.",))


async def test_round_trip_and_prefix_filtering() -> None:
    bus: EventBus = InMemoryEventBus()
    await bus.start()
    speech = bus.subscribe("speech.")
    final_only = bus.subscribe("speech.final")
    everything = bus.subscribe()
    await speech.wait_ready()
    events: list[Event] = [
        CallStarted(call_id=CALL, direction="inbound", line="95500"),
        SpeechStarted(call_id=CALL, leg="customer", start_ms=120),
        FinalTranscript(call_id=CALL, leg="customer", text="查询余额", start_ms=120, end_ms=900, lang="zh"),
        CallEnded(call_id=CALL, duration_ms=3000, reason="normal", sip_code=200),
    ]
    for event in events:
        await bus.publish(event)
    assert await take(everything, 4) == events
    assert await take(speech, 2) == events[1:3]
    assert await take(final_only, 1) == [events[2]]
    assert speech.pending == 0 and final_only.pending == 0
    await bus.aclose()


async def test_overflow_drops_oldest_and_counts() -> None:
    bus = InMemoryEventBus(queue_size=3)
    sub = bus.subscribe("speech.partial")
    big = bus.subscribe("speech.", queue_size=DEFAULT_QUEUE_SIZE)
    for n in range(5):
        await bus.publish(partial(n))
    assert sub.dropped == 2 and sub.pending == 3
    assert [e.end_ms for e in await take(sub, 3)] == [2, 3, 4]  # type: ignore[attr-defined]
    assert big.dropped == 0 and big.pending == 5
    with pytest.raises(InvalidInputError):
        bus.subscribe(queue_size=0)
    await bus.aclose()


async def test_aclose_ends_iteration_and_is_idempotent() -> None:
    bus = InMemoryEventBus()
    sub = bus.subscribe()
    waiter = asyncio.ensure_future(take(sub, 1))
    await asyncio.sleep(0)
    await sub.aclose()
    await sub.aclose()
    assert await waiter == []  # iteration stopped, no error
    assert sub.closed
    other = bus.subscribe("call.")
    await bus.aclose()
    await bus.aclose()
    assert other.closed
    with pytest.raises(BusError) as info:
        await bus.publish(partial(1))
    assert info.value.retryable is False
    with pytest.raises(BusError):
        bus.subscribe()


async def test_closed_subscription_gets_nothing_more() -> None:
    bus = InMemoryEventBus()
    async with bus.subscribe() as sub:
        await bus.publish(partial(1))
    await bus.publish(partial(2))
    assert sub.closed and sub.pending == 1  # buffered before close, never handed out
    with pytest.raises(StopAsyncIteration):
        await sub.__anext__()


async def test_recording_bus_records_and_delivers() -> None:
    bus = RecordingBus()
    sub = bus.subscribe("call.")
    await bus.publish(CallStarted(call_id=CALL, direction="outbound", line="trunk-1"))
    await bus.publish(partial(1))
    assert bus.kinds() == ["call.started", "speech.partial"]
    assert [type(e) for e in bus.events("speech.")] == [PartialTranscript]
    assert len(await take(sub, 1)) == 1
    bus.clear()
    assert bus.published == []


async def test_fake_clock_sleeps_until_advanced() -> None:
    start = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    clock = FakeClock(start)
    as_protocol: Clock = clock
    assert as_protocol.now() == start and clock.monotonic() == 0.0
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    tasks = [asyncio.create_task(sleeper("late", 10)), asyncio.create_task(sleeper("early", 2))]
    await clock.wait_for_sleepers(2)
    clock.advance(1.5)
    await asyncio.sleep(0)
    assert woke == []
    clock.advance(0.5)
    await asyncio.sleep(0)
    assert woke == ["early"]
    clock.advance(60)
    await asyncio.gather(*tasks)
    assert woke == ["early", "late"]
    assert clock.monotonic() == 62.0
    assert clock.now() == start + timedelta(seconds=62)
    assert clock.sleepers == 0
    await clock.sleep(0)  # just yields
    with pytest.raises(ValueError):
        clock.advance(-1)


async def test_fake_clock_cancelled_sleep_is_forgotten() -> None:
    clock = FakeClock()
    task = asyncio.create_task(clock.sleep(5))
    await clock.wait_for_sleepers(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.sleepers == 0


async def test_fake_clock_advanced_from_another_thread() -> None:
    clock = FakeClock()
    task = asyncio.create_task(clock.sleep(1))
    await clock.wait_for_sleepers(1)
    await asyncio.to_thread(clock.advance, 1)
    await asyncio.wait_for(task, 1)
