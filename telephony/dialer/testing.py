"""A fake :class:`telephony.dialer.engine.CallPlacer` for tests: scripted outcomes per number, no SIP."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from telephony.dialer.attempts import AttemptState
from telephony.dialer.engine import DialEvents, DialRequest, DialResult

__all__ = ["ScriptedPlacer"]

_ANSWERED = frozenset({AttemptState.COMPLETED, AttemptState.VOICEMAIL, AttemptState.ABANDONED})


@dataclass
class ScriptedPlacer:
    """Plays ``script[phone]`` one result per attempt (the last one repeats; unknown numbers complete). Records
    every placed call in ``placed`` (``(phone, attempt_id)``) and the most calls in flight at once in
    ``max_concurrent``; while ``hold`` is not set, answered calls wait on it (to keep channels busy)."""

    script: Mapping[str, Sequence[DialResult]] = field(default_factory=dict)
    hold: asyncio.Event | None = None
    placed: list[tuple[str, str]] = field(default_factory=list)
    in_flight: int = 0
    max_concurrent: int = 0

    async def place(self, request: DialRequest, events: DialEvents) -> DialResult:
        """Report ringing (and answered when the scripted outcome is an answered one), then return it."""
        results = self.script.get(request.phone) or [DialResult(AttemptState.COMPLETED, sip_code=200)]
        done = sum(1 for phone, _ in self.placed if phone == request.phone)
        result = results[min(done, len(results) - 1)]
        self.placed.append((request.phone, request.attempt_id))
        self.in_flight += 1
        self.max_concurrent = max(self.max_concurrent, self.in_flight)
        try:
            await events.ringing()
            if result.outcome in _ANSWERED:
                await events.answered(machine=result.outcome is AttemptState.VOICEMAIL)
                if self.hold is not None:
                    await self.hold.wait()
            return result
        finally:
            self.in_flight -= 1
