"""The navigator hub: one :class:`~agent.navigator.session.NavigatorSession` per call on a navigator line, fed from
the event bus.

Runs on the agent process's event loop, beside the assist hub. It subscribes to call, speech and bot-audio events;
a ``CallStarted`` opens a session through the factory (the factory looks the caller up and builds the dialog:
blocking, so it runs on the hub's thread pool; it returns ``None`` for calls on other lines). Events of the call
that arrive while the session is being opened wait and are handed over, in order, as soon as it is open. Each
event goes to :meth:`NavigatorSession.handle` at once, on the loop (barge-in must not wait behind anything);
``CallEnded`` closes the session. With several agent processes, each serves the calls that
:func:`core.media.worker_for_call` maps to its index, as the assist hub does. Nothing here raises into the loop: a
failure is logged and counted, and the other calls go on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from agent.navigator.session import NavigatorSession
from core.bus.base import DEFAULT_READY_TIMEOUT_S, EventBus, serve_events
from core.events import CallEnded, CallStarted, Event, event_kind
from core.logging import get_logger
from core.media import worker_for_call

__all__ = ["NAVIGATOR_KINDS", "NavigatorHub", "NavigatorHubStats", "NavigatorSessionFactory"]

log = get_logger(__name__)

NAVIGATOR_KINDS: tuple[str, ...] = ("call.", "speech.", "bot.audio")
"""Bus kind prefixes the hub subscribes to."""


class NavigatorSessionFactory(Protocol):
    """Opens the session of a call, or returns ``None`` when the call is not on a navigator line (blocking; runs
    on a worker thread; the session is started by the hub)."""

    def __call__(self, started: CallStarted) -> NavigatorSession | None: ...


@dataclass
class NavigatorHubStats:
    """Counters of the hub, with the per-turn timings of the sessions it closed (the most recent 1000 each)."""

    sessions: int = 0
    events_in: int = 0
    errors: int = 0
    """Sessions that could not open, plus the errors counted by closed sessions."""
    intent_ms: list[float] = field(default_factory=list)
    """Final transcript → intent and dialog step done, ms."""
    first_chunk_ms: list[float] = field(default_factory=list)
    """Final transcript → first chunk of the answer sent to the media worker, ms."""
    barge_ins: int = 0
    """Barge-in pauses of closed sessions."""


@dataclass
class _Call:
    session: NavigatorSession | None = None
    backlog: list[Event] = field(default_factory=list)
    """Events that came while the session was being opened."""
    opening: bool = True


class NavigatorHub:
    """See the module docstring. ``run()`` until cancelled; ``aclose()`` closes every session."""

    def __init__(
        self,
        bus: EventBus,
        factory: NavigatorSessionFactory,
        *,
        executor: Executor | None = None,
        partition: tuple[int, int] = (0, 1),
        side_kinds: tuple[str, ...] = (),
        on_side: Callable[[Event], None] | None = None,
    ) -> None:
        """``partition`` = (index, count): this hub serves only the calls :func:`worker_for_call` maps to ``index``;
        ``executor`` runs the factory (default: a pool of two threads owned by the hub). Events of ``side_kinds``
        (e.g. ``dialer.call``: the context of a campaign call, published before the call starts) go to ``on_side``
        on the loop, in bus order with the call events, so the factory finds them when the call starts."""
        self.stats = NavigatorHubStats()
        self._bus = bus
        self._factory = factory
        self._partition = partition
        self._executor = executor or ThreadPoolExecutor(max_workers=2, thread_name_prefix="navigator")
        self._own_executor = executor is None
        self._calls: dict[str, _Call] = {}
        self._opening: set[asyncio.Task[None]] = set()
        self._side_kinds = side_kinds if on_side is not None else ()
        self._on_side = on_side

    @property
    def live_calls(self) -> int:
        """Calls with an open session."""
        return sum(1 for c in self._calls.values() if c.session is not None)

    def session(self, call_id: str) -> NavigatorSession | None:
        """The open session of a call (tests and diagnostics)."""
        call = self._calls.get(call_id)
        return call.session if call else None

    async def run(
        self, *, ready: asyncio.Event | None = None, ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S
    ) -> None:
        """Subscribe and handle events until cancelled; sets ``ready`` once the subscription is live."""

        async def handle(event: Event) -> None:
            self.stats.events_in += 1
            await self.dispatch(event)

        try:
            kinds = (*NAVIGATOR_KINDS, *self._side_kinds)
            await serve_events(self._bus, kinds, handle, ready=ready, ready_timeout_s=ready_timeout_s)
        finally:
            await self.aclose()

    async def dispatch(self, event: Event) -> None:
        """Route one bus event to its call (opening the session on ``CallStarted``)."""
        if self._on_side is not None and event_kind(event).startswith(self._side_kinds):
            self._on_side(event)
            return
        if isinstance(event, CallStarted):
            self._begin(event)
            return
        call = self._calls.get(str(getattr(event, "call_id", "")))
        if call is None:
            return
        if call.opening:
            call.backlog.append(event)
        elif call.session is not None:
            await self._deliver(call, event)

    async def aclose(self) -> None:
        """Close every open session and stop the hub's own pool."""
        for task in list(self._opening):
            task.cancel()
        await asyncio.gather(*self._opening, return_exceptions=True)
        for call_id in list(self._calls):
            call = self._calls.pop(call_id)
            if call.session is not None:
                await self._close(call.session)
        if self._own_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # --- per call ---------------------------------------------------------------------------------------------

    def _begin(self, started: CallStarted) -> None:
        """Open the call's session in the background: other calls' events must not wait for the factory."""
        index, count = self._partition
        if started.call_id in self._calls or (count > 1 and worker_for_call(started.call_id, count) != index):
            return
        call = _Call()
        self._calls[started.call_id] = call
        task = asyncio.create_task(self._open(started, call), name=f"navigator-open-{started.call_id}")
        self._opening.add(task)
        task.add_done_callback(self._opening.discard)

    async def _open(self, started: CallStarted, call: _Call) -> None:
        loop = asyncio.get_running_loop()
        try:
            session = await loop.run_in_executor(self._executor, self._factory, started)
        except Exception:  # task root: the call stays unanswered by the bot, the hub goes on
            self.stats.errors += 1
            log.exception("navigator session could not start", call_id=started.call_id)
            session = None
        if self._calls.get(started.call_id) is not call:
            return  # the hub closed meanwhile
        if session is None:
            del self._calls[started.call_id]  # not a navigator line: its later events are ignored
            return
        call.session, call.opening = session, False
        self.stats.sessions += 1
        session.start()
        backlog, call.backlog = call.backlog, []
        for event in backlog:
            if started.call_id not in self._calls:
                break
            await self._deliver(call, event)

    async def _deliver(self, call: _Call, event: Event) -> None:
        session = call.session
        assert session is not None
        if isinstance(event, CallEnded):
            self._calls.pop(str(session.call_id), None)
            await self._close(session)
            return
        session.handle(event)

    async def _close(self, session: NavigatorSession) -> None:
        try:
            await session.aclose()
        except Exception:  # task root: a session that fails to close must not stop the hub
            self.stats.errors += 1
            log.exception("navigator session did not close cleanly", call_id=session.call_id)
        s = session.stats
        self.stats.errors += s.errors
        self.stats.barge_ins += s.pauses
        _keep(self.stats.intent_ms, [t.to_intent_ms for t in s.turns])
        _keep(self.stats.first_chunk_ms, [t.to_first_chunk_ms for t in s.turns])


def _keep(values: list[float], new: list[float | None], limit: int = 1000) -> None:
    values.extend(v for v in new if v is not None)
    if len(values) > limit:
        del values[: len(values) - limit]
