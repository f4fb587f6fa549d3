"""The assist hub on an in-memory bus with the real assist store on SQLite: sessions per assisted call, cards on the
bus and in the store, the agent's user from the leg URI, summaries and close at the end, failures contained,
partitions, and stale partials skipped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

import agent.assist.tables  # noqa: F401  (registers the assist tables on the shared Base)
from agent.assist.hub import AssistHub
from agent.assist.session import AssistSession
from agent.assist.store import AssistCall, AssistStore
from agent.assist.suggest import SuggestionEngine
from agent.testing import ScriptedIntents, answer_scripts, sample_customer
from core.db import Base
from core.errors import NotFoundError, StorageError
from core.events import (
    CallEnded,
    CallStarted,
    CallSummarized,
    Event,
    FinalTranscript,
    IntentDetected,
    LegConnected,
    NavigatorHandoff,
    PartialTranscript,
    Suggestion,
    SuggestionFeedback,
)
from core.ids import CallId, CustomerId, QuestionId, UserId
from core.media import worker_for_call
from core.testing import FakeClock, RecordingBus
from knowledge.testing import FakeProductCatalog, FakeQuestionLibrary, sample_products, sample_questions

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ASSISTED = "95500"
LOST = "cards.report_lost_card"


def _engine(intents: ScriptedIntents) -> SuggestionEngine:
    questions = sample_questions()
    return SuggestionEngine(
        intents=intents,
        library=FakeQuestionLibrary(questions),
        scripts=answer_scripts(questions),
        catalog=FakeProductCatalog(sample_products()),
    )


@dataclass
class Factory:
    """Opens a session for calls on the assisted line; records every call it was asked about."""

    engine: SuggestionEngine
    asked: list[CallId] = field(default_factory=list)
    fail_for: set[str] = field(default_factory=set)

    def __call__(self, started: CallStarted) -> AssistSession | None:
        self.asked.append(started.call_id)
        if started.call_id in self.fail_for:
            raise RuntimeError("profile store down")
        if started.line != ASSISTED:
            return None
        return AssistSession(started.call_id, engine=self.engine, lang="en", customer=sample_customer(tier="platinum"))

    def handoff(self, started: CallStarted, handoff: NavigatorHandoff) -> AssistSession | None:
        self.asked.append(started.call_id)
        customer = sample_customer() if handoff.identity_verified else None
        return AssistSession(started.call_id, engine=self.engine, lang="en", customer=customer)


@dataclass
class Summaries:
    """``summarize`` and ``on_summary`` of the hub, recording what they got."""

    fail: bool = False
    fail_write: bool = False
    summarized: list[tuple[AssistSession, CallEnded]] = field(default_factory=list)
    written: list[CallSummarized] = field(default_factory=list)

    def summarize(self, session: AssistSession, ended: CallEnded) -> CallSummarized | None:
        self.summarized.append((session, ended))
        if self.fail:
            raise RuntimeError("summariser broke")
        said = " / ".join(u.text for u in session.log.utterances)
        return CallSummarized(call_id=session.call_id, customer_id=CustomerId("C-TEST-0001"), text=said)

    def on_summary(self, summary: CallSummarized) -> None:
        if self.fail_write:
            raise RuntimeError("timeline store down")
        self.written.append(summary)


@pytest.fixture
def intents() -> ScriptedIntents:
    return ScriptedIntents([("lost", LOST, 0.9), ("deposit rate", "deposits.time_deposit_rates", 0.8)])


@pytest.fixture
def factory(intents: ScriptedIntents) -> Factory:
    return Factory(_engine(intents))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AssistStore]:
    # a file, so that the hub's worker thread and the test's reads each get their own connection
    engine = create_engine(f"sqlite:///{tmp_path / 'assist.db'}")
    Base.metadata.create_all(engine)
    try:
        yield AssistStore(sessionmaker(engine, expire_on_commit=False), clock=FakeClock(T0))
    finally:
        engine.dispose()


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="assist-test")
    try:
        yield pool
    finally:
        pool.shutdown(wait=True)


@pytest.fixture
def summaries() -> Summaries:
    return Summaries()


@pytest.fixture
def bus() -> RecordingBus:
    return RecordingBus()


@pytest.fixture
def make_hub(
    bus: RecordingBus, factory: Factory, store: AssistStore, executor: ThreadPoolExecutor, summaries: Summaries
) -> Callable[..., AssistHub]:
    def make(partition: tuple[int, int] = (0, 1)) -> AssistHub:
        return AssistHub(
            bus,
            factory,
            store,
            summarize=summaries.summarize,
            on_summary=summaries.on_summary,
            executor=executor,
            partition=partition,
            handoff_factory=factory.handoff,
        )

    return make


@pytest.fixture
async def hub(make_hub: Callable[..., AssistHub]) -> AsyncIterator[AssistHub]:
    """A hub running on the bus (subscribed before the fixture returns)."""
    running = make_hub()
    ready = asyncio.Event()
    task = asyncio.create_task(running.run(ready=ready))
    await asyncio.wait_for(ready.wait(), 2)
    try:
        yield running
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _until(condition: Callable[[], bool], timeout_s: float = 3.0) -> None:
    """Yield (real time, the hub works on threads) until ``condition`` holds; fail after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


