"""Records the live call path into the call store: call events and final transcripts from the bus.

Runs as one task on the server's event loop. Each event is applied with ``asyncio.to_thread`` (the store is
synchronous), one at a time so that a call's events are stored in bus order. A store error is logged and the
event skipped; the task only ends when cancelled or when its subscription ends.

Events of a call whose ``CallStarted`` has not been stored yet (possible on a bus that orders kinds only
approximately, such as Redis) are parked, at most :data:`MAX_PARKED` of them, and applied right after that call's
start is stored.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from core.bus.base import DEFAULT_READY_TIMEOUT_S, EventBus, Subscription
from core.errors import NotFoundError, VoxdeskError
from core.events import CallStarted, Event, event_kind
from core.logging import get_logger
from telephony.callstore import STORED_EVENTS, CallStore

log = get_logger(__name__)

RECORDED_KINDS: tuple[str, ...] = ("call.", "speech.final")
"""Bus kind prefixes the recorder subscribes to."""

MAX_PARKED = 1000
"""Most events held back while waiting for their call's start; beyond it the oldest call's events are dropped."""


async def record_call_events(
    bus: EventBus, store: CallStore, *, ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S
) -> None:
    """Subscribe to call events and final transcripts and store them until cancelled (event-loop thread).

    Raises :class:`core.errors.BusError` when the subscription cannot be confirmed within ``ready_timeout_s`` (s).
    """
    sub = await _subscribe(bus, ready_timeout_s)
    await CallEventRecorder(store).run(sub)


async def start_call_recorder(
    bus: EventBus, store: CallStore, *, ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S
) -> asyncio.Task[None]:
    """Subscribe, wait until the subscription is live, then record in a background task (event-loop thread).

    Every event published after this returns is recorded. Raises :class:`core.errors.BusError` when the
    subscription cannot be confirmed within ``ready_timeout_s`` (s). Cancel the task to stop it.
    """
    sub = await _subscribe(bus, ready_timeout_s)
    return asyncio.create_task(CallEventRecorder(store).run(sub), name="call-recorder")


async def _subscribe(bus: EventBus, ready_timeout_s: float) -> Subscription:
    sub = bus.subscribe(*RECORDED_KINDS)
    try:
        await sub.wait_ready(ready_timeout_s)
    except BaseException:
        await sub.aclose()
        raise
    return sub


class CallEventRecorder:
    """Applies bus events to a :class:`CallStore`, parking events that arrive before their call's start."""

    def __init__(self, store: CallStore, *, max_parked: int = MAX_PARKED) -> None:
        self._store = store
        self._max_parked = max_parked
        self._parked: OrderedDict[str, list[Event]] = OrderedDict()
        self.applied = 0
        """Events that changed the store."""
        self.failed = 0
        """Events skipped because the store failed on them (or they were dropped while parked)."""

    @property
    def parked(self) -> int:
        """Events waiting for their call's start."""
        return sum(len(events) for events in self._parked.values())

    async def run(self, sub: Subscription) -> None:
        """Store every event of ``sub`` until cancelled or the subscription ends; closes ``sub`` (event loop)."""
        try:
            async for event in sub:
                await self.handle(event)
        finally:
            await sub.aclose()

    async def handle(self, event: Event) -> None:
        """Store one event (and, after a call's start, the events parked for it); never raises a store error."""
        if not isinstance(event, STORED_EVENTS):
            return
        await self._apply(event, park=True)
        if isinstance(event, CallStarted):
            for parked in self._parked.pop(event.call_id, []):
                await self._apply(parked, park=False)

    async def _apply(self, event: Event, *, park: bool) -> None:
        call_id = str(getattr(event, "call_id", ""))
        try:
            if await asyncio.to_thread(self._store.apply, event):
                self.applied += 1
        except NotFoundError:
            if park:
                self._park(call_id, event)
            else:
                self.failed += 1
        except VoxdeskError as exc:
            self.failed += 1
            log.warning("call event not stored", call_id=call_id, kind=event_kind(event), error=exc.code)
        except Exception:  # task root: one bad event must not stop the recording of every call
            self.failed += 1
            log.exception("call event not stored", call_id=call_id, kind=event_kind(event))

    def _park(self, call_id: str, event: Event) -> None:
        self._parked.setdefault(call_id, []).append(event)
        while self.parked > self._max_parked:
            dropped_call, dropped = self._parked.popitem(last=False)
            self.failed += len(dropped)
            log.warning("call events dropped: call never started", call_id=dropped_call, events=len(dropped))
