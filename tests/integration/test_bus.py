"""One behaviour contract for the real event buses: ZeroMQ (ipc:// and tcp:// proxy) and Redis Streams.

Redis tests use the server at 127.0.0.1:6379 (``VOXDESK_TEST_REDIS_URL`` overrides), a unique stream prefix per
test, and delete their keys afterwards; they skip only when that server is unreachable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio
import redis
import redis.asyncio as aioredis
import zmq
import zmq.asyncio

from core.bus import EventBus, Subscription
from core.bus.redis_bus import RedisEventBus, RedisSubscription
from core.bus.zmq_bus import ZmqBusProxy, ZmqEventBus
from core.errors import BusError
from core.events import (
    CallEnded,
    CallStarted,
    ComplianceAlert,
    Event,
    FinalTranscript,
    IntentDetected,
    PartialTranscript,
    ProfileChanged,
    SpeechStarted,
    Suggestion,
    event_to_json,
)
from core.ids import CallId, CustomerId, ProductId, QuestionId, ScriptId

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

REDIS_URL = os.environ.get("VOXDESK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
CALL = CallId("call-7f3a")
TIMEOUT_S = 5.0


@dataclass(frozen=True)
class BusSpec:
    """Everything needed to build a bus of one network, in this process or a spawned one."""

    backend: str
    frontend: str = ""
    backend_endpoint: str = ""
    redis_url: str = REDIS_URL
    prefix: str = ""

    @property
    def orders_across_kinds(self) -> bool:
        return self.backend == "zmq"


def build_bus(spec: BusSpec) -> EventBus:
    if spec.backend == "zmq":
        return ZmqEventBus(spec.frontend, spec.backend_endpoint)
    return RedisEventBus(spec.redis_url, stream_prefix=spec.prefix, maxlen=10_000, block_ms=1000)


def _redis_reachable() -> bool:
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


@pytest.fixture(scope="session")
def redis_ok() -> bool:
    return _redis_reachable()


def _redis_spec(redis_ok: bool, *, resp3: bool = False) -> Iterator[BusSpec]:
    """A unique stream prefix on the real server; its keys are deleted afterwards."""
    if not redis_ok:
        pytest.skip(f"Redis not reachable at {REDIS_URL} (set VOXDESK_TEST_REDIS_URL)")
    prefix = f"voxdesk-test:{uuid.uuid4().hex}"
    try:
        url = f"{REDIS_URL}?protocol=3" if resp3 else REDIS_URL
        yield BusSpec("redis", redis_url=url, prefix=prefix)
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture
def redis_spec(redis_ok: bool) -> Iterator[BusSpec]:
    yield from _redis_spec(redis_ok)


@pytest.fixture(
    params=[
        "zmq-ipc",
        "zmq-tcp",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("redis-resp3", marks=pytest.mark.redis),
    ]
)
def spec(request: pytest.FixtureRequest, tmp_path: Path, redis_ok: bool) -> Iterator[BusSpec]:
    if request.param.startswith("redis"):
        yield from _redis_spec(redis_ok, resp3=request.param == "redis-resp3")
        return
    if request.param == "zmq-ipc":
        run = tmp_path / "run"  # does not exist yet: the proxy creates it
        proxy = ZmqBusProxy(f"ipc://{run}/bus-in.sock", f"ipc://{run}/bus-out.sock")
    else:
        proxy = ZmqBusProxy("tcp://127.0.0.1:*", "tcp://127.0.0.1:*")
    proxy.start()
    try:
        yield BusSpec("zmq", frontend=proxy.frontend, backend_endpoint=proxy.backend)
    finally:
        proxy.close()


@pytest_asyncio.fixture
async def make_bus(spec: BusSpec) -> AsyncIterator[Callable[[], Awaitable[EventBus]]]:
    """Builds started buses on the test's network; closes them afterwards."""
    buses: list[EventBus] = []

    async def make() -> EventBus:
        bus = build_bus(spec)
        await bus.start()
        buses.append(bus)
        return bus

    yield make
    for bus in buses:
        await bus.aclose()


async def ready(sub: Subscription) -> Subscription:
    await sub.wait_ready(TIMEOUT_S)
    return sub


async def take(sub: Subscription, n: int, timeout_s: float = TIMEOUT_S) -> list[Event]:
    out: list[Event] = []

    async def run() -> None:
        async for event in sub:
            out.append(event)
            if len(out) == n:
                return

    await asyncio.wait_for(run(), timeout_s)
    return out


