"""The assist hub: one :class:`~agent.assist.session.AssistSession` per assisted call, fed from the event bus.

A call the voice navigator hands to a human (``NavigatorHandoff``) opens a session too, through
``handoff_factory``: the handoff (transcript, question, verified identity) is stored with the call, so the agent's
panel shows it on pick-up.

Runs on the agent process's event loop. It subscribes to call events, transcripts and suggestion feedback; a
``CallStarted`` the factory accepts opens a session (the factory looks the customer up: blocking, so it runs on a
worker thread). Each call has its own queue and task, so calls never wait on each other's order, and its events
are handled one at a time, in bus order, on the hub's thread pool (classification is CPU work). A customer partial
is only pre-fetched while nothing newer of that call is waiting: a stale partial is skipped, a final never is.

What a session produces is published on the bus first (the panel sees it at once) and then kept in the
:class:`~agent.assist.store.AssistStore`. On ``CallEnded`` the post-call summary is made, published, stored and
handed to ``on_summary`` (the profile timeline). Every step is a task root: a failure is logged, the call goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from agent.assist.session import AssistSession
from agent.assist.store import AssistStore
from core.bus.base import DEFAULT_READY_TIMEOUT_S, EventBus, serve_events
from core.events import (
    CallEnded,
    CallStarted,
    CallSummarized,
    Event,
    FinalTranscript,
    LegConnected,
    NavigatorHandoff,
    PartialTranscript,
    SuggestionFeedback,
    event_kind,
)
from core.logging import get_logger
from core.media import worker_for_call
from telephony.lines import uri_user

__all__ = ["HUB_KINDS", "AssistHub", "HubStats", "SessionFactory"]

log = get_logger(__name__)
T = TypeVar("T")

HUB_KINDS: tuple[str, ...] = ("call.", "speech.partial", "speech.final", "assist.feedback", "navigator.handoff")
"""Bus kind prefixes the hub subscribes to."""


class SessionFactory(Protocol):
    """Opens the session of a call, or returns ``None`` when the call is not on an assisted line (blocking)."""

    def __call__(self, started: CallStarted) -> AssistSession | None: ...


HandoffFactory = Callable[[CallStarted, NavigatorHandoff], AssistSession | None]
"""Opens the session of a call the navigator hands to a human (blocking), or ``None``."""
Summarize = Callable[[AssistSession, CallEnded], CallSummarized | None]
_DECLINED_KEPT = 1000  # calls not assisted (yet) whose CallStarted is kept for a later handoff


@dataclass
class HubStats:
    """Counters of the hub (for metrics and the benchmark)."""

    sessions: int = 0
    events_in: int = 0
    events_out: int = 0
    partials_skipped: int = 0
    errors: int = 0
    handle_ms: list[float] = field(default_factory=list)
    """Time to handle each customer final (ms), the most recent 1000."""


@dataclass
class _Call:
    session: AssistSession
    queue: asyncio.Queue[Event]
    task: asyncio.Task[None] | None = None


class AssistHub:
    """See the module docstring. ``run()`` until cancelled; ``aclose()`` ends every call's task."""

    def __init__(
        self,
        bus: EventBus,
        factory: SessionFactory,
        store: AssistStore,
        *,
        summarize: Summarize | None = None,
        on_summary: Callable[[CallSummarized], None] | None = None,
        executor: Executor | None = None,
        partition: tuple[int, int] = (0, 1),
        handoff_factory: HandoffFactory | None = None,
    ) -> None:
        """``partition`` = (index, count): with several agent processes on one bus, this hub serves only the calls
        that :func:`core.media.worker_for_call` maps to ``index``."""
        self.stats = HubStats()
        self._partition = partition
        self._bus = bus
        self._factory = factory
        self._store = store
        self._summarize = summarize
        self._on_summary = on_summary
        self._executor = executor or ThreadPoolExecutor(max_workers=2, thread_name_prefix="assist")
        self._own_executor = executor is None
        self._calls: dict[str, _Call] = {}
        self._handoff_factory = handoff_factory
        self._declined: dict[str, CallStarted] = {}
        """``CallStarted`` of calls without a session (bounded), for a navigator handoff later in the call."""

    @property
    def live_calls(self) -> int:
        """Calls with an open session."""
        return len(self._calls)

    def session(self, call_id: str) -> AssistSession | None:
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
            await serve_events(self._bus, HUB_KINDS, handle, ready=ready, ready_timeout_s=ready_timeout_s)
        finally:
            await self.aclose()

    async def dispatch(self, event: Event) -> None:
        """Route one bus event to its call (opening the session on ``CallStarted``)."""
        call_id = str(getattr(event, "call_id", ""))
        if isinstance(event, CallStarted):
            await self._open(event)
            return
        call = self._calls.get(call_id)
        if call is None:
            if isinstance(event, NavigatorHandoff):
                await self._open_handoff(event)
            elif isinstance(event, CallEnded):
                self._declined.pop(call_id, None)
            return
        call.queue.put_nowait(event)

    async def aclose(self) -> None:
        """Cancel every call's task (their sessions are dropped without summaries) and stop the pool."""
        for call in list(self._calls.values()):
            if call.task is not None:
                call.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await call.task
        self._calls.clear()
        if self._own_executor:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # --- per call ---------------------------------------------------------------------------------------------

    async def _open(self, started: CallStarted) -> None:
        index, count = self._partition
        if started.call_id in self._calls or (count > 1 and worker_for_call(started.call_id, count) != index):
            return
        try:
            session = await self._run(self._factory, started)
        except Exception:  # task root: a call without assist is better than a dead hub
            self.stats.errors += 1
            log.exception("assist session could not start", call_id=started.call_id)
            return
        if session is None:
            self._declined[started.call_id] = started
            while len(self._declined) > _DECLINED_KEPT:
                self._declined.pop(next(iter(self._declined)))
            return
        await self._start(started, session)

    async def _open_handoff(self, handoff: NavigatorHandoff) -> None:
        """A navigator call is handed to a human: open its session and keep the handoff for the panel."""
        started = self._declined.pop(handoff.call_id, None)
        if started is None or self._handoff_factory is None:
            return
        factory = self._handoff_factory
        try:
            session = await self._run(factory, started, handoff)
        except Exception:  # task root: the transfer goes on without assist
            self.stats.errors += 1
            log.exception("assist session for a handoff could not start", call_id=handoff.call_id)
            return
        if session is None:
            return
        await self._start(started, session)
        try:
            await self._run(self._store.add_events, [handoff])
        except Exception:  # task root: the panel still gets the handoff live
            self.stats.errors += 1
            log.exception("handoff not stored", call_id=handoff.call_id)

    async def _start(self, started: CallStarted, session: AssistSession) -> None:
        customer_id = session.customer.customer_id if session.customer else None
        try:
            await self._run(
                lambda: self._store.open_call(
                    started.call_id,
                    line=started.line,
                    lang=session.lang,
                    customer_id=customer_id,
                    started_at=started.at,
                )
            )
        except Exception:  # task root: assist still works live without its stored record
            self.stats.errors += 1
            log.exception("assist call record not stored", call_id=started.call_id)
        call = _Call(session, asyncio.Queue())
        self._calls[started.call_id] = call
        self.stats.sessions += 1
        call.task = asyncio.create_task(self._serve(started.call_id, call), name=f"assist-{started.call_id}")

    async def _serve(self, call_id: str, call: _Call) -> None:
        while True:
            event = await call.queue.get()
            try:
                if isinstance(event, CallEnded):
                    await self._end(call_id, call.session, event)
                    return
                await self._handle(call, event)
            except Exception:  # task root: one bad step must not end the call's assistance
                self.stats.errors += 1
                log.exception("assist step failed", call_id=call_id, kind=event_kind(event))
                if isinstance(event, CallEnded):
                    return  # the call is gone from the hub: nothing more will come to this queue

    async def _handle(self, call: _Call, event: Event) -> None:
        session = call.session
        if isinstance(event, FinalTranscript):
            started = time.perf_counter()
            out = await self._run(session.on_final, event)
            await self._emit(out)
            if event.leg == "customer":
                _keep(self.stats.handle_ms, 1000.0 * (time.perf_counter() - started))
        elif isinstance(event, PartialTranscript):
            if not call.queue.empty():
                self.stats.partials_skipped += 1  # something newer waits: this partial is stale
                return
            await self._run(session.on_partial, event)
        elif isinstance(event, LegConnected) and event.leg == "agent":
            session.agent_uri = event.remote_uri
            user = uri_user(event.remote_uri) or ""
            await self._run(self._store.set_agent, str(session.call_id), event.remote_uri, user)
        elif isinstance(event, SuggestionFeedback):
            session.on_feedback(event)

    async def _end(self, call_id: str, session: AssistSession, ended: CallEnded) -> None:
        self._calls.pop(call_id, None)
        summary: CallSummarized | None = None
        if self._summarize is not None:
            try:
                summary = await self._run(self._summarize, session, ended)
            except Exception:  # task root: the call is over; a failed summary must not lose the close
                self.stats.errors += 1
                log.exception("post-call summary failed", call_id=call_id)
        if summary is not None:
            try:
                await self._emit([summary])
                if self._on_summary is not None:
                    await self._run(self._on_summary, summary)
            except Exception:  # task root: a summary not delivered must not lose the close either
                self.stats.errors += 1
                log.exception("post-call summary not delivered", call_id=call_id)
        await self._run(self._store.close_call, call_id)

    async def _emit(self, events: list[Event]) -> None:
        if not events:
            return
        for event in events:
            await self._bus.publish(event)
        self.stats.events_out += len(events)
        await self._run(self._store.add_events, events)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args))


def _keep(values: list[float], value: float, limit: int = 1000) -> None:
    values.append(value)
    if len(values) > limit:
        del values[: len(values) - limit]