def _stored(store: AssistStore, call_id: str) -> AssistCall | None:
    """The call's assist record, ``None`` while the hub has not opened it yet."""
    try:
        return store.get_call(call_id)
    except NotFoundError:
        return None


def _ended_in(store: AssistStore, call_id: str) -> bool:
    call = _stored(store, call_id)
    return call is not None and call.ended_at is not None


def _started(call_id: str, line: str = ASSISTED) -> CallStarted:
    return CallStarted(at=T0, call_id=CallId(call_id), direction="inbound", line=line, caller="+8613800000000")


def _agent_leg(call_id: str) -> LegConnected:
    return LegConnected(call_id=CallId(call_id), leg="agent", remote_uri='"Agent 101" <sip:agent101@pbx.bank.local>')


def _final(call_id: str, text: str, at_ms: int, leg: str = "customer") -> FinalTranscript:
    return FinalTranscript(call_id=CallId(call_id), leg=leg, text=text, start_ms=at_ms - 1_000, end_ms=at_ms)


def _partial(call_id: str, text: str, at_ms: int) -> PartialTranscript:
    return PartialTranscript(call_id=CallId(call_id), leg="customer", text=text, start_ms=at_ms - 500, end_ms=at_ms)


def _ended(call_id: str) -> CallEnded:
    return CallEnded(call_id=CallId(call_id), duration_ms=60_000, reason="normal")


def _cards(bus: RecordingBus, call_id: str | None = None) -> list[Suggestion]:
    return [e for e in bus.events("assist.suggestion") if isinstance(e, Suggestion) and call_id in (None, e.call_id)]


async def _publish(bus: RecordingBus, *events: Event) -> None:
    for event in events:
        await bus.publish(event)


# --- an assisted call -----------------------------------------------------------------------------------------


async def test_customer_final_puts_a_card_on_the_bus_and_in_the_store(
    hub: AssistHub, bus: RecordingBus, store: AssistStore
) -> None:
    await _publish(bus, _started("call-a"), _agent_leg("call-a"), _final("call-a", "I lost my card", 3_000))
    await _until(lambda: len(hub.stats.handle_ms) == 1)  # the final is fully handled: published, then stored

    card = _cards(bus)[0]
    assert card.call_id == "call-a" and card.question_id == LOST and card.product_ids == ("T-CC-PLAT",)
    out = [e for e in bus.published if isinstance(e, IntentDetected | Suggestion)]
    assert [type(e) for e in out] == [IntentDetected, Suggestion]  # intent first, as the session made them
    assert store.suggestion(card.suggestion_id) == card
    assert [type(e) for e in store.events("call-a")] == [IntentDetected, Suggestion]

    call = store.get_call("call-a")
    assert (call.line, call.lang, call.customer_id, call.started_at) == (ASSISTED, "en", "C-TEST-0001", T0)
    assert call.agent_user == "agent101" and call.agent_uri.endswith("<sip:agent101@pbx.bank.local>")
    session = hub.session("call-a")
    assert session is not None and session.agent_uri == call.agent_uri
    assert hub.live_calls == 1 and hub.stats.sessions == 1 and hub.stats.errors == 0
    assert hub.stats.events_out == 2 and len(hub.stats.handle_ms) == 1


async def test_agent_final_is_not_timed_and_feedback_reaches_the_session(
    hub: AssistHub, bus: RecordingBus, store: AssistStore
) -> None:
    await _publish(bus, _started("call-f"), _final("call-f", "deposit rate please", 2_000))
    await _until(lambda: len(_cards(bus)) == 1)
    card = _cards(bus)[0]
    feedback = SuggestionFeedback(
        call_id=card.call_id, suggestion_id=card.suggestion_id, action="dismissed", user_id=UserId("agent101")
    )
    await _publish(bus, feedback, _final("call-f", "let me check", 3_000, leg="agent"))
    session = hub.session("call-f")
    assert session is not None
    await _until(lambda: len(session.log.utterances) == 2)
    assert session.visible() == [] and session.log.dismissed == {card.suggestion_id}
    assert len(hub.stats.handle_ms) == 1  # only customer finals are timed


