"""An in-process event bus, for single-process tools and tests.

Events are handed to subscriptions as the same (immutable) objects, without serialisation. Everything runs on the
event-loop thread; ``publish`` only appends to the matching subscriptions' buffers.
"""

from __future__ import annotations

from core.bus.base import (
    DEFAULT_QUEUE_SIZE,
    DEFAULT_READY_TIMEOUT_S,
    EventBus,
    Subscription,
    closed_error,
    kind_matches,
    matching_kinds,
)
from core.events import Event, event_kind


class InMemorySubscription(Subscription):
    """A subscription of :class:`InMemoryEventBus`; live as soon as it is created."""

    def __init__(self, bus: InMemoryEventBus, kinds: tuple[str, ...], queue_size: int) -> None:
        super().__init__(kinds, queue_size)
        self._bus = bus

    async def wait_ready(self, timeout_s: float = DEFAULT_READY_TIMEOUT_S) -> None:
        """Returns at once: an in-memory subscription receives everything published after ``subscribe()``."""

    async def _close_transport(self) -> None:
        self._bus._forget(self)


class InMemoryEventBus(EventBus):
    """A real bus inside one process (one event loop).

    ``start()`` is optional (there is nothing to connect to); after ``aclose()`` publishing raises
    :class:`core.errors.BusError`. Not thread-safe: call it from the event-loop thread only.
    """

    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        """Default buffer bound of new subscriptions (events)."""
        self._subscriptions: list[InMemorySubscription] = []
        self._closed = False

    async def start(self) -> None:
        """Nothing to connect; refuses a closed bus."""
        if self._closed:
            raise closed_error()

    async def publish(self, event: Event) -> None:
        """Buffer ``event`` in every matching subscription; returns at once."""
        if self._closed:
            raise closed_error()
        kind = event_kind(event)
        for sub in tuple(self._subscriptions):
            if kind_matches(kind, sub.kinds):
                sub._deliver(event)

    def subscribe(self, *kinds: str, queue_size: int | None = None) -> InMemorySubscription:
        """A subscription that receives every matching event published from now on."""
        if self._closed:
            raise closed_error()
        matching_kinds(kinds)
        sub = InMemorySubscription(self, kinds, self.queue_size if queue_size is None else queue_size)
        self._subscriptions.append(sub)
        return sub

    async def aclose(self) -> None:
        """Close every subscription; idempotent."""
        self._closed = True
        for sub in tuple(self._subscriptions):
            await sub.aclose()

    def _forget(self, sub: InMemorySubscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)
