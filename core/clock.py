"""Injectable clocks: wall time for records, monotonic time for intervals.

Domain code takes a :class:`Clock` in its constructor instead of calling ``time`` directly, so tests can drive
time with :class:`core.testing.FakeClock`.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Source of time. All methods are thread-safe."""

    def now(self) -> datetime:
        """Current wall-clock time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Monotonic seconds for measuring intervals."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (s) of this clock's time."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def utcnow() -> datetime:
    """Current UTC time (timezone-aware); for code that has no clock injected, such as table defaults."""
    return datetime.now(UTC)