async def test_call_on_a_line_without_assist_gets_nothing(
    hub: AssistHub, bus: RecordingBus, store: AssistStore, factory: Factory
) -> None:
    await _publish(bus, _started("call-ivr", line="12345"), _final("call-ivr", "I lost my card", 1_000))
    # a later assisted call's card proves that the hub has handled everything before it
    await _publish(bus, _started("call-b"), _final("call-b", "I lost my card", 1_000))
    await _until(lambda: len(_cards(bus)) == 1)

    assert factory.asked == ["call-ivr", "call-b"]
    assert _cards(bus, "call-ivr") == [] and hub.session("call-ivr") is None
    assert [c.call_id for c in store.recent()] == ["call-b"]
    assert hub.live_calls == 1 and hub.stats.errors == 0


async def test_call_ended_summarizes_and_closes(
    hub: AssistHub, bus: RecordingBus, store: AssistStore, summaries: Summaries
) -> None:
    await _publish(bus, _started("call-e"), _final("call-e", "I lost my card", 1_000))
    await _until(lambda: len(_cards(bus)) == 1)
    await _publish(bus, _ended("call-e"))
    await _until(lambda: _ended_in(store, "call-e"))

    summary = CallSummarized(call_id=CallId("call-e"), customer_id=CustomerId("C-TEST-0001"), text="I lost my card")
    published = [e for e in bus.published if isinstance(e, CallSummarized)]
    assert [(s.call_id, s.text) for s in published] == [(summary.call_id, summary.text)]
    assert summaries.written == published
    assert len(summaries.summarized) == 1 and summaries.summarized[0][1].call_id == "call-e"
    assert store.get_call("call-e").summary == "I lost my card"
    assert store.live() == [] and hub.session("call-e") is None and hub.live_calls == 0

    # events after the end are dropped: the call has no session any more
    await _publish(bus, _final("call-e", "I lost my card again", 90_000))
    await _publish(bus, _started("call-next"), _final("call-next", "I lost my card", 1_000))
    await _until(lambda: len(_cards(bus)) == 2)
    assert len(_cards(bus, "call-e")) == 1


async def test_a_failing_summary_still_closes_the_call(
    hub: AssistHub, bus: RecordingBus, store: AssistStore, summaries: Summaries
) -> None:
    summaries.fail = True
    await _publish(bus, _started("call-s"), _final("call-s", "I lost my card", 1_000), _ended("call-s"))
    await _until(lambda: _ended_in(store, "call-s"))
    assert hub.stats.errors == 1 and summaries.written == []
    assert [e for e in bus.published if isinstance(e, CallSummarized)] == []


def _call_tasks(call_id: str) -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == f"assist-{call_id}" and not t.done()]


async def test_a_failing_timeline_write_still_closes_the_call(
    hub: AssistHub, bus: RecordingBus, store: AssistStore, summaries: Summaries
) -> None:
    summaries.fail_write = True
    await _publish(bus, _started("call-t"), _final("call-t", "I lost my card", 1_000), _ended("call-t"))
    await _until(lambda: _ended_in(store, "call-t"))
    assert hub.stats.errors == 1
    assert [e.call_id for e in bus.published if isinstance(e, CallSummarized)] == ["call-t"]  # still published
    assert store.get_call("call-t").summary == "I lost my card"
    await _until(lambda: not _call_tasks("call-t"))  # the call's task ended: nothing left waiting


