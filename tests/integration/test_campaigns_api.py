"""The campaign and DNC API with the real app on real databases (SQLite and PostgreSQL): roles, a draft campaign,
a CSV list imported all or nothing with line numbers, JSON rows, the status life cycle, progress counts, and the DNC
list with audit entries that carry no clear phone number."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from voxdesk.container import Container
from voxdesk.server.app import create_app

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery"
USERS = {"boss": ["admin"], "ann": ["agent"], "sue": ["supervisor"], "mia": ["marketing"], "cara": ["compliance"]}
CAMPAIGN = {
    "campaign_id": "dec-reminders",
    "name": "December reminders",
    "kind": "collection",
    "lang": "zh",
    "max_channels": 8,
    "calendar": {"weekdays": {"mon": ["09:00-12:00", "13:30-20:00"], "sat": ["10:00-16:00"]}},
    "retry_minutes": {"busy": 10, "no_answer": 60},
}
GOOD_CSV = "phone,customer_id,amount_due,due_date\n138 0013 8000,C000001,120.5,2026-12-25\n13900139000,,80,2026-12-20\n"


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    for name, roles in USERS.items():
        container.auth.create_user(name, PASSWORD, roles)
    with TestClient(create_app(container)) as test_client:
        yield test_client


def auth(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_roles(client: TestClient) -> None:
    assert client.get("/api/v1/campaigns").status_code == 401
    status = {u: client.get("/api/v1/campaigns", headers=auth(client, u)).status_code for u in USERS}
    assert status == {"boss": 200, "ann": 403, "sue": 200, "mia": 200, "cara": 403}
    assert client.post("/api/v1/campaigns", headers=auth(client, "ann"), json=CAMPAIGN).status_code == 403
    dnc = {"phone": "13800138000"}
    assert client.post("/api/v1/dnc", headers=auth(client, "ann"), json=dnc).status_code == 403
    assert client.post("/api/v1/dnc", headers=auth(client, "mia"), json=dnc).status_code == 201  # adding is safe
    assert client.delete("/api/v1/dnc/13800138000", headers=auth(client, "mia")).status_code == 403
    assert client.delete("/api/v1/dnc/13800138000", headers=auth(client, "cara")).status_code == 200


def test_a_campaign_from_draft_to_stopped(client: TestClient, container: Container) -> None:
    mia = auth(client, "mia")
    created = client.post("/api/v1/campaigns", headers=mia, json=CAMPAIGN)
    assert created.status_code == 201, created.text
    assert created.json()["campaign"]["status"] == "draft"
    assert client.post("/api/v1/campaigns", headers=mia, json=CAMPAIGN).status_code == 409
    bad_calendar = CAMPAIGN | {"campaign_id": "x", "calendar": {"weekdays": {"mon": ["9-12"]}}}
    assert client.post("/api/v1/campaigns", headers=mia, json=bad_calendar).status_code == 400
    bad_retry = CAMPAIGN | {"campaign_id": "y", "retry_minutes": {"completed": 5}}
    assert client.post("/api/v1/campaigns", headers=mia, json=bad_retry).status_code == 400

    url = "/api/v1/campaigns/dec-reminders"
    files = {"file": ("list.csv", GOOD_CSV.encode(), "text/csv")}
    assert client.post(url + "/contacts/csv", headers=mia, files=files).json() == {"contacts": 2}
    again = "phone,amount_due,due_date\n13700137000,5,2026-12-25\n+86 138 0013 8000,5,2026-12-25\nnope,5,2026-12-25\n"
    rejected = client.post(url + "/contacts/csv", headers=mia, files={"file": ("l.csv", again.encode(), "text/csv")})
    assert rejected.status_code == 422
    assert "row 4" in rejected.text and "13800138000" not in rejected.text  # the number itself is not echoed
    rows = {"contacts": [{"phone": "13700137000", "amount_due": "5", "due_date": "2026-12-25"}]}
    assert client.post(url + "/contacts", headers=mia, json=rows).json() == {"contacts": 1}
    assert client.post(url + "/contacts", headers=mia, json={"contacts": [{"phone": "1", "x": 1}]}).status_code == 422
    assert client.post("/api/v1/campaigns/none/contacts", headers=mia, json=rows).status_code == 404

    for status, code in [("running", 200), ("paused", 200), ("running", 200), ("draft", 409), ("stopped", 200)]:
        moved = client.post(url + "/status", headers=mia, json={"status": status})
        assert moved.status_code == code, (status, moved.text)
    detail = client.get(url, headers=mia).json()
    assert detail["campaign"]["status"] == "stopped" and detail["stats"]["contacts"] == {"pending": 3}
    actions = [e.action for e in container.auth.audit_entries(resource_type="campaign")]
    assert {"campaign.create", "campaign.list_import", "campaign.running", "campaign.stopped"} <= set(actions)


def test_dnc_list_and_its_audit(client: TestClient, container: Container) -> None:
    sue = auth(client, "sue")
    assert client.get("/api/v1/dnc/13800138000", headers=sue).json() == {"phone": "+8613800138000", "listed": False}
    added = client.post("/api/v1/dnc", headers=sue, json={"phone": "138-0013-8000", "reason": "complaint"})
    assert added.status_code == 201 and added.json()["phone"] == "+8613800138000"
    assert client.get("/api/v1/dnc/+8613800138000", headers=sue).json()["listed"] is True
    assert client.post("/api/v1/dnc", headers=sue, json={"phone": "not a phone"}).status_code == 400
    entries = container.auth.audit_entries(resource_type="dnc")
    assert entries and all("13800138000" not in (e.resource_id or "") for e in entries)