def assert_same(received: Sequence[Event], sent: Sequence[Event], *, ordered: bool) -> None:
    if ordered:
        assert list(received) == list(sent)
    else:
        assert Counter(map(event_to_json, received)) == Counter(map(event_to_json, sent))


def sample_events() -> list[Event]:
    return [
        CallStarted(call_id=CALL, direction="inbound", line="95500", caller="+8613800138000"),
        SpeechStarted(call_id=CALL, leg="customer", start_ms=240),
        PartialTranscript(call_id=CALL, leg="customer", text="我想查", start_ms=240, end_ms=800, lang="zh"),
        FinalTranscript(
            call_id=CALL,
            leg="customer",
            text="我想查一下信用卡账单",
            start_ms=240,
            end_ms=2100,
            lang="zh",
            confidence=0.91,
        ),
        IntentDetected(call_id=CALL, question_id=QuestionId("Q-bill"), label="card.bill", score=0.87, text="账单"),
        Suggestion(
            call_id=CALL,
            script_id=ScriptId("S-12"),
            script_text="您可以在手机银行查看账单。",
            product_ids=(ProductId("CC-GOLD"), ProductId("WM-R2-01")),
        ),
        ComplianceAlert(call_id=CALL, rule_id="forbidden.guarantee", severity="critical", message="no guarantees"),
        ProfileChanged(customer_id=CustomerId("C1"), change="tagged", fields=("tags",)),
        CallEnded(call_id=CALL, duration_ms=65_000, reason="normal", sip_code=200),
    ]


def partial(n: int) -> PartialTranscript:
    return PartialTranscript(call_id=CALL, leg="customer", text=f"p{n}", start_ms=0, end_ms=n)


async def test_round_trip_of_several_event_types(spec: BusSpec, make_bus: Callable[[], Awaitable[EventBus]]) -> None:
    publisher, listener = await make_bus(), await make_bus()
    sub = await ready(listener.subscribe())
    sent = sample_events()
    for event in sent:
        await publisher.publish(event)
    received = await take(sub, len(sent))
    assert_same(received, sent, ordered=spec.orders_across_kinds)
    assert {type(e) for e in received} == {type(e) for e in sent}
    assert sub.malformed == 0 and sub.dropped == 0


async def test_prefix_filtering(spec: BusSpec, make_bus: Callable[[], Awaitable[EventBus]]) -> None:
    publisher, listener = await make_bus(), await make_bus()
    speech = await ready(listener.subscribe("speech."))
    ends = await ready(listener.subscribe("call.ended", "assist.alert"))
    sent = sample_events()
    for event in sent:
        await publisher.publish(event)
    last = partial(99)
    await publisher.publish(last)  # a last speech event: nothing unexpected may arrive before it
    want_speech = [e for e in sent if e.kind.startswith("speech.")] + [last]  # type: ignore[attr-defined]
    assert_same(await take(speech, len(want_speech)), want_speech, ordered=spec.orders_across_kinds)
    want_ends = [e for e in sent if isinstance(e, CallEnded | ComplianceAlert)]
    assert_same(await take(ends, 2), want_ends, ordered=spec.orders_across_kinds)
    assert speech.pending == 0 and ends.pending == 0


async def test_two_subscribers_both_get_every_event(make_bus: Callable[[], Awaitable[EventBus]]) -> None:
    publisher, other = await make_bus(), await make_bus()
    local = await ready(publisher.subscribe("speech.partial"))
    remote = await ready(other.subscribe("speech.partial"))
    sent = [partial(n) for n in range(50)]
    for event in sent:
        await publisher.publish(event)
    assert await take(local, 50) == sent
    assert await take(remote, 50) == sent


async def test_order_within_a_publisher(spec: BusSpec, make_bus: Callable[[], Awaitable[EventBus]]) -> None:
    publisher, listener = await make_bus(), await make_bus()
    one_kind = await ready(listener.subscribe("speech.partial"))
    sent = [partial(n) for n in range(500)]
    for event in sent:
        await publisher.publish(event)
    assert await take(one_kind, 500) == sent
    if spec.orders_across_kinds:
        mixed = await ready(listener.subscribe("speech."))
        interleaved: list[Event] = []
        for n in range(100):
            interleaved.append(partial(n))
            interleaved.append(FinalTranscript(call_id=CALL, leg="agent", text=f"f{n}", start_ms=n, end_ms=n + 1))
        for mixed_event in interleaved:
            await publisher.publish(mixed_event)
        assert await take(mixed, 200) == interleaved


