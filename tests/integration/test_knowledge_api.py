"""The knowledge API on the real app and real databases (SQLite and PostgreSQL): roles, imports, script review,
and that readers only ever get approved script versions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yaml
from fastapi.testclient import TestClient

from knowledge.testing import sample_products
from voxdesk.container import Container
from voxdesk.server.app import create_app

PASSWORD = "correct horse battery"
LIBRARY = """\
category: cards
questions:
  - id: cards.report_lost_card
    skill_group: cards
    text_zh: 信用卡丢了怎么挂失
    text_en: How do I report a lost card?
    paraphrases: {zh: [我的卡找不到了], en: [I lost my card]}
    answer: {zh: 请在手机银行立即挂失。, en: Report it at once in the mobile banking app.}
    products: [{id: T-CC-PLAT, reason_en: upgrade on replacement}]
"""
BANNED = {
    "spec": {"script_id": "mkt.steady", "kind": "marketing", "title_en": "Steady Plus"},
    "text_zh": "稳健增利理财保本保息，零风险，赶紧买！",
    "text_en": "Steady Plus Wealth has guaranteed returns and is risk-free, act now!",
    "product_ids": ["T-WM-R3"],
    "audience_risk": "C3",
}


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    container.catalog.upsert_many(sample_products())
    for name, roles in {"boss": ["admin"], "ann": ["agent"], "sam": ["supervisor"], "cora": ["compliance"],
                        "bob": ["branch"]}.items():  # fmt: skip
        container.auth.create_user(name, PASSWORD, roles)
    with TestClient(create_app(container)) as test_client:
        yield test_client


def token(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/knowledge/questions"),
        ("GET", "/api/v1/knowledge/questions/cards.report_lost_card"),
        ("PUT", "/api/v1/knowledge/questions/cards.report_lost_card"),
        ("DELETE", "/api/v1/knowledge/questions/cards.report_lost_card"),
        ("POST", "/api/v1/knowledge/import"),
        ("GET", "/api/v1/knowledge/export"),
        ("GET", "/api/v1/knowledge/search?q=hi"),
        ("GET", "/api/v1/knowledge/scripts"),
        ("GET", "/api/v1/knowledge/scripts/mkt.steady"),
        ("GET", "/api/v1/knowledge/scripts/mkt.steady/versions"),
        ("POST", "/api/v1/knowledge/scripts"),
        ("POST", "/api/v1/knowledge/scripts/mkt.steady/versions/1/approve"),
        ("POST", "/api/v1/knowledge/check"),
    ],
)
def test_every_knowledge_route_needs_auth(client: TestClient, method: str, path: str) -> None:
    assert client.request(method, path).status_code == 401


def test_import_roles_and_row_numbered_rejection(client: TestClient) -> None:
    agent, supervisor, branch = token(client, "ann"), token(client, "sam"), token(client, "bob")
    files = {"file": ("cards.yaml", LIBRARY.encode(), "application/yaml")}
    assert client.post("/api/v1/knowledge/import", files=files, headers=agent).status_code == 403
    bad = LIBRARY.replace("T-CC-PLAT", "NO-SUCH")
    rejected = client.post("/api/v1/knowledge/import", files={"file": ("c.yaml", bad.encode())}, headers=supervisor)
    assert rejected.status_code == 422, rejected.text
    assert "row 3" in rejected.json()["message"] or rejected.json()["details"]
    assert client.get("/api/v1/knowledge/questions", headers=agent).json() == []
    done = client.post("/api/v1/knowledge/import", files=files, headers=supervisor)
    assert done.status_code == 200 and done.json() == {"questions": 1, "answer_drafts": 1, "total": 1}
    assert client.get("/api/v1/knowledge/questions", headers=branch).status_code == 403
    [q] = client.get("/api/v1/knowledge/questions", headers=agent).json()
    assert q["question_id"] == "cards.report_lost_card" and q["products"][0]["product_id"] == "T-CC-PLAT"
    one = client.get("/api/v1/knowledge/questions/cards.report_lost_card", headers=agent).json()
    assert one["answer"] is None  # the answer is a draft until compliance approves it
    exported = client.get("/api/v1/knowledge/export?format=yaml", headers=supervisor)
    assert exported.status_code == 200
    assert yaml.safe_load(exported.text)["questions"][0]["answer"]["en"].startswith("Report it")
    assert client.get("/api/v1/knowledge/export", headers=agent).status_code == 403
    assert client.get("/api/v1/knowledge/questions/cards.nope", headers=agent).status_code == 404


def test_script_review_and_only_approved_versions_reach_readers(client: TestClient) -> None:
    agent, supervisor, compliance, admin = (token(client, u) for u in ("ann", "sam", "cora", "boss"))
    assert client.post("/api/v1/knowledge/scripts", json=BANNED, headers=agent).status_code == 403
    created = client.post("/api/v1/knowledge/scripts", json=BANNED, headers=supervisor)
    assert created.status_code == 201, created.text
    rules = {(f["lang"], f["rule_id"]) for f in created.json()["findings"]}
    for lang in ("zh", "en"):
        assert {(lang, "claim.guaranteed_return"), (lang, "claim.risk_free"), (lang, "claim.pressure")} <= rules
    assert client.get("/api/v1/knowledge/scripts/mkt.steady", headers=agent).status_code == 404
    assert client.get("/api/v1/knowledge/scripts/mkt.steady/versions", headers=agent).status_code == 403
    base = "/api/v1/knowledge/scripts/mkt.steady/versions/1"
    assert client.post(f"{base}/approve", json={}, headers=compliance).status_code == 409  # still a draft
    assert client.post(f"{base}/submit", headers=supervisor).status_code == 200
    assert client.get("/api/v1/knowledge/scripts/mkt.steady", headers=agent).status_code == 404  # checked ≠ approved
    assert client.post(f"{base}/approve", json={}, headers=supervisor).status_code == 403
    assert client.post(f"{base}/approve", json={}, headers=admin).status_code == 403  # admin is not compliance
    assert client.post(f"{base}/approve", json={}, headers=compliance).status_code == 409  # findings, no override
    approved = client.post(f"{base}/approve", json={"override_reason": "test wording"}, headers=compliance)
    assert approved.status_code == 200 and approved.json()["state"] == "approved"
    got = client.get("/api/v1/knowledge/scripts/mkt.steady", headers=agent).json()
    assert got["version"] == 1 and got["approved_at"]
    by_product = client.get("/api/v1/knowledge/products/T-WM-R3/scripts", headers=agent).json()
    assert [s["script_id"] for s in by_product] == ["mkt.steady"]
    assert client.get("/api/v1/knowledge/products/T-DEP-1Y/scripts", headers=agent).json() == []
    assert client.get("/api/v1/knowledge/products/NOPE/scripts", headers=agent).status_code == 404
    clean = {
        "text_zh": "稳健增利理财为R3级。理财非存款，产品有风险，投资须谨慎。",
        "text_en": "Investment involves risk.",
    }
    v2 = client.post("/api/v1/knowledge/scripts/mkt.steady/versions", json=clean, headers=supervisor)
    assert v2.status_code == 201 and v2.json()["findings"] == [] and v2.json()["product_ids"] == ["T-WM-R3"]
    assert client.get("/api/v1/knowledge/scripts/mkt.steady", headers=agent).json()["version"] == 1
    retired = client.post(f"{base}/retire", headers=supervisor)
    assert retired.status_code == 200
    assert client.get("/api/v1/knowledge/scripts/mkt.steady", headers=agent).status_code == 404
    assert client.get("/api/v1/knowledge/scripts", headers=agent).json() == []
    audit = client.get("/api/v1/audit", headers=admin).json()
    actions = [e["action"] for e in (audit["items"] if isinstance(audit, dict) else audit)]
    assert "script.approve" in actions and "script.retire" in actions


def test_check_preview_and_bad_input(client: TestClient) -> None:
    supervisor = token(client, "sam")
    found = client.post("/api/v1/knowledge/check", json={"kind": "outbound", "text_en": "Hello, this is a survey."},
                        headers=supervisor)  # fmt: skip
    assert [f["rule_id"] for f in found.json()] == ["outbound.bank_identification"]
    assert client.post("/api/v1/knowledge/check", json={"kind": "answer"}, headers=supervisor).status_code == 400
    bad = dict(BANNED, product_ids=["NOPE"])
    assert client.post("/api/v1/knowledge/scripts", json=bad, headers=supervisor).status_code == 404
    body = {"question": {"question_id": "cards.x", "category": "cards", "skill_group": "cards", "text_zh": "问",
                         "text_en": "q"}}  # fmt: skip
    assert client.put("/api/v1/knowledge/questions/cards.y", json=body, headers=supervisor).status_code == 400
    ok = client.put("/api/v1/knowledge/questions/cards.x", json=body, headers=supervisor)
    assert ok.status_code == 200, ok.text
    assert client.delete("/api/v1/knowledge/questions/cards.x", headers=supervisor).json()["status"] == "retired"
    garbage = {"file": ("x.yaml", b"\xff\xfe\x00binary")}
    assert client.post("/api/v1/knowledge/import", files=garbage, headers=supervisor).status_code == 400
