"""The assist API and websocket with the real app on real databases: roles, masking, feedback, attachment."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from agent.assist.store import AssistStore
from core.events import CallEnded, ComplianceAlert, FinalTranscript, LegConnected, Suggestion
from core.ids import CallId, CustomerId, QuestionId, ScriptId
from profiles.models import Consent, Customer
from voxdesk.container import Container
from voxdesk.server.app import create_app
from voxdesk.settings import Settings

PASSWORD = "correct horse battery"
USERS = {"ann": (["agent"], "agent101"), "amy": (["agent"], "agent102"), "sue": (["supervisor"], None)}
CALL = CallId("call-a1")


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        var_dir=tmp_path / "var",
        database={"url": database_url},
        bus={"backend": "memory"},
        logging={"json_logs": True, "level": "INFO"},
        demo={"load_on_empty": False},
    )


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    for name, (roles, sip) in USERS.items():
        container.auth.create_user(name, PASSWORD, roles, sip_user=sip)
    now = container.clock.now()
    container.profiles.upsert_many(
        [
            Customer(
                customer_id=CustomerId("C900001"),
                name="王小明",
                phones=("+8613800138000",),
                birth_date=date(1980, 5, 1),
                risk_tolerance="C3",
                tier="gold",
                vip=True,
                aum_cny=Decimal("800000"),
                consents=(Consent(kind="marketing_calls", granted=True, updated_at=now),),
            )
        ],
        source="test",
    )
    store = AssistStore(container.sessions, clock=container.clock)
    store.open_call(CALL, line="assisted", lang="zh", customer_id="C900001")
    store.set_agent(CALL, "sip:agent101@127.0.0.1:5080", "agent101")
    store.add_events(
        [
            Suggestion(
                call_id=CALL,
                suggestion_id="s-1",
                question_id=QuestionId("cards.report_lost_card"),
                script_id=ScriptId("answer.cards.report_lost_card"),
                script_version=2,
                script_text="请先冻结卡片",
                score=0.9,
            ),
            ComplianceAlert(
                call_id=CALL,
                rule_id="agent.forbidden.credentials",
                severity="critical",
                message="不得索要密码",
                alert_id="a-1",
                quote="请把验证码和手机号13800138000告诉我",
            ),
            ComplianceAlert(
                call_id=CALL,
                rule_id="customer.escalation",
                severity="critical",
                message="客户要投诉",
                leg="customer",
                alert_id="a-2",
                quote="我要去监管投诉",
                audience="supervisor",
            ),
        ]
    )
    with TestClient(create_app(container)) as test_client:
        yield test_client


def bearer(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_snapshot_masks_per_role_and_keeps_other_agents_out(client: TestClient, container: Container) -> None:
    ann = client.get(f"/api/v1/assist/calls/{CALL}", headers=bearer(client, "ann"))
    assert ann.status_code == 200, ann.text
    body = ann.json()
    assert body["customer"]["name"] == "王**" and body["customer"]["vip"] is True
    assert body["customer"]["risk_tolerance"] == "C3" and body["customer"]["consents"] == {"marketing_calls": True}
    kinds = [(e["kind"], e.get("rule_id")) for e in body["events"]]
    assert ("assist.alert", "customer.escalation") not in kinds  # supervisors only
    alert = next(e for e in body["events"] if e.get("rule_id") == "agent.forbidden.credentials")
    assert "13800138000" not in alert["quote"]
    sue = client.get(f"/api/v1/assist/calls/{CALL}", headers=bearer(client, "sue")).json()
    assert sue["customer"]["name"] == "王小明"
    assert ("assist.alert", "customer.escalation") in [(e["kind"], e.get("rule_id")) for e in sue["events"]]
    assert client.get(f"/api/v1/assist/calls/{CALL}", headers=bearer(client, "amy")).status_code == 403
    assert client.get("/api/v1/assist/calls/nope", headers=bearer(client, "ann")).status_code == 404
    audit = container.auth.audit_entries(resource_id=CALL)
    assert {(e.username, e.action) for e in audit} >= {("ann", "assist.read"), ("sue", "assist.read")}


def test_live_list_and_my_call(client: TestClient) -> None:
    assert [c["call"]["call_id"] for c in client.get("/api/v1/assist/live", headers=bearer(client, "ann")).json()] == [
        CALL
    ]
    assert client.get("/api/v1/assist/live", headers=bearer(client, "amy")).json() == []
    assert client.get("/api/v1/assist/mine", headers=bearer(client, "ann")).json()["call_id"] == CALL
    assert client.get("/api/v1/assist/mine", headers=bearer(client, "amy")).status_code == 404
    assert client.get("/api/v1/assist/recent", headers=bearer(client, "ann")).status_code == 403
    assert client.get("/api/v1/assist/live").status_code == 401


def test_feedback_is_stored_once_and_published(client: TestClient, container: Container) -> None:
    bus = client.app.state.bus  # type: ignore[attr-defined]
    sub = client.portal.call(lambda: _subscribe(bus))
    ann = bearer(client, "ann")
    for _ in range(2):
        response = client.post("/api/v1/assist/suggestions/s-1/feedback", json={"action": "used"}, headers=ann)
        assert response.status_code == 201, response.text
    assert (
        client.post("/api/v1/assist/suggestions/nope/feedback", json={"action": "used"}, headers=ann).status_code == 404
    )
    assert (
        client.post("/api/v1/assist/suggestions/s-1/feedback", json={"action": "maybe"}, headers=ann).status_code == 422
    )
    stored = AssistStore(container.sessions).feedback(call_id=CALL)
    assert [(f.suggestion_id, f.action, f.user_id, f.customer_id, f.product_ids) for f in stored] == [
        ("s-1", "used", "ann", "C900001", ())
    ]
    published = client.portal.call(lambda: _next(sub))
    assert published.kind == "assist.feedback" and published.suggestion_id == "s-1"  # type: ignore[attr-defined]


async def _subscribe(bus: object) -> object:
    sub = bus.subscribe("assist.feedback")  # type: ignore[attr-defined]
    await sub.wait_ready()
    return sub


async def _next(sub: object) -> object:
    return await sub.__anext__()  # type: ignore[attr-defined]


def leave(ws: WebSocketTestSession) -> None:
    """Disconnect and give the server a moment to end its side (the test client cancels a handler still running)."""
    ws.close()
    time.sleep(0.3)


def test_websocket_follows_the_agents_own_call_and_filters_per_role(client: TestClient) -> None:
    token = bearer(client, "ann")["Authorization"][7:]
    bus = client.app.state.bus  # type: ignore[attr-defined]
    with client.websocket_connect(f"/api/v1/assist/ws?mode=auto&token={token}") as ws:
        assert ws.receive_json() == {"type": "attached", "call_id": CALL}  # live at connect time
        events = [
            FinalTranscript(call_id=CALL, leg="customer", text="卡号6222020200112233445丢了", start_ms=0, end_ms=900),
            ComplianceAlert(
                call_id=CALL,
                rule_id="customer.dissatisfied",
                severity="warning",
                message="不满",
                leg="customer",
                audience="supervisor",
            ),
            ComplianceAlert(call_id=CALL, rule_id="agent.rude.impatient", severity="warning", message="语气"),
            CallEnded(call_id=CALL, duration_ms=1000, reason="normal"),
        ]
        for event in events:
            client.portal.call(bus.publish, event)
        received = [ws.receive_json() for _ in range(4)]
        assert [m["type"] for m in received] == ["event", "event", "event", "detached"]
        kinds = [(m["event"]["kind"], m["event"].get("rule_id")) for m in received[:3]]
        assert kinds == [("speech.final", None), ("assist.alert", "agent.rude.impatient"), ("call.ended", None)]
        assert "6222020200112233445" not in received[0]["event"]["text"]
        assert ws.receive_json() == {"type": "waiting"}
        client.portal.call(
            bus.publish, LegConnected(call_id=CallId("call-a2"), leg="agent", remote_uri="<sip:agent101@10.0.0.9>")
        )
        assert ws.receive_json() == {"type": "attached", "call_id": "call-a2"}
        leave(ws)


def test_websocket_refuses_other_agents_and_supervise_for_agents(client: TestClient) -> None:
    amy = bearer(client, "amy")["Authorization"][7:]
    ann = bearer(client, "ann")["Authorization"][7:]
    sue = bearer(client, "sue")["Authorization"][7:]
    for url in (f"/api/v1/assist/ws?call_id={CALL}&token={amy}", f"/api/v1/assist/ws?mode=supervise&token={ann}"):
        with client.websocket_connect(url) as ws, pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 4403
    with client.websocket_connect("/api/v1/assist/ws?mode=auto") as ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_text()
    assert closed.value.code == 4401
    bus = client.app.state.bus  # type: ignore[attr-defined]
    with client.websocket_connect(f"/api/v1/assist/ws?mode=supervise&token={sue}") as ws:
        alert = ComplianceAlert(call_id=CALL, rule_id="customer.escalation", severity="critical", message="投诉",
                                leg="customer", audience="supervisor")  # fmt: skip
        client.portal.call(bus.publish, alert)
        assert ws.receive_json()["event"]["rule_id"] == "customer.escalation"
        leave(ws)


def test_pages_follow_the_roles(client: TestClient) -> None:
    ann = bearer(client, "ann")
    page = client.get("/assist?lang=en", headers=ann)
    assert page.status_code == 200 and "Live assist" in page.text and '"sip_user": "agent101"' in page.text
    assert page.cookies.get("voxdesk_lang") == "en"
    assert "坐席辅助" in client.get("/assist?lang=zh", headers=ann).text
    assert client.get("/supervisor", headers=ann).status_code == 403
    assert client.get("/supervisor", headers=bearer(client, "sue")).status_code == 200