def _publish_in_child(spec: BusSpec, count: int) -> None:
    """Entry point of the spawned publisher process."""

    async def main() -> None:
        bus = build_bus(spec)
        await bus.start()
        for n in range(count):
            await bus.publish(FinalTranscript(call_id=CALL, leg="bot", text=f"child-{n}", start_ms=n, end_ms=n + 1))
        await bus.aclose()  # flushes

    asyncio.run(main())


async def test_event_from_another_process(make_bus: Callable[[], Awaitable[EventBus]], spec: BusSpec) -> None:
    listener = await make_bus()
    sub = await ready(listener.subscribe("speech.final"))
    child = multiprocessing.get_context("spawn").Process(target=_publish_in_child, args=(spec, 20))
    child.start()
    try:
        received = await take(sub, 20, timeout_s=30)
    finally:
        await asyncio.to_thread(child.join, 30)
    assert child.exitcode == 0
    assert [e.text for e in received] == [f"child-{n}" for n in range(20)]  # type: ignore[attr-defined]


async def _send_malformed(spec: BusSpec) -> int:
    """Put bad messages on the wire, bypassing the bus API; returns how many."""
    valid_final = event_to_json(partial(1)).replace(b"speech.partial", b"speech.final")
    if spec.backend == "zmq":
        ctx = zmq.asyncio.Context()
        raw = ctx.socket(zmq.XPUB)
        raw.connect(spec.frontend)
        await asyncio.wait_for(raw.recv(), TIMEOUT_S)  # the proxy's subscribe-all: connected
        frames: list[list[bytes]] = [
            [b"speech.final", b"{not json"],
            [b"speech.final", json.dumps({"kind": "speech.unknown"}).encode()],
            [b"speech.final"],
            [b"speech.partial", valid_final],  # topic is not the kind
        ]
        for message in frames:
            await raw.send_multipart(message)
        raw.close(linger=1000)
        await asyncio.to_thread(ctx.term)
        return len(frames)
    client = aioredis.Redis.from_url(spec.redis_url)
    entries: list[tuple[str, dict[bytes, bytes]]] = [
        ("speech.final", {b"event": b"{not json"}),
        ("speech.final", {b"event": json.dumps({"kind": "speech.unknown"}).encode()}),
        ("speech.final", {b"other": b"x"}),
        ("speech.partial", {b"event": valid_final}),  # stream is not the kind
    ]
    for kind, fields in entries:
        await client.xadd(f"{spec.prefix}:{kind}", dict(fields))  # type: ignore[arg-type]
    await client.aclose()
    return len(entries)


async def test_malformed_message_does_not_kill_the_subscription(
    spec: BusSpec, make_bus: Callable[[], Awaitable[EventBus]], caplog: pytest.LogCaptureFixture
) -> None:
    publisher, listener = await make_bus(), await make_bus()
    sub = await ready(listener.subscribe("speech."))
    with caplog.at_level(logging.WARNING, logger="core.bus"):
        bad = await _send_malformed(spec)
        good = FinalTranscript(call_id=CALL, leg="customer", text="still here", start_ms=0, end_ms=5)
        await publisher.publish(good)
        assert await take(sub, 1) == [good]
    assert sub.malformed == bad
    assert [r.getMessage() for r in caplog.records] == ["malformed event bus message dropped"] * bad
    after = partial(2)
    await publisher.publish(after)
    assert await take(sub, 1) == [after]


async def test_aclose_is_clean_and_idempotent(spec: BusSpec) -> None:
    before = asyncio.all_tasks()
    bus = build_bus(spec)
    await bus.start()
    await bus.start()  # idempotent
    sub = await ready(bus.subscribe("call."))
    other = await ready(bus.subscribe())
    iterating = asyncio.ensure_future(take(sub, 1))
    await asyncio.sleep(0.01)
    await other.aclose()
    await other.aclose()
    await bus.aclose()
    await bus.aclose()
    assert await iterating == []  # iteration ended without an error
    assert sub.closed and other.closed
    with pytest.raises(BusError) as info:
        await bus.publish(partial(1))
    assert info.value.retryable is False
    with pytest.raises(BusError):
        bus.subscribe()
    await asyncio.sleep(0)
    assert asyncio.all_tasks() - before == set()


