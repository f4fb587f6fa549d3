"""The ZeroMQ event bus: processes on one host, no external server.

Topology::

    publisher XPUB ──connect──► [frontend XSUB]  ZmqBusProxy  [backend XPUB] ◄──connect── subscriber SUB
                                 (thread in the supervisor process)

Wire format: two frames, ``[kind (UTF-8), event JSON]``. The topic is the kind, so ZeroMQ's prefix filtering is
exactly the bus's kind-prefix filtering; it happens in the proxy.

Slow joiners are handled on both sides:

* the proxy's XSUB subscribes to *everything* as soon as it binds, so a publisher forwards every event to the
  proxy once connected. Publishers use an XPUB socket (a PUB that can also read subscriptions): ``start()``
  returns when the proxy's subscribe-all has arrived, i.e. when nothing published afterwards is dropped;
* each subscription also subscribes, last, to a private probe topic (``\\x00probe.<hex>``), and
  :meth:`ZmqSubscription.wait_ready` publishes probes until one comes back. Subscriptions travel in order on one
  pipe, so when the probe arrives the proxy applies the kind subscriptions too.

Delivery is at-most-once: the proxy drops for a subscriber whose ZeroMQ queue (``hwm`` messages) is full.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from pathlib import Path

import zmq
import zmq.asyncio
from pydantic import ValidationError

from core.bus.base import (
    DEFAULT_QUEUE_SIZE,
    DEFAULT_READY_TIMEOUT_S,
    EventBus,
    Subscription,
    closed_error,
    matching_kinds,
    not_started_error,
    stop_task,
)
from core.errors import BusError
from core.events import Event, event_from_json, event_kind, event_to_json

log = logging.getLogger(__name__)

DEFAULT_HWM = 100_000
"""ZeroMQ high-water mark (messages) of every bus socket."""

_PROBE_PREFIX = b"\x00probe."
_SUBSCRIBE_ALL = b"\x01"


def _prepare_endpoint(endpoint: str) -> None:
    """Create the parent folder of an ``ipc://`` socket path (abstract ``ipc://@name`` needs none)."""
    if endpoint.startswith("ipc://") and not endpoint.startswith("ipc://@"):
        Path(endpoint.removeprefix("ipc://")).parent.mkdir(parents=True, exist_ok=True)


class ZmqBusProxy:
    """The meeting point of the ZeroMQ bus: XSUB on ``frontend`` (publishers), XPUB on ``backend`` (subscribers).

    Runs ``zmq.proxy_steerable`` in a daemon thread of the process that owns it (the supervisor). Endpoints are
    ``ipc://path`` (parent folders are created) or ``tcp://host:port``; ``tcp://127.0.0.1:*`` picks a free port,
    readable from :attr:`frontend` / :attr:`backend` after :meth:`start`. ``start()`` and ``close()`` are
    synchronous and quick (milliseconds); from async code call them through ``asyncio.to_thread``.
    """

    def __init__(self, frontend: str, backend: str, *, hwm: int = DEFAULT_HWM) -> None:
        self.frontend = frontend
        """Where publishers connect; after ``start()``, the bound endpoint."""
        self.backend = backend
        """Where subscribers connect; after ``start()``, the bound endpoint."""
        self.hwm = hwm
        self._control_endpoint = f"inproc://voxdesk-bus-proxy-{uuid.uuid4().hex}"
        self._context: zmq.Context[zmq.Socket[bytes]] | None = None
        self._thread: threading.Thread | None = None
        self._bound = threading.Event()
        self._bind_error: Exception | None = None

    @property
    def running(self) -> bool:
        """Whether the proxy thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Bind both endpoints and start forwarding; raises :class:`BusError` when binding fails."""
        if self._thread is not None:
            return
        for endpoint in (self.frontend, self.backend):
            _prepare_endpoint(endpoint)
        self._context = zmq.Context()
        self._thread = threading.Thread(target=self._run, name="voxdesk-bus-proxy", daemon=True)
        self._thread.start()
        self._bound.wait()
        if self._bind_error is not None:
            error = self._bind_error
            self._thread.join()
            self._thread = None
            self._context.term()
            self._context = None
            raise BusError("event bus proxy could not bind", retryable=False, reason=str(error)) from error

    def close(self) -> None:
        """Stop forwarding, close the sockets and join the thread; idempotent."""
        if self._thread is None or self._context is None:
            return
        control = self._context.socket(zmq.PAIR)
        try:
            control.connect(self._control_endpoint)
            control.send(b"TERMINATE")
            self._thread.join(timeout=5.0)
        finally:
            control.close(linger=0)
        self._thread = None
        self._context.term()
        self._context = None

    def __enter__(self) -> ZmqBusProxy:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self) -> None:
        """Proxy thread: bind, subscribe to everything upstream, forward until TERMINATE."""
        assert self._context is not None
        xsub = self._context.socket(zmq.XSUB)
        xpub = self._context.socket(zmq.XPUB)
        control = self._context.socket(zmq.PAIR)
        try:
            for sock in (xsub, xpub):
                sock.setsockopt(zmq.SNDHWM, self.hwm)
                sock.setsockopt(zmq.RCVHWM, self.hwm)
            control.bind(self._control_endpoint)
            xsub.bind(self.frontend)
            xpub.bind(self.backend)
            self.frontend = xsub.getsockopt_string(zmq.LAST_ENDPOINT)
            self.backend = xpub.getsockopt_string(zmq.LAST_ENDPOINT)
            xsub.send(_SUBSCRIBE_ALL)
        except zmq.ZMQError as exc:
            self._bind_error = exc
            for sock in (xsub, xpub, control):
                sock.close(linger=0)
            self._bound.set()
            return
        self._bound.set()
        try:
            zmq.proxy_steerable(xsub, xpub, None, control)
        except zmq.ZMQError:
            log.exception("event bus proxy stopped")
        finally:
            for sock in (xsub, xpub, control):
                sock.close(linger=0)


