"""The Redis Streams event bus: processes on several hosts, through one Redis server.

One stream per event kind, named ``{stream_prefix}:{kind}``; each entry has one field, ``event``, the event JSON.
Publishing is ``XADD … MAXLEN ~ maxlen`` (an approximate cap on each stream's length, in entries).

Plain subscriptions (fan-out: every subscription sees every matching event) read the streams selected by their
kind prefixes (expanded over :data:`core.events.EVENT_KINDS`) with ``XREAD BLOCK``, starting after the last entry
each stream had at subscription time (the ``$`` of that moment). ``wait_ready()`` returns once those positions
are fixed. Because positions are kept, a subscription that loses its connection reconnects (backing off from
50 ms to 2 s, counted in :attr:`RedisSubscription.reconnects`) and resumes without loss, unless the entries
were trimmed meanwhile. Events of one kind arrive in publish order; a batch read from several streams is merged
by stream id, so order across kinds is approximately server-time order.

Consumer groups (work sharing): ``bus.subscribe("speech.final", group="qa", consumer="worker-1")`` makes the
workers of one group share the events, each entry going to one of them (``XGROUP CREATE … $ MKSTREAM`` once, then
``XREADGROUP … >``). An entry is acknowledged (``XACK``) when the iterator hands it out, so a crashed worker
loses at most the event it was processing; entries it had read but not handed out stay in the group's pending
list (recoverable with ``XAUTOCLAIM``; not done here). Group subscriptions never drop: when the buffer is full
they stop reading (backpressure) and other workers take the work.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid

import redis.asyncio as aioredis
from pydantic import ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.typing import KeyT, StreamIdT

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

_FIELD = b"event"
_READ_BATCH = 256
_TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError)

_Entry = tuple[bytes, bytes, dict[bytes, bytes] | None]
"""(stream key, entry id, fields) of one read entry."""


def _as_bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def _entries(response: object) -> list[_Entry]:
    """Flatten an XREAD/XREADGROUP reply (RESP2 list or RESP3 dict) and sort it by stream id."""
    pairs = list(response.items()) if isinstance(response, dict) else list(response or ())  # type: ignore[call-overload]
    out: list[_Entry] = []
    for key, rows in pairs:
        for row in rows:
            # RESP2: row = (id, fields); RESP3: row = [(id, fields), ...]
            for entry in row if row and isinstance(row[0], tuple | list) else (row,):
                out.append((_as_bytes(key), _as_bytes(entry[0]), entry[1]))
    out.sort(key=lambda e: tuple(int(part) for part in e[1].split(b"-")))
    return out


class RedisSubscription(Subscription):
    """A subscription of :class:`RedisEventBus`, read by one task on the event loop (one Redis connection)."""

    def __init__(
        self,
        bus: RedisEventBus,
        kinds: tuple[str, ...],
        queue_size: int,
        *,
        group: str | None,
        consumer: str | None,
    ) -> None:
        super().__init__(kinds, queue_size)
        self._bus = bus
        self._client = bus._require_client()
        self.group = group
        """Consumer group name, or ``None`` for a plain fan-out subscription."""
        self.consumer = consumer
        """This worker's name within :attr:`group`."""
        self.reconnects = 0
        """How many times the connection was lost and retried."""
        self._kind_of = {bus.stream_key(kind).encode(): kind for kind in matching_kinds(kinds)}
        self._ids: dict[bytes, bytes] = {}
        self._ready = asyncio.Event()
        self._space = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="voxdesk-bus-redis-sub")

    async def wait_ready(self, timeout_s: float = DEFAULT_READY_TIMEOUT_S) -> None:
        """Return once the read positions are fixed (plain) or the groups exist (group mode).

        Raises :class:`BusError` (retryable) when Redis does not answer within ``timeout_s`` (s).
        """
        try:
            async with asyncio.timeout(timeout_s):
                await self._ready.wait()
        except TimeoutError as exc:
            raise BusError("event bus subscription not ready in time", retryable=True, timeout_s=timeout_s) from exc
        if self._error is not None:
            raise self._error
        if self._closed:
            raise closed_error()

    async def _run(self) -> None:
        """Reader task (event-loop thread): position, then read until cancelled; retry on connection loss."""
        backoff = 0.05
        positioned = False
        while not self._closed:
            try:
                if not positioned:
                    await self._position()
                    positioned = True
                    self._ready.set()
                await self._read_once()
                backoff = 0.05
            except _TRANSIENT as exc:
                self.reconnects += 1
                log.warning("event bus redis connection lost; retrying", extra={"error": type(exc).__name__})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            except ResponseError as exc:
                if self.group is not None and "NOGROUP" in str(exc):
                    positioned = False  # the stream or group was deleted: create it again
                    continue
                log.error("event bus redis read failed", extra={"error": type(exc).__name__})
                self._fail(BusError("event bus redis read failed", retryable=False, reason=str(exc)))
                self._ready.set()
                return

    async def _position(self) -> None:
        if self.group is not None:
            for key in self._kind_of:
                try:
                    await self._client.xgroup_create(key, self.group, id="$", mkstream=True)
                except ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
            return
        pipe = self._client.pipeline(transaction=True)
        for key in self._kind_of:
            pipe.xrevrange(key, "+", "-", count=1)
        lasts = await pipe.execute()
        self._ids = {
            key: _as_bytes(last[0][0]) if last else b"0-0" for key, last in zip(self._kind_of, lasts, strict=True)
        }

    async def _read_once(self) -> None:
        block_ms = self._bus.block_ms
        if self.group is None:
            positions: dict[KeyT, StreamIdT] = dict(self._ids.items())
            response: object = await self._client.xread(positions, count=_READ_BATCH, block=block_ms)
        else:
            while len(self._buffer) >= self.queue_size:  # backpressure instead of dropping
                self._space.clear()
                await self._space.wait()
            count = min(_READ_BATCH, self.queue_size - len(self._buffer))
            streams: dict[KeyT, StreamIdT] = dict.fromkeys(self._kind_of, ">")
            response = await self._client.xreadgroup(
                self.group, self.consumer or "", streams, count=count, block=block_ms
            )
        for key, entry_id, fields in _entries(response):
            if self.group is None:
                self._ids[key] = entry_id
            event = self._decode(key, fields)
            if event is not None:
                self._deliver(event, (key, entry_id) if self.group is not None else None)
            elif self.group is not None:
                await self._ack((key, entry_id))

    def _decode(self, key: bytes, fields: dict[bytes, bytes] | None) -> Event | None:
        try:
            raw = (fields or {}).get(_FIELD)
            if raw is None:
                raise ValueError("entry has no event field")
            event = event_from_json(raw)
            if event_kind(event) != self._kind_of.get(key):
                raise ValueError("stream is not the event kind")
        except (ValidationError, ValueError) as exc:
            self.malformed += 1
            log.warning(
                "malformed event bus message dropped",
                extra={"stream": key.decode(errors="replace"), "error": type(exc).__name__},
            )
            return None
        return event

    async def _handed_out(self, token: object) -> None:
        self._space.set()
        if isinstance(token, tuple):
            await self._ack(token)

    async def _ack(self, token: tuple[bytes, bytes]) -> None:
        if self.group is None:
            return
        try:
            await self._client.xack(token[0], self.group, token[1])
        except RedisError as exc:  # the entry stays pending in the group; never lose the event in hand
            log.warning("event bus redis ack failed", extra={"error": type(exc).__name__})

    async def _close_transport(self) -> None:
        self._ready.set()
        await stop_task(self._task)
        self._bus._forget(self)


