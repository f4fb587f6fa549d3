"""The navigator hub on an in-memory bus: sessions only for navigator lines and only for its partition, events
that come while a session opens are handed over in order, a failing factory is contained, CallEnded closes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from agent.navigator import load_flows, shipped_flow_paths
from agent.navigator.engine import DialogEngine
from agent.navigator.hub import NavigatorHub
from agent.navigator.session import NavigatorSession
from agent.navigator.speaker import NavigatorSpeaker
from agent.navigator.testing import FakeCoreBanking, InlineExecutor, RecordingPlaySink, demo_questions
from agent.testing import ScriptedIntents, ToneSynthesizer, answer_scripts
from agent.tts.voices import LanguageVoice, VoiceSet
from core.events import BotSaid, CallAnswered, CallEnded, CallStarted, Event
from core.ids import CallId
from core.media import worker_for_call
from core.testing import FakeClock, RecordingBus

pytestmark = pytest.mark.unit

NAVIGATOR_LINE, ASSISTED_LINE = "95500", "95588"


@dataclass
class Factory:
    """Opens a session for calls on the navigator line (after ``gate`` opens, if one is set)."""

    bus: RecordingBus
    sink: RecordingPlaySink
    asked: list[str] = field(default_factory=list)
    fail_for: set[str] = field(default_factory=set)
    gate: threading.Event | None = None

    def __call__(self, started: CallStarted) -> NavigatorSession | None:
        self.asked.append(started.call_id)
        if self.gate is not None:
            assert self.gate.wait(5)
        if started.call_id in self.fail_for:
            raise RuntimeError("profile store down")
        if started.line != NAVIGATOR_LINE:
            return None
        synth = ToneSynthesizer(base_ms=20.0, ms_per_char=0.5)
        questions = demo_questions()
        engine = DialogEngine(
            load_flows(shipped_flow_paths()), banking=FakeCoreBanking(), questions=questions, lang="en",
            today=FakeClock().now().date(),
        )  # fmt: skip
        inline = InlineExecutor()
        return NavigatorSession(
            started.call_id, engine=engine, lang="en",
            speaker=NavigatorSpeaker(VoiceSet({"en": LanguageVoice("en", synth, "tone", None)}), executor=inline),
            sink=self.sink, publish=self.bus.publish, intents=ScriptedIntents(), scripts=answer_scripts([]),
            media_worker=started.media_worker or 0, clock=FakeClock(), executor=inline,
        )  # fmt: skip


@pytest.fixture
def bus() -> RecordingBus:
    return RecordingBus()


@pytest.fixture
def factory(bus: RecordingBus) -> Factory:
    return Factory(bus, RecordingPlaySink())


@asynccontextmanager
async def running(
    bus: RecordingBus, factory: Factory, partition: tuple[int, int] = (0, 1)
) -> AsyncIterator[NavigatorHub]:
    """A hub running on the bus (subscribed before it is handed out)."""
    hub = NavigatorHub(bus, factory, partition=partition)
    ready = asyncio.Event()
    task = asyncio.create_task(hub.run(ready=ready))
    await asyncio.wait_for(ready.wait(), 2)
    try:
        yield hub
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _until(condition: Callable[[], bool], timeout_s: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


def _started(call_id: str, line: str = NAVIGATOR_LINE) -> CallStarted:
    return CallStarted(call_id=CallId(call_id), direction="inbound", line=line, caller="+8613800000000", media_worker=0)


async def _publish(bus: RecordingBus, *events: Event) -> None:
    for event in events:
        await bus.publish(event)


def _said(bus: RecordingBus, call_id: str) -> list[BotSaid]:
    return [e for e in bus.published if isinstance(e, BotSaid) and e.call_id == call_id]


async def test_sessions_only_for_navigator_lines_and_events_wait_while_opening(
    bus: RecordingBus, factory: Factory
) -> None:
    factory.gate = threading.Event()
    async with running(bus, factory) as hub:
        answered = CallAnswered(call_id=CallId("nav-1"), by="bot")
        await _publish(bus, _started("nav-1"), answered, _started("assist-1", ASSISTED_LINE))
        await _until(lambda: len(factory.asked) >= 1)
        assert hub.live_calls == 0  # still opening: the answer waits for the session
        factory.gate.set()
        await _until(lambda: len(_said(bus, "nav-1")) == 2)  # the greeting: disclosure + menu
        await _until(lambda: sorted(factory.asked) == ["assist-1", "nav-1"])
        await asyncio.sleep(0.05)
        assert hub.session("assist-1") is None and hub.live_calls == 1 and hub.stats.sessions == 1
        assert factory.sink.segments() == [1, 2]

        await _publish(bus, CallEnded(call_id=CallId("nav-1"), duration_ms=10_000, reason="normal"))
        await _until(lambda: hub.live_calls == 0)
        assert hub.session("nav-1") is None and hub.stats.errors == 0


async def test_partition_and_a_failing_factory(bus: RecordingBus, factory: Factory) -> None:
    ids = [f"call-{i}" for i in range(12)]
    mine = [c for c in ids if worker_for_call(c, 2) == 1]
    assert mine and len(mine) < len(ids)
    factory.fail_for = {mine[0]}
    async with running(bus, factory, partition=(1, 2)) as hub:
        await _publish(bus, *[_started(c) for c in ids])
        await _until(lambda: len(factory.asked) == len(mine))
        await _until(lambda: hub.live_calls == len(mine) - 1)
        assert sorted(factory.asked) == sorted(mine)  # the other process's calls were never looked at
        assert hub.stats.errors == 1 and hub.session(mine[0]) is None
