"""What an event bus is: publish typed events by kind, subscribe to kind prefixes, iterate asynchronously.

The topic of an event is its kind (``"speech.final"``). A subscription names kind *prefixes*: ``"speech."`` gets
every speech event, ``"speech.final"`` only final transcripts, and no prefix at all gets everything.

Contract shared by every backend (and checked by ``tests/integration/test_bus.py``):

* ``await bus.start()`` before ``publish``/``subscribe`` (the in-memory bus also works without it);
  ``await bus.aclose()`` closes the bus and every subscription made on it; both are idempotent.
* Every method runs on the event-loop thread of the loop that called ``start()``; none of them blocks that loop.
* A subscription is live once ``await sub.wait_ready()`` has returned: every event published after that
  (by any publisher of the same bus network whose ``start()`` has returned) is delivered to it.
* Order: events of one kind from one publisher arrive in publish order. ZeroMQ and in-memory buses also keep the
  order across kinds; Redis (one stream per kind) orders across kinds by stream id, i.e. approximately.
* Each subscription buffers at most ``queue_size`` events (default :data:`DEFAULT_QUEUE_SIZE`). **Overflow
  policy: drop the oldest** buffered event and count it in :attr:`Subscription.dropped`, so a slow consumer sees
  the newest events and never stalls publishers. (Redis consumer groups apply backpressure instead; see there.)
* Messages that cannot be decoded (bad JSON, unknown kind) are logged with a static message, counted in
  :attr:`Subscription.malformed` and skipped; they never end a subscription.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType

from core.errors import BusError, InvalidInputError
from core.events import EVENT_KINDS, Event

DEFAULT_QUEUE_SIZE = 10_000
"""Default bound of a subscription's buffer (events)."""

DEFAULT_READY_TIMEOUT_S = 5.0
"""Default time (s) that :meth:`Subscription.wait_ready` and a backend's ``start()`` wait."""


def kind_matches(kind: str, prefixes: tuple[str, ...]) -> bool:
    """Whether ``kind`` is selected by ``prefixes`` (an empty tuple selects every kind)."""
    return not prefixes or any(kind.startswith(prefix) for prefix in prefixes)


def matching_kinds(prefixes: tuple[str, ...]) -> tuple[str, ...]:
    """The kinds of :data:`core.events.EVENT_KINDS` that ``prefixes`` select.

    Raises :class:`InvalidInputError` when a prefix selects no known kind (almost always a typo).
    """
    for prefix in prefixes:
        if not any(kind.startswith(prefix) for kind in EVENT_KINDS):
            raise InvalidInputError("subscription prefix matches no event kind", prefix=prefix)
    return tuple(kind for kind in EVENT_KINDS if kind_matches(kind, prefixes))


