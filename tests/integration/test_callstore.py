"""The call store on real SQLite and PostgreSQL: a scripted call, caller → customer, idempotency, retention,
the bus recorder, and the ``voxdesk calls`` commands."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.bus.memory import InMemoryEventBus
from core.errors import NotFoundError, StorageError
from core.events import (
    CallAnswered,
    CallEnded,
    CallStarted,
    CallTransferred,
    DtmfReceived,
    Event,
    FinalTranscript,
    LegConnected,
    PartialTranscript,
    SpeechStarted,
)
from core.ids import CallId, CustomerId
from profiles.models import Customer
from telephony.callstore import CallStore
from voxdesk.call_recorder import CallEventRecorder, start_call_recorder
from voxdesk.container import Container

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CALLER = "+8613800138000"


def at(ms: int) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def scripted_call(call_id: str = "call-1", caller: str | None = CALLER, start: datetime = T0) -> list[Event]:
    """An assisted inbound call: bot answers, customer asks, presses 1, agent joins, hangup with a recording."""
    cid = CallId(call_id)
    shift = start - T0
    events: list[Event] = [
        CallStarted(call_id=cid, direction="inbound", line="95588", caller=caller, at=at(0)),
        LegConnected(call_id=cid, leg="customer", remote_uri=f"sip:{caller}@carrier.example", at=at(40)),
        CallAnswered(call_id=cid, by="bot", at=at(50)),
        SpeechStarted(call_id=cid, leg="customer", start_ms=600, at=at(600)),
        PartialTranscript(call_id=cid, leg="customer", text="我想查", start_ms=600, end_ms=1200, at=at(1200)),
        FinalTranscript(
            call_id=cid,
            leg="customer",
            text="我想查询信用卡账单",
            start_ms=600,
            end_ms=2100,
            lang="zh",
            confidence=0.91,
            at=at(2300),
        ),
        DtmfReceived(call_id=cid, digit="1", duration_ms=120, at=at(3000)),
        FinalTranscript(call_id=cid, leg="bot", text="正在为您转接人工", start_ms=3200, end_ms=4500, at=at(4600)),
        CallTransferred(call_id=cid, skill_group="cards", at=at(4700)),
        LegConnected(call_id=cid, leg="agent", remote_uri="sip:agent7@pbx.example", at=at(6000)),
        FinalTranscript(
            call_id=cid,
            leg="agent",
            text="您好，请问有什么可以帮您",
            start_ms=6500,
            end_ms=8000,
            lang="zh",
            at=at(8200),
        ),
        CallEnded(
            call_id=cid,
            duration_ms=61_950,
            reason="normal",
            sip_code=200,
            recording_path=f"var/recordings/{call_id}.wav",
            at=at(62_000),
        ),
    ]
    return [e.model_copy(update={"at": e.at + shift}) for e in events]


@pytest.fixture
def store(container: Container) -> CallStore:
    container.profiles.upsert_many(
        [Customer(customer_id=CustomerId("C1"), name="王芳", phones=(CALLER,), tier="gold")], source="test"
    )
    return container.calls


def test_scripted_call_is_recorded_with_customer(store: CallStore) -> None:
    changed = [store.apply(e, media_worker="worker-0") for e in scripted_call()]
    # SpeechStarted, PartialTranscript and CallTransferred are not stored.
    assert changed == [True, True, True, False, False, True, True, True, False, True, True, True]

    call = store.get("call-1")
    assert (call.direction, call.line, call.caller_e164, call.customer_id) == ("inbound", "95588", CALLER, "C1")
    assert (call.started_at, call.answered_at, call.ended_at) == (T0, at(50), at(62_000))
    assert (call.duration_ms, call.end_reason, call.sip_code) == (61_950, "normal", 200)
    assert (call.media_worker, call.lang, call.recording_path) == ("worker-0", "zh", "var/recordings/call-1.wav")
    assert [(leg.leg, leg.connected_at, leg.ended_at) for leg in call.legs] == [
        ("customer", at(40), at(62_000)),
        ("agent", at(6000), at(62_000)),
    ]
    assert [(u.leg, u.start_ms, u.end_ms, u.text) for u in store.utterances("call-1")] == [
        ("customer", 600, 2100, "我想查询信用卡账单"),
        ("bot", 3200, 4500, "正在为您转接人工"),
        ("agent", 6500, 8000, "您好，请问有什么可以帮您"),
    ]
    first = store.utterances("call-1")[0]
    assert first.lang == "zh" and first.confidence == pytest.approx(0.91)
    assert [(d.digit, d.at_ms, d.duration_ms) for d in store.dtmf("call-1")] == [("1", 3000, 120)]
    detail = store.detail("call-1")
    assert len(detail.utterances) == 3 and len(detail.dtmf) == 1 and detail.customer_id == "C1"


def test_replayed_events_are_stored_once(store: CallStore) -> None:
    events = scripted_call()
    for e in events:
        store.apply(e)
    before = store.detail("call-1")
    assert not any(store.apply(e) for e in events)
    # A late, conflicting repeat of the hang-up does not rewrite the call either.
    late = CallEnded(call_id=CallId("call-1"), duration_ms=1, reason="failed", sip_code=500, at=at(90_000))
    assert store.apply(late) is False
    assert store.detail("call-1") == before
    assert store.list().total == 1


def test_caller_lookup_misses_and_failures(store: CallStore, container: Container) -> None:
    store.apply(CallStarted(call_id=CallId("anon"), direction="inbound", line="95500", caller=None, at=T0))
    store.apply(CallStarted(call_id=CallId("stranger"), direction="inbound", line="95500", caller="+8613999999999"))
    store.apply(
        CallStarted(call_id=CallId("local"), direction="inbound", line="95500", caller="138 0013 8000", at=at(5))
    )
    assert store.get("anon").customer_id is None
    assert store.get("stranger").customer_id is None
    assert store.get("local").customer_id == "C1"  # national format resolves through the profile store too

    def broken(phone: str) -> str | None:
        raise StorageError("database operation failed")

    flaky = CallStore(container.sessions, clock=container.clock, caller_lookup=broken)
    assert flaky.apply(CallStarted(call_id=CallId("flaky"), direction="outbound", line="trunk", caller=CALLER))
    assert flaky.get("flaky").customer_id is None


def test_unknown_calls_are_not_found(store: CallStore) -> None:
    with pytest.raises(NotFoundError):
        store.apply(CallAnswered(call_id=CallId("nope"), by="bot"))
    with pytest.raises(NotFoundError):
        store.get("nope")
    with pytest.raises(NotFoundError):
        store.utterances("nope")
    with pytest.raises(NotFoundError):
        store.set_recording("nope", "x.wav", "0" * 64, 1000)


def test_list_filters_and_pages(store: CallStore) -> None:
    for i in range(5):
        caller = CALLER if i % 2 == 0 else "+8613911112222"
        for e in scripted_call(f"call-{i}", caller=caller, start=T0 + timedelta(hours=i)):
            store.apply(e)
    page = store.list(0, 2)
    assert page.total == 5 and [c.call_id for c in page.items] == ["call-4", "call-3"]
    assert [c.call_id for c in store.list(4, 2).items] == ["call-0"]
    assert [c.call_id for c in store.list(customer_id="C1").items] == ["call-4", "call-2", "call-0"]
    assert [c.call_id for c in store.list(since=T0 + timedelta(hours=3)).items] == ["call-4", "call-3"]
    assert store.list(line="95500").total == 0 and store.list(line="95588").total == 5


def test_retention_query_and_recording_check_in(store: CallStore) -> None:
    for i, days_ago in enumerate((200, 190, 10)):
        for e in scripted_call(f"call-{i}", start=T0 - timedelta(days=days_ago)):
            store.apply(e)
    store.apply(CallStarted(call_id=CallId("no-rec"), direction="inbound", line="95588", at=T0 - timedelta(days=300)))
    store.set_recording("call-1", "var/recordings/call-1.flac", "ab" * 32, 61_000)
    assert store.get("call-1").recording_duration_ms == 61_000
    cutoff = T0 - timedelta(days=180)
    expired = store.expired_recordings(cutoff)
    assert [c.call_id for c in expired] == ["call-0", "call-1"]
    assert expired[1].recording_sha256 == "ab" * 32
    store.clear_recording("call-0")
    assert [c.call_id for c in store.expired_recordings(cutoff)] == ["call-1"]
    assert store.get("call-0").recording_path is None and store.get("call-0").ended_at is not None


async def test_recorder_stores_bus_events_and_survives_bad_ones(store: CallStore) -> None:
    bus = InMemoryEventBus()
    await bus.start()
    task = await start_call_recorder(bus, store)
    try:
        early = FinalTranscript(call_id=CallId("call-b"), leg="customer", text="喂", start_ms=100, end_ms=400)
        await bus.publish(early)  # before its call's start: parked, then stored
        await bus.publish(DtmfReceived(call_id=CallId("call-a"), digit="X"))  # never started and bad: skipped
        for e in scripted_call("call-a"):
            await bus.publish(e)
        await bus.publish(CallStarted(call_id=CallId("call-b"), direction="inbound", line="95500", caller=CALLER))
        for _ in range(500):
            if store.list().total == 2 and store.utterances("call-b") and store.get("call-a").ended_at:
                break
            await asyncio.sleep(0.01)
        assert [u.text for u in store.utterances("call-b")] == ["喂"]
        assert len(store.utterances("call-a")) == 3 and store.get("call-a").customer_id == "C1"
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bus.aclose()


async def test_recorder_counts_failures_and_drops_never_started_calls(store: CallStore) -> None:
    recorder = CallEventRecorder(store, max_parked=2)
    for i in range(3):
        await recorder.handle(CallAnswered(call_id=CallId(f"ghost-{i}"), by="bot"))
    assert (recorder.parked, recorder.failed) == (2, 1)
    await recorder.handle(CallStarted(call_id=CallId("ghost-2"), direction="inbound", line="95500"))
    await recorder.handle(DtmfReceived(call_id=CallId("ghost-2"), digit="#"))
    await recorder.handle(DtmfReceived(call_id=CallId("ghost-2"), digit="Z"))
    assert store.get("ghost-2").answered_at is not None and [d.digit for d in store.dtmf("ghost-2")] == ["#"]
    assert (recorder.parked, recorder.failed, recorder.applied) == (1, 2, 3)


def test_cli_lists_and_shows_calls(store: CallStore, container: Container, tmp_path: Path) -> None:
    for e in scripted_call("call-cli"):
        store.apply(e)
    env = {
        **os.environ,
        "VOXDESK_DATABASE_URL": container.settings.database.url,
        "VOXDESK_VAR_DIR": str(tmp_path / "var"),
        "COLUMNS": "220",
    }

    def voxdesk(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "voxdesk.cli", "calls", *args],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    listed = voxdesk("list", "--customer", "C1", "--limit", "5")
    assert listed.returncode == 0, listed.stderr
    assert "call-cli" in listed.stdout and "1 of 1" in listed.stdout
    assert "call-cli" not in voxdesk("list", "--customer", "C9").stdout
    shown = voxdesk("show", "call-cli")
    assert shown.returncode == 0, shown.stderr
    assert "我想查询信用卡账单" in shown.stdout and "DTMF: 1@0:03.0" in shown.stdout and "agent" in shown.stdout
    assert voxdesk("show", "nope").returncode == 2
    reads = [(e.action, e.resource_id) for e in container.auth.audit_entries(resource_type="call")]
    assert ("call.read", "call-cli") in reads and ("call.list", None) in reads


def test_recording_saved_event_records_path_checksum_and_duration(container: Container) -> None:
    from core.events import RecordingSaved

    store = container.calls
    for event in scripted_call("call-rec"):
        store.apply(event)
    saved = RecordingSaved(
        call_id=CallId("call-rec"),
        path="var/recordings/2026-11-22/call-rec.wav",
        sha256="cd" * 32,
        duration_ms=42_000,
        size_bytes=672_044,
    )
    assert store.apply(saved)
    assert not store.apply(saved)  # idempotent
    call = store.get("call-rec")
    assert (call.recording_path, call.recording_sha256, call.recording_duration_ms) == (
        "var/recordings/2026-11-22/call-rec.wav",
        "cd" * 32,
        42_000,
    )
