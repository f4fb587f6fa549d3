"""The event bus: typed events between tasks, processes and hosts, by kind.

The interface lives here; backends are imported from their modules so that only the one in use is loaded:
``core.bus.memory.InMemoryEventBus`` (one process), ``core.bus.zmq_bus.ZmqEventBus`` with
``core.bus.zmq_bus.ZmqBusProxy`` (processes on one host) and ``core.bus.redis_bus.RedisEventBus`` (several hosts).
The application shell picks one from ``BusSettings.backend``.
"""

from __future__ import annotations

from core.bus.base import (
    DEFAULT_QUEUE_SIZE,
    DEFAULT_READY_TIMEOUT_S,
    EventBus,
    Subscription,
    kind_matches,
    matching_kinds,
)
from core.bus.memory import InMemoryEventBus

__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "DEFAULT_READY_TIMEOUT_S",
    "EventBus",
    "InMemoryEventBus",
    "Subscription",
    "kind_matches",
    "matching_kinds",
]