class RedisEventBus(EventBus):
    """Event bus on Redis Streams (see the module docstring for layout and guarantees).

    ``url`` is ``BusSettings.redis_url``; ``stream_prefix`` and ``maxlen`` (entries, approximate) come from the
    same settings. ``block_ms`` (ms) bounds each blocking read; the socket timeout is ``block_ms`` plus
    ``connect_timeout_s`` (s), so an idle subscription is never mistaken for a dead connection. All methods run
    on the event-loop thread.
    """

    def __init__(
        self,
        url: str,
        *,
        stream_prefix: str = "voxdesk:events",
        maxlen: int = 100_000,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        block_ms: int = 5000,
        connect_timeout_s: float = DEFAULT_READY_TIMEOUT_S,
    ) -> None:
        self.url = url
        self.stream_prefix = stream_prefix
        self.maxlen = maxlen
        self.queue_size = queue_size
        """Default buffer bound of new subscriptions (events)."""
        self.block_ms = block_ms
        self.connect_timeout_s = connect_timeout_s
        self._client: aioredis.Redis | None = None
        self._subscriptions: list[RedisSubscription] = []
        self._closed = False

    def stream_key(self, kind: str) -> str:
        """The Redis key of the stream that carries ``kind``."""
        return f"{self.stream_prefix}:{kind}"

    async def start(self) -> None:
        """Connect and ``PING``; raises :class:`BusError` (retryable) when Redis is unreachable."""
        if self._closed:
            raise closed_error()
        if self._client is not None:
            return
        client = aioredis.Redis.from_url(
            self.url,
            socket_connect_timeout=self.connect_timeout_s,
            socket_timeout=self.block_ms / 1000 + self.connect_timeout_s,  # longer than a blocking read
        )
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise BusError("event bus redis not reachable", retryable=True, reason=type(exc).__name__) from exc
        self._client = client

    async def publish(self, event: Event) -> None:
        """``XADD`` ``event`` to its kind's stream, capped at about ``maxlen`` entries (one round trip).

        Raises :class:`BusError`: retryable for connection problems, not retryable for other Redis errors.
        """
        if self._closed:
            raise closed_error()
        client = self._require_client()
        key = self.stream_key(event_kind(event))
        try:
            await client.xadd(key, {_FIELD: event_to_json(event)}, maxlen=self.maxlen, approximate=True)
        except _TRANSIENT as exc:
            raise BusError("event bus redis publish failed", retryable=True, reason=type(exc).__name__) from exc
        except RedisError as exc:
            raise BusError("event bus redis publish failed", retryable=False, reason=str(exc)) from exc

    def subscribe(
        self,
        *kinds: str,
        queue_size: int | None = None,
        group: str | None = None,
        consumer: str | None = None,
    ) -> RedisSubscription:
        """A subscription to the streams of the kinds selected by ``kinds``.

        With ``group``, join that consumer group as ``consumer`` (default: ``<hostname>-<pid>-<random>``) and
        share the events with the group's other consumers.
        """
        if self._closed:
            raise closed_error()
        if group is not None and consumer is None:
            consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        sub = RedisSubscription(
            self,
            kinds,
            self.queue_size if queue_size is None else queue_size,
            group=group,
            consumer=consumer,
        )
        self._subscriptions.append(sub)
        return sub

    async def aclose(self) -> None:
        """Close every subscription and the connection pool; idempotent."""
        self._closed = True
        for sub in tuple(self._subscriptions):
            await sub.aclose()
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def _require_client(self) -> aioredis.Redis:
        if self._client is None:
            raise not_started_error()
        return self._client

    def _forget(self, sub: RedisSubscription) -> None:
        if sub in self._subscriptions:
            self._subscriptions.remove(sub)