class ZmqSubscription(Subscription):
    """A subscription of :class:`ZmqEventBus`: one SUB socket read by a task on the event loop."""

    def __init__(self, bus: ZmqEventBus, kinds: tuple[str, ...], queue_size: int) -> None:
        super().__init__(kinds, queue_size)
        self._bus = bus
        self._probe_topic = _PROBE_PREFIX + uuid.uuid4().hex.encode()
        self._ready = asyncio.Event()
        sock = bus._socket(zmq.SUB)
        for prefix in kinds or ("",):
            sock.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        sock.setsockopt(zmq.SUBSCRIBE, self._probe_topic)  # last: its echo proves the others arrived
        sock.connect(bus.backend)
        self._sock = sock
        self._reader = asyncio.get_running_loop().create_task(self._read(), name="voxdesk-bus-zmq-sub")

    async def wait_ready(self, timeout_s: float = DEFAULT_READY_TIMEOUT_S) -> None:
        """Publish probes through the bus's own publisher until one comes back (every 5 ms, backing off to
        100 ms). Raises :class:`BusError` (retryable) after ``timeout_s`` (s)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        interval = 0.005
        while not self._ready.is_set():
            if self._closed:
                raise closed_error()
            if self._error is not None:
                raise self._error
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise BusError("event bus subscription not ready in time", retryable=True, timeout_s=timeout_s)
            await self._bus._send_raw([self._probe_topic, b""])
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(interval, remaining)):
                    await self._ready.wait()
            interval = min(interval * 2, 0.1)

    async def _read(self) -> None:
        """Reader task (event-loop thread): decode frames into the buffer until closed."""
        try:
            while True:
                frames = await self._sock.recv_multipart()
                self._accept(frames)
        except asyncio.CancelledError:
            raise
        except zmq.ZMQError as exc:
            if not self._closed:
                log.warning("event bus subscriber socket failed", extra={"reason": str(exc)})
                self._fail(BusError("event bus subscriber socket failed", retryable=True))

    def _accept(self, frames: list[bytes]) -> None:
        topic = frames[0] if frames else b""
        if topic.startswith(b"\x00"):
            if topic == self._probe_topic:
                self._ready.set()
            return  # someone's probe, seen by a catch-all subscription
        event = self._decode(frames)
        if event is not None:
            self._deliver(event)

    def _decode(self, frames: list[bytes]) -> Event | None:
        try:
            if len(frames) != 2:
                raise ValueError("expected 2 frames")
            event = event_from_json(frames[1])
            if event_kind(event).encode() != frames[0]:
                raise ValueError("topic is not the event kind")
        except (ValidationError, ValueError) as exc:
            self.malformed += 1
            log.warning(
                "malformed event bus message dropped",
                extra={"frames": len(frames), "error": type(exc).__name__, "malformed": self.malformed},
            )
            return None
        return event

    async def _close_transport(self) -> None:
        await stop_task(self._reader)
        self._sock.close(linger=0)
        self._bus._forget(self)


class ZmqEventBus(EventBus):
    """Event bus over a :class:`ZmqBusProxy` (see the module docstring for topology and guarantees).

    ``frontend``/``backend`` are the proxy's endpoints (``BusSettings.zmq_frontend`` / ``zmq_backend``). Each bus
    owns a ZeroMQ context (one I/O thread); ``aclose()`` flushes unsent events for up to ``linger_ms`` (ms).
    All methods run on the event-loop thread.
    """

    def __init__(
        self,
        frontend: str,
        backend: str,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        ready_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
        hwm: int = DEFAULT_HWM,
        linger_ms: int = 1000,
    ) -> None:
        self.frontend = frontend
        self.backend = backend
        self.queue_size = queue_size
        """Default buffer bound of new subscriptions (events)."""
        self.ready_timeout_s = ready_timeout_s
        self.hwm = hwm
        self.linger_ms = linger_ms
        self._context: zmq.asyncio.Context | None = None
        self._pub: zmq.asyncio.Socket | None = None
        self._drain: asyncio.Task[None] | None = None
        self._subscriptions: list[ZmqSubscription] = []
        self._closed = False

    async def start(self) -> None:
        """Connect the publisher and wait (≤ ``ready_timeout_s``) for the proxy's subscribe-all.

        Raises :class:`BusError` (retryable) when no proxy answers in time.
        """
        if self._closed:
            raise closed_error()
        if self._pub is not None:
            return
        self._context = zmq.asyncio.Context()
        pub = self._socket(zmq.XPUB)
        pub.connect(self.frontend)
        self._pub = pub
        try:
            async with asyncio.timeout(self.ready_timeout_s):
                await pub.recv()
        except TimeoutError as exc:
            await self._release()
            raise BusError("event bus proxy not reachable", retryable=True, timeout_s=self.ready_timeout_s) from exc
        self._drain = asyncio.get_running_loop().create_task(self._drain_subscriptions(), name="voxdesk-bus-drain")

    async def publish(self, event: Event) -> None:
        """Send ``event`` as ``[kind, json]``; returns at once (ZeroMQ queues it)."""
        await self._send_raw([event_kind(event).encode(), event_to_json(event)])

    def subscribe(self, *kinds: str, queue_size: int | None = None) -> ZmqSubscription:
        """A new SUB socket filtered by ``kinds``; await ``wait_ready()`` on it before relying on delivery."""
        if self._closed:
            raise closed_error()
        if self._context is None:
            raise not_started_error()
        matching_kinds(kinds)
        sub = ZmqSubscription(self, kinds, self.queue_size if queue_size is None else queue_size)
        self._subscriptions.append(sub)
        return sub

    async def aclose(self) -> None:
        """Close subscriptions, flush the publisher (≤ ``linger_ms``), terminate the context. Idempotent."""
        self._closed = True
        for sub in tuple(self._subscriptions):
            await sub.aclose()
        await self._release()

    async def _release(self) -> None:
        if self._drain is not None:
            await stop_task(self._drain)
            self._drain = None
        if self._pub is not None:
            self._pub.close(linger=self.linger_ms)
            self._pub = None
        if self._context is not None:
            context, self._context = self._context, None
            await asyncio.to_thread(context.term)  # waits for lingering messages; off the loop

    def _socket(self, kind: int) -> zmq.asyncio.Socket:
        assert self._context is not None
        sock = self._context.socket(kind)
        sock.setsockopt(zmq.SNDHWM, self.hwm)
        sock.setsockopt(zmq.RCVHWM, self.hwm)
        return sock

    async def _send_raw(self, frames: list[bytes]) -> None:
        if self._closed:
            raise closed_error()
        if self._pub is None:
            raise not_started_error()
        try:
            await self._pub.send_multipart(frames)
        except zmq.ZMQError as exc:
            raise BusError("event bus publish failed", retryable=True, reason=str(exc)) from exc

    async def _drain_subscriptions(self) -> None:
        """Read and discard the subscription messages the proxy forwards to the publisher (event-loop task)."""
        assert self._pub is not None
        with contextlib.suppress(zmq.ZMQError):
            while True:
                await self._pub.recv()

    def _forget(self, sub: ZmqSubscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)
