"""The HTTP API with the real app on real databases: authentication, roles, audit, uploads."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from voxdesk.container import Container
from voxdesk.server.app import create_app

CUSTOMERS = (
    "customer_id,name,phones,tier,risk_tolerance\nC1,王芳,13800138000,gold,C2\nC2,Tom Lee,+8613900139000,mass,\n"
)
PASSWORD = "correct horse battery"


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    for name, roles in {
        "boss": ["admin"],
        "ann": ["agent"],
        "mia": ["marketing"],
        "cora": ["compliance"],
        "bob": ["branch"],
    }.items():
        container.auth.create_user(name, PASSWORD, roles)
    with TestClient(create_app(container)) as test_client:
        yield test_client


def token(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def test_health_is_public_and_ready(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/customers"),
        ("GET", "/api/v1/customers/C1"),
        ("GET", "/api/v1/customers/by-phone/13800138000"),
        ("GET", "/api/v1/customers/export"),
        ("POST", "/api/v1/customers/import"),
        ("GET", "/api/v1/users"),
        ("GET", "/api/v1/audit"),
        ("GET", "/api/v1/products"),
        ("GET", "/api/v1/campaigns"),
        ("POST", "/api/v1/campaigns/c1/contacts/csv"),
        ("POST", "/api/v1/dnc"),
        ("DELETE", "/api/v1/dnc/13800138000"),
        ("GET", "/api/v1/auth/me"),
        ("GET", "/api/openapi.json"),
        ("GET", "/metrics"),
    ],
)
def test_every_route_needs_auth(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code == 401, (path, response.status_code)
    bad = client.request(method, path, headers={"Authorization": "Bearer not-a-real-token"})
    assert bad.status_code == 401


def test_login_failures_are_uniform_and_lock_out(client: TestClient) -> None:
    wrong = client.post("/api/v1/auth/login", json={"username": "ann", "password": "wrong password!"})
    unknown = client.post("/api/v1/auth/login", json={"username": "nobody", "password": "wrong password!"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    for _ in range(5):
        client.post("/api/v1/auth/login", json={"username": "bob", "password": "wrong password!"})
    locked = client.post("/api/v1/auth/login", json={"username": "bob", "password": PASSWORD})
    assert locked.status_code == 401


def test_roles_are_enforced(client: TestClient) -> None:
    agent, marketing, compliance, admin = (token(client, u) for u in ("ann", "mia", "cora", "boss"))
    files = {"customers": ("c.csv", CUSTOMERS.encode(), "text/csv")}
    assert client.post("/api/v1/customers/import", headers=agent, files=files).status_code == 403
    assert client.post("/api/v1/customers/import", headers=marketing, files=files).json() == {
        "customers": 2,
        "holdings": 0,
    }
    assert client.get("/api/v1/customers/C1", headers=agent).json()["name"] == "王芳"
    assert client.get("/api/v1/users", headers=agent).status_code == 403
    assert client.get("/api/v1/users", headers=admin).status_code == 200
    assert client.get("/api/v1/audit", headers=agent).status_code == 403
    assert client.get("/api/v1/audit", headers=compliance).status_code == 200
    assert client.get("/api/v1/customers/export", headers=agent).status_code == 403
    assert client.get("/metrics", headers=agent).status_code == 403
    assert "voxdesk_http_requests" in client.get("/metrics", headers=admin).text
    created = client.post(
        "/api/v1/users", headers=admin, json={"username": "newbie", "password": PASSWORD, "roles": ["qa"]}
    )
    assert created.status_code == 201
    again = client.post(
        "/api/v1/users", headers=admin, json={"username": "newbie", "password": PASSWORD, "roles": ["qa"]}
    )
    assert again.status_code == 409
    assert (
        client.post(
            "/api/v1/users", headers=admin, json={"username": "x", "password": PASSWORD, "roles": ["pilot"]}
        ).status_code
        == 422
    )


def test_profile_reads_are_audited(client: TestClient) -> None:
    marketing, agent, compliance = token(client, "mia"), token(client, "ann"), token(client, "cora")
    client.post(
        "/api/v1/customers/import", headers=marketing, files={"customers": ("c.csv", CUSTOMERS.encode(), "text/csv")}
    )
    assert client.get("/api/v1/customers/C1", headers=agent).status_code == 200
    assert [
        c["customer_id"] for c in client.get("/api/v1/customers/by-phone/+86 139 0013 9000", headers=agent).json()
    ] == ["C2"]
    log = client.get("/api/v1/audit", headers=compliance, params={"resource_type": "customer"}).json()
    reads = [(e["username"], e["action"], e["resource_id"]) for e in log]
    assert ("ann", "profile.read", "C1") in reads
    assert ("ann", "profile.read", "C2") in reads
    assert ("mia", "customers.import", None) in reads


def test_bad_input_gets_clear_errors(client: TestClient, container: Container) -> None:
    admin = token(client, "boss")
    assert client.get("/api/v1/customers/NOPE", headers=admin).json()["code"] == "not_found"
    bad = CUSTOMERS + "C3,赵六,not-a-phone,gold,C2\n"
    response = client.post(
        "/api/v1/customers/import", headers=admin, files={"customers": ("c.csv", bad.encode(), "text/csv")}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["rows"] == [{"row": 4, "column": "phones", "reason": "not a valid phone number"}]
    assert container.profiles.count() == 0
    binary = client.post(
        "/api/v1/customers/import", headers=admin, files={"customers": ("c.csv", b"\x00\x01\x02PK", "text/csv")}
    )
    assert binary.status_code == 400
    too_big = b"x" * (container.settings.server.max_upload_bytes + 1)
    big = client.post("/api/v1/customers/import", headers=admin, files={"customers": ("c.csv", too_big, "text/csv")})
    assert big.status_code == 413


def test_logout_revokes_token(client: TestClient) -> None:
    headers = token(client, "ann")
    assert client.get("/api/v1/auth/me", headers=headers).json()["roles"] == ["agent"]
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_cookie_session_needs_csrf_for_writes(client: TestClient) -> None:
    login = client.post("/login", data={"username": "boss", "password": PASSWORD, "next": "/"}, follow_redirects=False)
    assert login.status_code == 303 and "voxdesk_session" in login.cookies
    client.cookies.set("voxdesk_session", login.cookies["voxdesk_session"])
    assert client.get("/api/v1/users").status_code == 200
    no_csrf = client.post("/api/v1/users", json={"username": "eve", "password": PASSWORD, "roles": ["qa"]})
    assert no_csrf.status_code == 403
