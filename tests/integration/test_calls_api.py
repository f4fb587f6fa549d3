"""The call API with the real app on real databases: roles, audit, recording download, live event websocket."""

from __future__ import annotations

import hashlib
import math
import struct
import time
import wave
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from core.events import (
    CallAnswered,
    CallEnded,
    CallStarted,
    DtmfReceived,
    Event,
    FinalTranscript,
    LegConnected,
    Suggestion,
)
from core.ids import CallId, CustomerId
from profiles.models import Customer
from voxdesk.container import Container
from voxdesk.server.app import create_app
from voxdesk.settings import Settings

PASSWORD = "correct horse battery"
CALLER = "+8613800138000"
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
USERS = {
    "boss": ["admin"],
    "ann": ["agent"],
    "sue": ["supervisor"],
    "quinn": ["qa"],
    "cora": ["compliance"],
    "mia": ["marketing"],
    "bob": ["branch"],
}


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """The conftest settings, with recordings in this test's folder."""
    return Settings(
        var_dir=tmp_path / "var",
        database={"url": database_url},
        bus={"backend": "memory"},
        logging={"json_logs": True, "level": "INFO"},
        demo={"load_on_empty": False},
        recording={"directory": tmp_path / "recordings"},
    )


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    for name, roles in USERS.items():
        container.auth.create_user(name, PASSWORD, roles)
    with TestClient(create_app(container)) as test_client:
        yield test_client


