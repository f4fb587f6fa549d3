"""Synchronous services hand events to the bus through the outbox without blocking."""

from __future__ import annotations

import asyncio
import threading

import pytest

from core.events import CustomersImported, ProfileChanged
from core.ids import CustomerId
from core.testing import RecordingBus
from voxdesk.outbox import EventOutbox

pytestmark = [pytest.mark.unit, pytest.mark.asyncio]


async def test_events_put_from_threads_reach_the_bus() -> None:
    outbox, bus = EventOutbox(), RecordingBus()
    drain = asyncio.create_task(outbox.drain_forever(bus))
    await asyncio.sleep(0)
    threads = [
        threading.Thread(
            target=lambda i=i: outbox.put(ProfileChanged(customer_id=CustomerId(f"C{i}"), change="updated"))
        )
        for i in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for _ in range(100):
        if len(bus.published) == 20:
            break
        await asyncio.sleep(0.01)
    drain.cancel()
    assert sorted(e.customer_id for e in bus.published) == sorted(f"C{i}" for i in range(20))  # type: ignore[attr-defined]
    assert outbox.pending() == 0


async def test_bounded_when_nobody_drains() -> None:
    outbox = EventOutbox(max_events=3)
    for i in range(5):
        outbox.put(CustomersImported(count=i, source="cli"))
    assert (outbox.pending(), outbox.dropped) == (3, 2)
    bus = RecordingBus()
    assert await outbox.flush(bus) == 3
    assert [e.count for e in bus.published] == [2, 3, 4]  # type: ignore[attr-defined]
