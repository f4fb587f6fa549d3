"""A thread-safe hand-off from synchronous services to the asynchronous event bus.

Services (the profile store, importers) run on worker threads and must not await; they ``put`` events here and
return at once. The server's event loop drains the outbox onto the bus. Bounded: when nobody drains (a CLI
command) or the bus is down, the oldest events are dropped and counted, never blocking the caller.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

from core.bus.base import EventBus
from core.errors import BusError
from core.events import Event
from core.logging import get_logger

log = get_logger(__name__)


class EventOutbox:
    """Events waiting for the bus; ``put`` is safe from any thread."""

    def __init__(self, max_events: int = 10_000) -> None:
        self._events: deque[Event] = deque(maxlen=max_events)
        self._lock = threading.Lock()
        self._wakeup: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None
        self.dropped = 0
        """Events discarded because the outbox was full."""

    def put(self, event: Event) -> None:
        """Queue ``event`` for the bus (never blocks)."""
        with self._lock:
            if len(self._events) == self._events.maxlen:
                self.dropped += 1
            self._events.append(event)
            wakeup = self._wakeup
        if wakeup is not None:
            loop, flag = wakeup
            loop.call_soon_threadsafe(flag.set)

    def pending(self) -> int:
        """How many events wait."""
        with self._lock:
            return len(self._events)

    async def drain_forever(self, bus: EventBus) -> None:
        """Publish queued events as they come, until cancelled. Runs on the event loop."""
        flag = asyncio.Event()
        with self._lock:
            self._wakeup = (asyncio.get_running_loop(), flag)
        try:
            while True:
                await flag.wait()
                flag.clear()
                await self.flush(bus)
        finally:
            with self._lock:
                self._wakeup = None

    async def flush(self, bus: EventBus) -> int:
        """Publish everything queued now; returns how many were published. Failed events stay queued."""
        sent = 0
        while True:
            with self._lock:
                if not self._events:
                    return sent
                event = self._events[0]
            try:
                await bus.publish(event)
            except BusError:
                log.warning("bus publish failed; events kept for retry", pending=self.pending())
                return sent
            with self._lock:
                if self._events and self._events[0] is event:
                    self._events.popleft()
            sent += 1
