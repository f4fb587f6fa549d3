"""The QA review API with the real app on real databases (SQLite and PostgreSQL): roles, 404/422, decisions, added
findings, completed reviews, audited playback of a real WAV with byte ranges, analytics JSON and CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from qa.models import Finding, Turn
from tests.qa_samples import (
    CLOSING,
    COMPLAINT,
    GREETING,
    LOST_CARD,
    PROMISE,
    T0,
    complaint,
    forbidden,
    inspection,
    reason,
    save,
    write_wav,
)
from voxdesk.container import Container
from voxdesk.server.app import create_app

PASSWORD = "correct horse battery"
USERS = {"boss": ["admin"], "ann": ["agent"], "sue": ["supervisor"], "quinn": ["qa"], "mia": ["marketing"]}
CARD_TURN = Turn("agent", "Your card number is 4111111111111111, right?", 17500, 20000)
PII = Finding("agent_pii", "critical", "4111111111111111", 17500, 20000, "agent", "card")
RANGE = {"since": (T0 - timedelta(days=1)).isoformat(), "until": (T0 + timedelta(days=30)).isoformat()}


@pytest.fixture
def client(container: Container, tmp_path: Path) -> Iterator[TestClient]:
    for name, roles in USERS.items():
        container.auth.create_user(name, PASSWORD, roles)
    wav = tmp_path / "imports" / "c-1.wav"
    write_wav(wav, seconds=3.0)
    turns = (GREETING, LOST_CARD, PROMISE, COMPLAINT, CLOSING, CARD_TURN)
    save(
        container.qa_store,
        inspection(
            "c-1",
            turns=turns,
            findings=(reason("cards.report_lost_card"), forbidden(), complaint(), PII),
            path=str(wav),
        ),
        inspection("c-2", started_at=T0 + timedelta(days=1), agent_id="agent-2", findings=(complaint(),)),
        inspection("c-3", started_at=T0 + timedelta(days=2), findings=()),
    )
    with TestClient(create_app(container)) as test_client:
        yield test_client


def auth(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def finding(detail: dict[str, Any], rule_id: str) -> int:
    return next(int(f["id"]) for f in detail["findings"] if f["rule_id"] == rule_id)


def test_roles(client: TestClient) -> None:
    reads = ("/api/qa/calls", "/api/qa/calls/c-1", "/api/qa/calls/c-1/audio", "/api/qa/analytics/trends")
    status = {u: tuple(client.get(p, headers=auth(client, u)).status_code for p in reads) for u in USERS}
    assert status == {
        "boss": (200, 200, 200, 200),
        "ann": (403, 403, 403, 403),
        "sue": (200, 200, 200, 200),
        "quinn": (200, 200, 200, 200),
        "mia": (403, 403, 403, 403),
    }
    assert client.get("/api/qa/calls").status_code == 401
    sue = auth(client, "sue")  # supervisors read only
    fid = finding(client.get("/api/qa/calls/c-1", headers=sue).json(), "forbidden_phrase")
    assert client.post(f"/api/qa/calls/c-1/findings/{fid}/decision", headers=sue,
                       json={"decision": "confirmed"}).status_code == 403  # fmt: skip
    assert client.post("/api/qa/calls/c-1/review", headers=sue, json={}).status_code == 403


def test_queue_and_detail(client: TestClient) -> None:
    qa = auth(client, "quinn")
    page = client.get("/api/qa/calls", headers=qa).json()
    assert [c["call_id"] for c in page["items"]] == ["c-2", "c-1"] and page["total"] == 2
    assert "path" not in page["items"][0] and "customer_phone" not in page["items"][0]
    assert [c["call_id"] for c in client.get("/api/qa/calls", headers=qa, params={"flagged_only": "false"}).json()[
        "items"]] == ["c-3", "c-2", "c-1"]  # fmt: skip
    only = client.get("/api/qa/calls", headers=qa, params={"rule_id": "forbidden_phrase", "q": "guaranteed"}).json()
    assert [c["call_id"] for c in only["items"]] == ["c-1"]
    assert client.get("/api/qa/calls", headers=qa, params={"rule_id": "nope"}).status_code == 422
    assert client.get("/api/qa/calls", headers=qa, params={"min_severity": "huge"}).status_code == 422
    assert client.get("/api/qa/calls", headers=qa, params={"date_from": "2026-03-01T00:00:00"}).status_code == 422
    assert client.get("/api/qa/calls", headers=qa, params={"limit": 10_000}).status_code == 422

    detail = client.get("/api/qa/calls/c-1", headers=qa).json()
    assert detail["call"]["score"] == 0.0 and detail["call"]["auto_failed"] is True
    assert [t["channel"] for t in detail["turns"]] == ["agent", "customer", "agent", "customer", "agent", "agent"]
    assert "4111111111111111" not in detail["turns"][5]["text"]  # masked for the qa role
    assert "4111111111111111" not in str(detail["findings"])
    promise = finding(detail, "forbidden_phrase")
    assert detail["turns"][2]["finding_ids"] == [promise]
    assert {i["item_id"] for i in detail["score"]["items"]} >= {"compliance", "resolution"}
    assert detail["audio_url"] == "/api/qa/calls/c-1/audio"
    clear = client.get("/api/qa/calls/c-1", headers=auth(client, "boss")).json()
    assert "4111111111111111" in clear["turns"][5]["text"]
    assert client.get("/api/qa/calls/nope", headers=qa).status_code == 404


def test_review_flow(client: TestClient) -> None:
    qa = auth(client, "quinn")
    detail = client.get("/api/qa/calls/c-1", headers=qa).json()
    promise, pii = finding(detail, "forbidden_phrase"), finding(detail, "agent_pii")
    url = "/api/qa/calls/c-1/findings/{}/decision"
    assert client.post(url.format(promise), headers=qa, json={"decision": "maybe"}).status_code == 422
    assert client.post(url.format(promise), headers=qa, json={"decision": "rejected", "x": 1}).status_code == 422
    assert client.post(url.format(99999), headers=qa, json={"decision": "rejected"}).status_code == 404
    assert (
        client.post("/api/qa/calls/nope/findings/1/decision", headers=qa, json={"decision": "rejected"}).status_code
        == 404
    )
    other = finding(client.get("/api/qa/calls/c-2", headers=qa).json(), "customer_complaint")
    assert client.post(url.format(other), headers=qa, json={"decision": "rejected"}).status_code == 404

    rejected = client.post(url.format(promise), headers=qa, json={"decision": "rejected", "note": "quoting a leaflet"})
    assert rejected.status_code == 200 and rejected.json()["finding"]["decision"] == "rejected"
    assert rejected.json()["score"]["auto_failed"] is True  # the card number read out still auto-fails it
    after = client.post(url.format(pii), headers=qa, json={"decision": "rejected"}).json()
    assert after["score"]["auto_failed"] is False and after["score"]["score"] == 97.5

    body = {"rule_id": "greeting_missing", "severity": "minor", "start_ms": 0, "end_ms": 3000, "channel": "agent",
            "evidence": "greeting cut short"}  # fmt: skip
    assert client.post("/api/qa/calls/c-1/findings", headers=qa, json={**body, "rule_id": "nope"}).status_code == 422
    assert client.post("/api/qa/calls/c-1/findings", headers=qa, json={**body, "end_ms": -1}).status_code == 422
    assert client.post("/api/qa/calls/c-1/findings", headers=qa, json={**body, "start_ms": 5000}).status_code == 422
    assert client.post("/api/qa/calls/nope/findings", headers=qa, json=body).status_code == 404
    added = client.post("/api/qa/calls/c-1/findings", headers=qa, json=body)
    assert added.status_code == 201 and added.json()["finding"]["origin"] == "human"
    assert added.json()["score"]["score"] == 92.5

    assert client.post("/api/qa/calls/c-1/review", headers=qa, json={"score": 150}).status_code == 422
    assert client.post("/api/qa/calls/nope/review", headers=qa, json={}).status_code == 404
    done = client.post("/api/qa/calls/c-1/review", headers=qa, json={"note": "two false alarms"}).json()
    assert (done["review_status"], done["reviewed_score"], done["reviewer"]) == ("reviewed", 92.5, "quinn")
    override = client.post("/api/qa/calls/c-2/review", headers=qa, json={"score": 60}).json()
    assert override["final_score"] == 60.0
    open_calls = client.get("/api/qa/calls", headers=qa, params={"review_status": "open"}).json()
    assert open_calls["total"] == 0

    agreement = client.get("/api/qa/analytics/agreement", headers=qa).json()["rows"]  # decided in the last 30 days
    by_rule = {r["rule_id"]: r for r in agreement}
    assert (by_rule["forbidden_phrase"]["rejected"], by_rule["greeting_missing"]["added"]) == (1, 1)


def test_cookie_posts_need_the_csrf_token(client: TestClient) -> None:
    login = client.post("/login", data={"username": "quinn", "password": PASSWORD}, follow_redirects=False)
    assert login.status_code == 303
    assert client.post("/api/qa/calls/c-1/review", json={}).status_code == 403


def test_audio_streams_with_ranges_and_is_audited_once(client: TestClient, tmp_path: Path) -> None:
    qa = auth(client, "quinn")
    data = (tmp_path / "imports" / "c-1.wav").read_bytes()
    whole = client.get("/api/qa/calls/c-1/audio", headers=qa)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-type"] == "audio/wav" and whole.headers["accept-ranges"] == "bytes"
    part = client.get("/api/qa/calls/c-1/audio", headers={**qa, "Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == data[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    assert client.get("/api/qa/calls/c-2/audio", headers=qa).status_code == 404  # the stored file is missing
    assert client.get("/api/qa/calls/nope/audio", headers=qa).status_code == 404
    log = client.get("/api/v1/audit", headers=auth(client, "boss"), params={"resource_id": "c-1"}).json()
    plays = [e for e in log if e["action"] == "recording.read"]
    assert len(plays) == 1 and plays[0]["username"] == "quinn"


@pytest.mark.parametrize("report", ["reasons", "topics", "trends", "agents", "teams", "complaints", "agreement"])
def test_analytics_json_and_csv(client: TestClient, report: str) -> None:
    qa = auth(client, "quinn")
    response = client.get(f"/api/qa/analytics/{report}", headers=qa, params={**RANGE, "period": "week"})
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["report"] == report and isinstance(payload["rows"], list)
    exported = client.get(f"/api/qa/analytics/{report}", headers=qa, params={**RANGE, "format": "csv"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    header = next(csv.reader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert header and all(header)


def test_analytics_content_and_bad_input(client: TestClient) -> None:
    qa = auth(client, "quinn")
    trends = client.get("/api/qa/analytics/trends", headers=qa, params=RANGE).json()["rows"]
    assert [(r["period_start"], r["calls"]) for r in trends] == [
        ("2026-03-02", 1),
        ("2026-03-03", 1),
        ("2026-03-04", 1),
    ]
    complaints = client.get("/api/qa/analytics/complaints", headers=qa, params=RANGE).json()["rows"]
    assert {(r["group"], r["key"], r["complaints"]) for r in complaints} >= {("phrase", "complaint_request", 2)}
    assert client.get("/api/qa/analytics/nope", headers=qa).status_code == 422
    assert client.get("/api/qa/analytics/trends", headers=qa, params={"period": "month"}).status_code == 422
    backwards = {"since": RANGE["until"], "until": RANGE["since"]}
    assert client.get("/api/qa/analytics/trends", headers=qa, params=backwards).status_code == 422


def page_login(client: TestClient, username: str) -> None:
    client.cookies.clear()
    response = client.post("/login", data={"username": username, "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 303


def test_pages_by_role(client: TestClient) -> None:
    pages = ("/qa", "/qa/calls/c-1", "/qa/analytics")
    page_login(client, "ann")
    assert [client.get(p).status_code for p in pages] == [403, 403, 403]
    page_login(client, "sue")  # supervisors read: no review buttons, no forms
    call = client.get("/qa/calls/c-1?lang=en")
    assert call.status_code == 200 and 'data-testid="qa-read-only"' in call.text
    assert 'data-testid="qa-confirm"' not in call.text and 'id="qa-add-form"' not in call.text
    assert "4111111111111111" not in call.text
    page_login(client, "quinn")
    home = client.get("/")
    assert 'href="/qa"' in home.text
    queue = client.get("/qa?lang=en&rule_id=forbidden_phrase")
    assert queue.status_code == 200 and queue.text.count('data-testid="qa-row"') == 1
    assert client.get("/qa?score_below=abc&date_from=nope&offset=-3").status_code == 200  # lenient form
    call = client.get("/qa/calls/c-1?lang=en")
    assert call.status_code == 200 and call.text.count('data-testid="qa-confirm"') == 4
    assert 'src="/api/qa/calls/c-1/audio"' in call.text and call.text.count('data-testid="qa-line"') == 6
    assert client.get("/qa/calls/nope").status_code == 404
    analytics = client.get("/qa/analytics", params={"since": "2026-03-01", "until": "2026-03-31", "period": "week"})
    assert analytics.status_code == 200 and analytics.text.count('<svg xmlns="http://www.w3.org/2000/svg"') == 9
    assert 'data-testid="csv-topics"' in analytics.text