async def test_use_before_start_is_refused(spec: BusSpec) -> None:
    bus = build_bus(spec)
    with pytest.raises(BusError):
        await bus.publish(partial(1))
    with pytest.raises(BusError):
        bus.subscribe()
    await bus.aclose()


async def test_zmq_start_without_proxy_fails_retryably(tmp_path: Path) -> None:
    bus = ZmqEventBus(f"ipc://{tmp_path}/none-in.sock", f"ipc://{tmp_path}/none-out.sock", ready_timeout_s=0.2)
    with pytest.raises(BusError) as info:
        await bus.start()
    assert info.value.retryable is True
    await bus.aclose()


async def test_zmq_proxy_refuses_a_taken_port() -> None:
    with ZmqBusProxy("tcp://127.0.0.1:*", "tcp://127.0.0.1:*") as first:
        second = ZmqBusProxy(first.frontend, "tcp://127.0.0.1:*")
        with pytest.raises(BusError):
            second.start()
        assert first.running and not second.running


async def test_redis_unreachable_fails_retryably() -> None:
    bus = RedisEventBus("redis://127.0.0.1:1/0", connect_timeout_s=0.5)
    with pytest.raises(BusError) as info:
        await bus.start()
    assert info.value.retryable is True


@pytest.mark.redis
async def test_redis_consumer_group_shares_the_work(redis_spec: BusSpec) -> None:
    spec = redis_spec
    publisher, worker_a, worker_b = build_bus(spec), build_bus(spec), build_bus(spec)
    for bus in (publisher, worker_a, worker_b):
        await bus.start()
    assert isinstance(worker_a, RedisEventBus) and isinstance(worker_b, RedisEventBus)
    try:
        a = await ready(worker_a.subscribe("speech.final", group="qa", consumer="a"))
        b = await ready(worker_b.subscribe("speech.final", group="qa", consumer="b", queue_size=5))
        fan_out = await ready(publisher.subscribe("speech.final"))
        sent = [FinalTranscript(call_id=CALL, leg="agent", text=f"t{n}", start_ms=n, end_ms=n) for n in range(40)]
        for event in sent:
            await publisher.publish(event)
        assert await take(fan_out, 40) == sent
        got: list[Event] = []
        all_in = asyncio.Event()

        async def drain(sub: Subscription) -> None:
            async for event in sub:
                got.append(event)
                if len(got) >= len(sent):
                    all_in.set()
                await asyncio.sleep(0)

        tasks = [asyncio.create_task(drain(a)), asyncio.create_task(drain(b))]
        await asyncio.wait_for(all_in.wait(), TIMEOUT_S)
        await asyncio.sleep(0.05)  # nothing is delivered twice
        for task in tasks:
            task.cancel()
        assert sorted(got, key=lambda e: e.start_ms) == sent  # type: ignore[attr-defined]
        assert a.dropped == 0 and b.dropped == 0
        client = aioredis.Redis.from_url(spec.redis_url)
        pending = await client.xpending(f"{spec.prefix}:speech.final", "qa")
        await client.aclose()
        assert pending["pending"] == 0
    finally:
        for bus in (publisher, worker_a, worker_b):
            await bus.aclose()


@pytest.mark.redis
async def test_redis_subscription_resumes_after_a_dropped_connection(redis_spec: BusSpec) -> None:
    bus = build_bus(redis_spec)
    await bus.start()
    assert isinstance(bus, RedisEventBus)
    try:
        sub = await ready(bus.subscribe("speech.partial"))
        assert isinstance(sub, RedisSubscription)
        await asyncio.sleep(0.05)  # the reader is blocked in XREAD on its own connection
        admin = aioredis.Redis.from_url(redis_spec.redis_url)
        for conn in list(bus._client.connection_pool._in_use_connections):  # type: ignore[union-attr]
            host, port = conn._writer.get_extra_info("sockname")[:2]
            await admin.client_kill_filter(_type=None, addr=f"{host}:{port}")  # only this test's connection
        await admin.aclose()
        sent = [partial(n) for n in range(3)]
        for event in sent:
            await bus.publish(event)
        assert await take(sub, 3) == sent
        assert sub.reconnects >= 1
        async with asyncio.timeout(2):  # closing right after a read must not hang (redis-py cancel race)
            await sub.aclose()
    finally:
        await bus.aclose()