async def test_a_failing_close_ends_the_calls_task(
    hub: AssistHub, bus: RecordingBus, store: AssistStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_close(call_id: str, *, ended_at: datetime | None = None) -> None:
        raise StorageError("database operation failed")

    monkeypatch.setattr(store, "close_call", broken_close)
    await _publish(bus, _started("call-c"), _final("call-c", "I lost my card", 1_000), _ended("call-c"))
    await _until(lambda: hub.stats.errors == 1)
    await _until(lambda: not _call_tasks("call-c"))
    assert hub.live_calls == 0


async def test_a_factory_that_raises_does_not_kill_the_hub(
    hub: AssistHub, bus: RecordingBus, store: AssistStore, factory: Factory
) -> None:
    factory.fail_for.add("call-broken")
    await _publish(bus, _started("call-broken"), _final("call-broken", "I lost my card", 1_000))
    await _publish(bus, _started("call-ok"), _final("call-ok", "I lost my card", 1_000))
    await _until(lambda: len(_cards(bus)) == 1)

    assert hub.stats.errors == 1
    assert _cards(bus)[0].call_id == "call-ok" and hub.session("call-broken") is None
    assert [c.call_id for c in store.recent()] == ["call-ok"]


async def test_a_second_call_started_for_the_same_call_is_ignored(
    hub: AssistHub, bus: RecordingBus, factory: Factory
) -> None:
    await _publish(bus, _started("call-dup"), _started("call-dup"), _final("call-dup", "I lost my card", 1_000))
    await _until(lambda: len(_cards(bus)) == 1)
    assert factory.asked == ["call-dup"] and hub.stats.sessions == 1


# --- partitions -----------------------------------------------------------------------------------------------


def _calls_of(index: int, count: int, n: int) -> list[str]:
    found = [f"call-p{i}" for i in range(200) if worker_for_call(f"call-p{i}", count) == index]
    return found[:n]


async def test_partition_serves_only_its_own_calls(make_hub: Callable[..., AssistHub], factory: Factory) -> None:
    mine, theirs = _calls_of(1, 2, 2), _calls_of(0, 2, 2)
    hub = make_hub(partition=(1, 2))
    try:
        for call_id in [mine[0], theirs[0], mine[1], theirs[1]]:
            await hub.dispatch(_started(call_id))
        assert factory.asked == mine  # the other partition's calls never reach the factory
        assert hub.live_calls == 2 and {c for c in mine if hub.session(c) is not None} == set(mine)
        assert all(hub.session(c) is None for c in theirs)
    finally:
        await hub.aclose()


async def test_two_partitions_together_serve_every_call_once(
    make_hub: Callable[..., AssistHub], factory: Factory
) -> None:
    hubs = [make_hub(partition=(0, 2)), make_hub(partition=(1, 2))]
    calls = [f"call-q{i}" for i in range(8)]
    try:
        for call_id in calls:
            for h in hubs:
                await h.dispatch(_started(call_id))
        assert sorted(factory.asked) == sorted(calls)
        assert sum(h.live_calls for h in hubs) == len(calls)
    finally:
        for h in hubs:
            await h.aclose()


# --- partials -------------------------------------------------------------------------------------------------


async def test_stale_partials_are_skipped_when_newer_events_wait(
    make_hub: Callable[..., AssistHub], bus: RecordingBus, intents: ScriptedIntents
) -> None:
    hub = make_hub()
    try:
        await hub.dispatch(_started("call-p"))
        # queued together before the call's task runs: both partials are stale, the final never is
        await hub.dispatch(_partial("call-p", "I", 500))
        await hub.dispatch(_partial("call-p", "I lost", 900))
        await hub.dispatch(_final("call-p", "I lost my card", 1_500))
        await _until(lambda: len(_cards(bus)) == 1)
        assert hub.stats.partials_skipped == 2
        assert intents.calls == ["I lost my card"]
    finally:
        await hub.aclose()


async def test_a_current_partial_is_prefetched_and_reused_by_its_final(
    make_hub: Callable[..., AssistHub], bus: RecordingBus, intents: ScriptedIntents
) -> None:
    hub = make_hub()
    try:
        await hub.dispatch(_started("call-r"))
        await hub.dispatch(_partial("call-r", "I lost my card", 900))
        await _until(lambda: intents.calls == ["I lost my card"])
        await hub.dispatch(_final("call-r", "I lost my card.", 1_500))
        await _until(lambda: len(_cards(bus)) == 1)
        session = hub.session("call-r")
        assert session is not None and session.prefetch_hits == 1
        assert intents.calls == ["I lost my card"] and hub.stats.partials_skipped == 0
    finally:
        await hub.aclose()


async def test_navigator_handoff_opens_a_session_and_keeps_the_handoff_for_the_panel(
    hub: AssistHub, bus: RecordingBus, store: AssistStore, factory: Factory
) -> None:
    handoff = NavigatorHandoff(
        call_id=CallId("call-nav"), skill_group="cards", reason="caller_asked_for_agent",
        intent=QuestionId(LOST), intent_confidence=0.93, identity_verified=True,
        transcript=[("bot", "How can I help?"), ("caller", "I lost my card, get me a person")],
        slots=[("card_last4", "****")],
    )  # fmt: skip
    await _publish(bus, _started("call-nav", line="12345"), _final("call-nav", "I lost my card", 1_000))
    assert hub.session("call-nav") is None  # a navigator call: no assist until it is handed over
    await _publish(bus, handoff, _agent_leg("call-nav"), _final("call-nav", "I lost my card", 9_000))
    await _until(lambda: len(_cards(bus, "call-nav")) == 1)

    session = hub.session("call-nav")
    assert session is not None and session.customer is not None
    stored = store.events("call-nav", kinds=("navigator.handoff",))
    assert stored == [handoff]
    assert _stored(store, "call-nav") is not None and hub.stats.errors == 0


async def test_handoff_of_an_unknown_or_ended_call_is_ignored(hub: AssistHub, bus: RecordingBus) -> None:
    handoff = NavigatorHandoff(call_id=CallId("call-gone"), skill_group="general", reason="x")
    await _publish(bus, _started("call-gone", line="12345"), _ended("call-gone"), handoff)
    await _publish(bus, _started("call-b"), _final("call-b", "I lost my card", 1_000))
    await _until(lambda: len(_cards(bus)) == 1)
    assert hub.session("call-gone") is None and hub.stats.errors == 0
