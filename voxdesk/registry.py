"""The explicit backend registry: settings keys → constructors. Heavy modules are imported only when chosen.

Later capabilities (ASR, TTS, embeddings, media workers) register here the same way: one entry per backend,
a lazy import inside the builder, selected by a settings key.
"""

from __future__ import annotations

from collections.abc import Callable

from core.bus.base import EventBus
from core.errors import ConfigError
from voxdesk.settings import BusSettings


def _zmq(bus: BusSettings) -> EventBus:
    from core.bus.zmq_bus import ZmqEventBus

    return ZmqEventBus(bus.zmq_frontend, bus.zmq_backend)


def _redis(bus: BusSettings) -> EventBus:
    from core.bus.redis_bus import RedisEventBus

    return RedisEventBus(bus.redis_url, stream_prefix=bus.redis_stream_prefix, maxlen=bus.redis_maxlen)


def _memory(bus: BusSettings) -> EventBus:
    from core.bus.memory import InMemoryEventBus

    return InMemoryEventBus()


BUS_BACKENDS: dict[str, Callable[[BusSettings], EventBus]] = {"zmq": _zmq, "redis": _redis, "memory": _memory}


def build_bus(bus: BusSettings) -> EventBus:
    """The event bus named by ``bus.backend`` (not started; call ``await bus.start()``)."""
    try:
        builder = BUS_BACKENDS[bus.backend]
    except KeyError as exc:
        raise ConfigError("unknown bus backend", backend=bus.backend) from exc
    return builder(bus)