def login(client: TestClient, username: str) -> str:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def bearer(client: TestClient, username: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {login(client, username)}"}


def write_wav(path: Path, seconds: float = 0.5, rate_hz: int = 8000) -> bytes:
    """A real stereo 16-bit WAV: 440 Hz on the customer (left) channel, 880 Hz on the agent (right) channel."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = b"".join(
        struct.pack(
            "<hh",
            int(8000 * math.sin(2 * math.pi * 440 * i / rate_hz)),
            int(8000 * math.sin(2 * math.pi * 880 * i / rate_hz)),
        )
        for i in range(int(seconds * rate_hz))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate_hz)
        out.writeframes(frames)
    return path.read_bytes()


def call_events(call_id: str, recording: Path | None) -> list[Event]:
    cid = CallId(call_id)
    return [
        CallStarted(call_id=cid, direction="inbound", line="95588", caller=CALLER, at=T0),
        LegConnected(call_id=cid, leg="customer", remote_uri="sip:caller@carrier.example", at=T0),
        CallAnswered(call_id=cid, by="bot", at=T0 + timedelta(milliseconds=50)),
        FinalTranscript(
            call_id=cid,
            leg="customer",
            text="信用卡挂失",
            start_ms=300,
            end_ms=1200,
            lang="zh",
            at=T0 + timedelta(seconds=2),
        ),
        FinalTranscript(
            call_id=cid,
            leg="customer",
            text="我的账号是6212345678901234567",
            start_ms=1500,
            end_ms=2500,
            lang="zh",
            at=T0 + timedelta(seconds=2.5),
        ),
        DtmfReceived(call_id=cid, digit="2", at=T0 + timedelta(seconds=3)),
        CallEnded(
            call_id=cid,
            duration_ms=4000,
            reason="normal",
            sip_code=200,
            recording_path=str(recording) if recording else None,
            at=T0 + timedelta(seconds=4),
        ),
    ]


@pytest.fixture
def recorded(container: Container, tmp_path: Path) -> bytes:
    """Two calls in the store: ``call-1`` with a real WAV recording of C1, ``call-2`` without a recording."""
    container.profiles.upsert_many([Customer(customer_id=CustomerId("C1"), name="王芳", phones=(CALLER,))], source="t")
    wav_path = tmp_path / "recordings" / "20458" / "call-1.wav"
    data = write_wav(wav_path)
    for event in [*call_events("call-1", wav_path), *call_events("call-2", None)]:
        container.calls.apply(event)
    container.calls.set_recording("call-1", str(wav_path), hashlib.sha256(data).hexdigest(), 500)
    return data


def test_call_routes_need_auth(client: TestClient, recorded: bytes) -> None:
    for path in ("/api/v1/calls", "/api/v1/calls/call-1", "/api/v1/calls/call-1/recording", "/api/v1/calls/nope"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers={"Authorization": "Bearer not-a-token"}).status_code == 401, path


def test_roles(client: TestClient, recorded: bytes) -> None:
    headers = {user: bearer(client, user) for user in USERS}
    paths = ("/api/v1/calls", "/api/v1/calls/call-1", "/api/v1/calls/call-1/recording")
    status = {user: tuple(client.get(path, headers=headers[user]).status_code for path in paths) for user in USERS}
    assert status == {
        "boss": (200, 200, 200),
        "ann": (200, 200, 403),
        "sue": (200, 200, 200),
        "quinn": (200, 200, 200),
        "cora": (200, 200, 200),
        "mia": (403, 403, 403),
        "bob": (403, 403, 403),
    }


def test_list_and_detail_are_audited(client: TestClient, recorded: bytes) -> None:
    agent = bearer(client, "ann")
    page = client.get("/api/v1/calls", headers=agent, params={"customer_id": "C1"}).json()
    assert page["total"] == 2 and {c["call_id"] for c in page["items"]} == {"call-1", "call-2"}
    assert client.get("/api/v1/calls", headers=agent, params={"line": "95500"}).json()["total"] == 0
    later = (T0 + timedelta(hours=1)).isoformat()
    assert client.get("/api/v1/calls", headers=agent, params={"since": later}).json()["total"] == 0
    naive = client.get("/api/v1/calls", headers=agent, params={"since": "2026-01-05T09:00:00"})
    assert naive.status_code == 422

    detail = client.get("/api/v1/calls/call-1", headers=agent).json()
    assert (detail["customer_id"], detail["caller_e164"], detail["end_reason"]) == ("C1", CALLER, "normal")
    assert [leg["leg"] for leg in detail["legs"]] == ["customer"]
    assert [(u["leg"], u["text"], u["start_ms"]) for u in detail["utterances"]] == [
        ("customer", "信用卡挂失", 300),
        ("customer", "我的账号是***************4567", 1500),  # masked for agents
    ]
    clear = client.get("/api/v1/calls/call-1", headers=bearer(client, "cora")).json()
    assert clear["utterances"][1]["text"] == "我的账号是6212345678901234567"
    assert [(d["digit"], d["at_ms"]) for d in detail["dtmf"]] == [("2", 3000)]

    log = client.get("/api/v1/audit", headers=bearer(client, "cora"), params={"resource_type": "call"}).json()
    entries = [(e["username"], e["action"], e["resource_id"]) for e in log]
    assert ("ann", "call.read", "call-1") in entries
    assert entries.count(("ann", "call.list", None)) == 3  # the rejected (422) request is not a read


def test_recording_download_is_audited(client: TestClient, recorded: bytes) -> None:
    response = client.get("/api/v1/calls/call-1/recording", headers=bearer(client, "quinn"))
    assert response.status_code == 200
    assert response.content == recorded and response.headers["content-type"] == "audio/wav"
    assert 'filename="call-1.wav"' in response.headers["content-disposition"]
    log = client.get("/api/v1/audit", headers=bearer(client, "cora"), params={"resource_id": "call-1"}).json()
    assert ("quinn", "recording.read") in [(e["username"], e["action"]) for e in log]
    # The agent's refused attempt leaves no read in the log.
    client.get("/api/v1/calls/call-1/recording", headers=bearer(client, "ann"))
    log = client.get("/api/v1/audit", headers=bearer(client, "cora"), params={"resource_id": "call-1"}).json()
    assert [e["username"] for e in log if e["action"] == "recording.read"] == ["quinn"]


def test_missing_things_are_404(client: TestClient, container: Container, recorded: bytes, tmp_path: Path) -> None:
    admin = bearer(client, "boss")
    for path in ("/api/v1/calls/nope", "/api/v1/calls/nope/recording", "/api/v1/calls/call-2/recording"):
        response = client.get(path, headers=admin)
        assert (response.status_code, response.json()["code"]) == (404, "not_found"), path
    outside = tmp_path / "elsewhere.wav"
    write_wav(outside)
    container.calls.set_recording("call-2", str(outside), "0" * 64, 500)
    assert client.get("/api/v1/calls/call-2/recording", headers=admin).status_code == 404
    container.calls.set_recording("call-2", str(tmp_path / "recordings" / "gone.wav"), "0" * 64, 500)
    assert client.get("/api/v1/calls/call-2/recording", headers=admin).status_code == 404


def test_websocket_refuses(client: TestClient) -> None:
    agent, marketing, qa = login(client, "ann"), login(client, "mia"), login(client, "quinn")
    cases = [
        ("/api/v1/calls/call-1/events", {}, None, 4401),
        ("/api/v1/calls/call-1/events?token=not-a-token", {}, None, 4401),
        ("/api/v1/calls/call-1/events", {"Authorization": f"Bearer {marketing}"}, None, 4403),
        (f"/api/v1/calls/call-1/events?token={qa}", {}, None, 4403),
        ("/api/v1/calls/call-1/events", {"Origin": "https://evil.example"}, agent, 4403),  # cross-site cookie
    ]
    for url, headers, cookie, code in cases:
        client.cookies.clear()
        if cookie:
            client.cookies.set("voxdesk_session", cookie)
        with client.websocket_connect(url, headers=headers) as ws, pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == code, (url, headers)


@pytest.mark.parametrize("auth", ["query", "bearer", "cookie"])
def test_websocket_streams_one_calls_events(client: TestClient, container: Container, auth: str) -> None:
    token = login(client, "ann")
    url, headers = "/api/v1/calls/call-9/events", {}
    if auth == "query":
        url += f"?token={token}"
    elif auth == "bearer":
        headers = {"Authorization": f"Bearer {token}"}
    else:
        client.cookies.set("voxdesk_session", token)
        headers = {"Origin": "http://testserver"}
    bus = client.app.state.bus  # type: ignore[attr-defined]
    other = FinalTranscript(call_id=CallId("call-8"), leg="customer", text="别的电话", start_ms=0, end_ms=500)
    mine = FinalTranscript(call_id=CallId("call-9"), leg="customer", text="我要挂失", start_ms=0, end_ms=800)
    hint = Suggestion(call_id=CallId("call-9"), script_text="请核实身份后办理挂失")
    end = CallEnded(call_id=CallId("call-9"), duration_ms=900, reason="normal", sip_code=200)
    with client.websocket_connect(url, headers=headers) as ws:
        for event in (other, mine, hint, end):
            client.portal.call(bus.publish, event)  # type: ignore[union-attr]
        received = [ws.receive_json() for _ in range(3)]
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert [(m["kind"], m["call_id"]) for m in received] == [
        ("speech.final", "call-9"),
        ("assist.suggestion", "call-9"),
        ("call.ended", "call-9"),
    ]
    assert received[0]["text"] == "我要挂失" and closed.value.code == 1000
    audit = container.auth.audit_entries(resource_id="call-9")
    assert [(e.username, e.action) for e in audit] == [("ann", "call.watch")]


def test_events_on_the_app_bus_reach_the_api(client: TestClient, tmp_path: Path) -> None:
    """The server's recorder stores what media and speech workers publish; the API then serves it."""
    wav_path = tmp_path / "recordings" / "live.wav"
    data = write_wav(wav_path, seconds=0.2)
    bus = client.app.state.bus  # type: ignore[attr-defined]
    for event in call_events("call-live", wav_path):
        client.portal.call(bus.publish, event)  # type: ignore[union-attr]
    supervisor = bearer(client, "sue")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        detail = client.get("/api/v1/calls/call-live", headers=supervisor)
        if detail.status_code == 200 and detail.json()["ended_at"] is not None:
            break
        time.sleep(0.05)
    body = detail.json()
    assert (body["end_reason"], body["sip_code"], len(body["utterances"]), len(body["dtmf"])) == ("normal", 200, 2, 1)
    assert client.get("/api/v1/calls/call-live/recording", headers=supervisor).content == data
