"""The backend registry builds each bus from settings, and the built bus carries events."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import redis

from core.bus.memory import InMemoryEventBus
from core.bus.redis_bus import RedisEventBus
from core.bus.zmq_bus import ZmqBusProxy, ZmqEventBus
from core.errors import ConfigError
from core.events import CustomersImported
from voxdesk.registry import build_bus
from voxdesk.settings import BusSettings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


async def round_trip(settings: BusSettings) -> None:
    bus = build_bus(settings)
    await bus.start()
    try:
        sub = bus.subscribe("profile.")
        await sub.wait_ready(5)
        sent = CustomersImported(count=3, source="test")
        await bus.publish(sent)
        assert await anext(sub) == sent
        await sub.aclose()
    finally:
        await bus.aclose()


async def test_zmq_from_settings(tmp_path: Path) -> None:
    settings = BusSettings(
        backend="zmq", zmq_frontend=f"ipc://{tmp_path}/in.sock", zmq_backend=f"ipc://{tmp_path}/out.sock"
    )
    assert isinstance(build_bus(settings), ZmqEventBus)
    proxy = ZmqBusProxy(settings.zmq_frontend, settings.zmq_backend)
    proxy.start()
    try:
        await round_trip(settings)
    finally:
        proxy.close()


@pytest.mark.redis
async def test_redis_from_settings() -> None:
    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=2).ping()
    except redis.RedisError:
        pytest.skip("Redis not reachable at 127.0.0.1:6379")
    prefix = f"voxdesk-test:{uuid.uuid4().hex[:8]}"
    settings = BusSettings(backend="redis", redis_stream_prefix=prefix)
    assert isinstance(build_bus(settings), RedisEventBus)
    try:
        await round_trip(settings)
    finally:
        client = redis.Redis.from_url(settings.redis_url)
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)


async def test_memory_and_unknown() -> None:
    assert isinstance(build_bus(BusSettings(backend="memory")), InMemoryEventBus)
    await round_trip(BusSettings(backend="memory"))
    with pytest.raises(ConfigError):
        build_bus(BusSettings.model_construct(backend="kafka"))
