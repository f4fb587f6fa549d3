"""The campaign pages in a real headless Chromium against the real app (uvicorn, SQLite): a marketing user creates
a campaign from the form, uploads a dialing list, starts, pauses and stops it, watches the live figures refresh
while attempts are recorded, and downloads the results CSV; an agent is refused."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from telephony.dialer.attempts import AttemptState
from tests.browser_helpers import serve_app, wait_js
from voxdesk.container import Container

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'voxdesk.db'}"


@pytest.fixture
def served(container: Container) -> Iterator[str]:
    container.auth.create_user("mei", PASSWORD, ["marketing"], display_name="Mei")
    container.auth.create_user("andy", PASSWORD, ["agent"], display_name="Andy")
    with serve_app(container) as base:
        yield base


def _answer_one(container: Container) -> None:
    """What the dialer does for one contact: claim, dial, answer, a promise to pay."""
    [claim] = container.dialer.claim_due("bill-dec", limit=1, dialer_id="d1")
    container.dialer.move(claim.attempt_id, AttemptState.QUEUED, AttemptState.DIALING)
    container.dialer.move(claim.attempt_id, AttemptState.DIALING, AttemptState.ANSWERED)
    container.dialer.close(claim.attempt_id, AttemptState.ANSWERED, AttemptState.COMPLETED, retry_at=None,
                           final="promised", result={"promise_date": "2026-12-25"}, sip_code=200)  # fmt: skip


def test_marketing_runs_a_campaign_from_the_pages(served: str, container: Container, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    listing = tmp_path / "list.csv"
    listing.write_text("phone,amount_due,due_date\n13800138001,3200,2026-12-20\n13800138002,99.5,2026-12-20\n")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
        page.goto(served + "/login?next=/campaigns?lang=en")
        page.fill("input[name=username]", "mei")
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("main button[type=submit]")
        page.wait_for_url("**/campaigns?lang=en")
        assert "No campaign yet" in page.inner_text("[data-testid=campaign-list]")

        page.fill("input[name=campaign_id]", "bill-dec")
        page.fill("input[name=name]", "December bills")
        page.select_option("select[name=kind]", "collection")
        page.fill("input[name=max_channels]", "2")
        page.click("[data-testid=create-campaign]")
        deadline = time.monotonic() + 10
        while not page.url.endswith("/campaigns/bill-dec") and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        assert page.url.endswith("/campaigns/bill-dec"), (page.inner_text("#new-error"), problems)
        page.wait_for_load_state()
        assert page.inner_text("[data-testid=campaign-status]") == "draft"

        page.set_input_files("#upload-list input[type=file]", str(listing))
        page.click("#upload-list button[type=submit]")
        wait_js(page, "document.getElementById('upload-result').textContent.includes('2 numbers imported')")
        wait_js(page, "document.querySelector('[data-field=contacts]').textContent === '2'")

        with page.expect_navigation():
            page.click("[data-testid=move-running]")
        assert page.inner_text("[data-testid=campaign-status]") == "running"
        _answer_one(container)  # the live figures follow without a reload
        wait_js(page, "document.querySelector('[data-field=converted]').textContent === '1'", timeout_s=10)
        assert page.inner_text("[data-field=conversion_pct]") == "100.0%"
        assert page.locator("[data-testid=funnel] svg[data-chart=funnel]").count() == 1

        with page.expect_navigation():
            page.click("[data-testid=move-paused]")
        assert page.inner_text("[data-testid=campaign-status]") == "paused"
        assert page.locator("[data-testid=move-running]").inner_text() == "Resume"
        with page.expect_navigation():
            page.click("[data-testid=move-stopped]")
        assert page.locator(".status-move").count() == 0
        page.reload()
        recent = page.inner_text("[data-testid=recent-attempts]")
        assert "+*********8001" in recent and "13800138001" not in recent

        cookies = {c["name"]: c["value"] for c in page.context.cookies()}
        browser.close()
    assert problems == []
    exported = httpx.get(served + "/api/v1/campaigns/bill-dec/contacts.csv", cookies=cookies)
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    assert [(r["phone"], r["outcome"], r["result"]) for r in rows] == [
        ("+8613800138001", "promised", '{"promise_date": "2026-12-25"}'),
        ("+8613800138002", "", "{}"),
    ]
    actions = [e.action for e in container.auth.audit_entries(resource_type="campaign", resource_id="bill-dec")]
    assert {"campaign.create", "campaign.running", "campaign.paused", "campaign.stopped", "campaign.export"} <= set(
        actions
    )


def test_agents_cannot_open_campaigns(served: str) -> None:
    with httpx.Client(base_url=served) as client:
        login = client.post("/api/v1/auth/login", json={"username": "andy", "password": PASSWORD})
        token = login.json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert client.get("/campaigns", headers=headers).status_code == 403
        assert client.get("/api/v1/campaigns/x/contacts.csv", headers=headers).status_code == 403
        assert client.get("/api/v1/campaigns/x/report", headers=headers).status_code == 403
