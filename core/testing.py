"""Test doubles of ``core``: a clock that tests drive by hand and a bus that records what was published."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from datetime import UTC, datetime, timedelta

from core.bus.base import kind_matches
from core.bus.memory import InMemoryEventBus
from core.events import Event, event_kind

_DEFAULT_START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class FakeClock:
    """A :class:`core.clock.Clock` whose time moves only when :meth:`advance` is called.

    ``now()`` starts at ``start`` (UTC) and ``monotonic()`` at ``0.0`` s; ``await sleep(s)`` returns once the
    clock has been advanced by at least ``s`` seconds (``sleep(0)`` just yields). ``advance`` may be called from
    any thread; sleepers wake on their own event loop, in deadline order.
    """

    def __init__(self, start: datetime = _DEFAULT_START) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock start must be timezone-aware")
        self._start = start.astimezone(UTC)
        self._elapsed = 0.0
        self._lock = threading.Lock()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> datetime:
        """The fake wall time: ``start`` plus everything advanced so far (UTC)."""
        with self._lock:
            return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        """Seconds advanced so far."""
        with self._lock:
            return self._elapsed

    async def sleep(self, seconds: float) -> None:
        """Wait until the clock has been advanced by ``seconds`` (s) from now."""
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            heapq.heappush(self._sleepers, (self._elapsed + seconds, next(self._seq), future))
        try:
            await future
        finally:
            with self._lock:
                self._sleepers = [s for s in self._sleepers if s[2] is not future]
                heapq.heapify(self._sleepers)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (s) and wake every sleeper whose deadline has come."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._elapsed += seconds
            due: list[asyncio.Future[None]] = []
            while self._sleepers and self._sleepers[0][0] <= self._elapsed:
                due.append(heapq.heappop(self._sleepers)[2])
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for future in due:
            if future.get_loop() is running:
                _wake(future)
            else:
                future.get_loop().call_soon_threadsafe(_wake, future)

    @property
    def sleepers(self) -> int:
        """How many ``sleep()`` calls are waiting."""
        with self._lock:
            return len(self._sleepers)

    async def wait_for_sleepers(self, count: int = 1, timeout_s: float = 1.0) -> None:
        """Yield to the event loop until ``count`` tasks sleep on this clock (≤ ``timeout_s`` real seconds).

        Raises ``TimeoutError`` otherwise. Use it before :meth:`advance` so the advance is not too early.
        """
        deadline = time.monotonic() + timeout_s
        while self.sleepers < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.sleepers} sleepers, expected {count}")
            await asyncio.sleep(0)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class RecordingBus(InMemoryEventBus):
    """An :class:`InMemoryEventBus` that also keeps every published event, in order, in :attr:`published`.

    Subscriptions work as on the real in-memory bus, so code under test can both publish and consume.
    """

    def __init__(self) -> None:
        super().__init__()
        self.published: list[Event] = []
        """Every event published so far (oldest first)."""

    async def publish(self, event: Event) -> None:
        """Record ``event``, then deliver it like :class:`InMemoryEventBus`."""
        self.published.append(event)
        await super().publish(event)

    def events(self, *kinds: str) -> list[Event]:
        """The published events whose kind starts with one of ``kinds`` (none: all), oldest first."""
        return [event for event in self.published if kind_matches(event_kind(event), kinds)]

    def kinds(self) -> list[str]:
        """The kinds of every published event, in order."""
        return [event_kind(event) for event in self.published]

    def clear(self) -> None:
        """Forget what was recorded."""
        self.published.clear()