class Subscription(ABC):
    """An async iterator of the events whose kind matches :attr:`kinds`, with a bounded buffer.

    Use it on the event-loop thread that created it::

        sub = bus.subscribe("speech.")
        await sub.wait_ready()
        async for event in sub:
            ...
        await sub.aclose()   # or: async with bus.subscribe(...) as sub:

    Iteration ends (``StopAsyncIteration``) once the subscription or its bus is closed. If the transport fails
    for good, the buffered events are still handed out and then the :class:`BusError` is raised.
    """

    def __init__(self, kinds: tuple[str, ...], queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        if queue_size < 1:
            raise InvalidInputError("subscription queue_size must be at least 1", queue_size=queue_size)
        self.kinds: tuple[str, ...] = kinds
        """The kind prefixes this subscription selects (empty: all kinds)."""
        self.queue_size: int = queue_size
        """Most events buffered before the oldest is dropped."""
        self.dropped: int = 0
        """Events dropped because the buffer was full (drop-oldest overflow policy)."""
        self.malformed: int = 0
        """Wire messages skipped because they could not be decoded into an event."""
        self._buffer: deque[tuple[Event, object]] = deque()
        self._wakeup = asyncio.Event()
        self._closed = False
        self._error: BusError | None = None

    @property
    def closed(self) -> bool:
        """Whether :meth:`aclose` was called (or the bus was closed)."""
        return self._closed

    @property
    def pending(self) -> int:
        """Events buffered and not yet handed out."""
        return len(self._buffer)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            if self._error is not None:
                raise self._error
            self._wakeup.clear()
            await self._wakeup.wait()
        if self._closed:
            raise StopAsyncIteration
        event, token = self._buffer.popleft()
        await self._handed_out(token)
        return event

    @abstractmethod
    async def wait_ready(self, timeout_s: float = DEFAULT_READY_TIMEOUT_S) -> None:
        """Return once every event published from now on will be delivered here.

        Raises :class:`BusError` (retryable) when that cannot be confirmed within ``timeout_s`` (s).
        """

    async def aclose(self) -> None:
        """Stop receiving, release the transport and end iteration; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._wakeup.set()
        await self._close_transport()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # --- for backends (event-loop thread) -------------------------------------------------------------------

    @abstractmethod
    async def _close_transport(self) -> None:
        """Release sockets, tasks and registrations; called once by :meth:`aclose`."""

    def _deliver(self, event: Event, token: object = None) -> None:
        """Buffer ``event`` (drop the oldest when full); ``token`` comes back in :meth:`_handed_out`."""
        if self._closed:
            return
        if len(self._buffer) >= self.queue_size:
            self._buffer.popleft()
            self.dropped += 1
        self._buffer.append((event, token))
        self._wakeup.set()

    def _fail(self, error: BusError) -> None:
        """The transport failed for good: hand out what is buffered, then raise ``error`` to the iterator."""
        self._error = error
        self._wakeup.set()

    async def _handed_out(self, token: object) -> None:
        """Called when an event leaves the buffer (hook for acknowledgements); does nothing by default."""
        return None


class EventBus(ABC):
    """Publishes events by kind and hands out :class:`Subscription` objects.

    Backends: :class:`core.bus.memory.InMemoryEventBus` (one process), :class:`core.bus.zmq_bus.ZmqEventBus`
    (processes on one host, through a :class:`core.bus.zmq_bus.ZmqBusProxy`),
    :class:`core.bus.redis_bus.RedisEventBus` (several hosts). All methods run on the event-loop thread.
    """

    @abstractmethod
    async def start(self) -> None:
        """Connect; return once events published from now on reach the bus. Idempotent.

        Raises :class:`BusError` (retryable) when the bus cannot be reached.
        """

    @abstractmethod
    async def publish(self, event: Event) -> None:
        """Send ``event`` to every matching subscription; never waits for slow subscribers.

        Raises :class:`BusError` when the bus is not started, closed, or the transport failed.
        """

    @abstractmethod
    def subscribe(self, *kinds: str, queue_size: int | None = None) -> Subscription:
        """A new subscription to the events whose kind starts with one of ``kinds`` (none: every event).

        Call on the event-loop thread. Await :meth:`Subscription.wait_ready` before relying on delivery of
        events published right after. Raises :class:`InvalidInputError` when a prefix matches no event kind.
        """

    @abstractmethod
    async def aclose(self) -> None:
        """Close every subscription, flush what was published and release the transport. Idempotent."""

    async def __aenter__(self) -> EventBus:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


async def serve_events(
    bus: EventBus,
    kinds: tuple[str, ...],
    dispatch: Callable[[Event], Awaitable[None]],
    *,
    ready: asyncio.Event | None = None,
    ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
) -> None:
    """Subscribe to ``kinds`` and await ``dispatch`` for every event, in bus order, until cancelled; ``ready`` is
    set once the subscription is live. The subscription is closed on the way out (event loop)."""
    sub = bus.subscribe(*kinds)
    try:
        await sub.wait_ready(ready_timeout_s)
        if ready is not None:
            ready.set()
        async for event in sub:
            await dispatch(event)
    finally:
        await sub.aclose()


async def stop_task(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait until it has finished (event-loop thread).

    Cancels again every 50 ms while it runs: on Python 3.11 ``asyncio.wait_for`` (used inside redis-py) can
    swallow a cancellation that arrives just as its inner operation completes.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.05)
    if not task.cancelled():
        task.exception()  # retrieved: a reader that failed already reported it through _fail()


def not_started_error() -> BusError:
    """The error for using a bus before ``start()``."""
    return BusError("event bus is not started; call start() first", retryable=False)


def closed_error() -> BusError:
    """The error for using a bus after ``aclose()``."""
    return BusError("event bus is closed", retryable=False)
