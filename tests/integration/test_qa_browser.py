"""The QA review pages in a real headless Chromium (Playwright on Debian's chromium) against the real app served by
uvicorn in this process: a qa user opens the queue from the home page, opens a call, clicks a transcript line and
the recording (a real WAV) seeks there, confirms one finding and rejects another, adds a missed one, completes the
review, and the analytics page shows its server-rendered SVG charts. Screenshots go to ``$VOXDESK_TEST_ARTIFACTS``
(default ``var/test-artifacts/qa``).

Skips when Chromium or Playwright is missing."""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from qa.models import Finding, Turn
from tests.qa_samples import (
    CLOSING,
    COMPLAINT,
    GREETING,
    LOST_CARD,
    PROMISE,
    complaint,
    forbidden,
    inspection,
    reason,
    save,
    write_wav,
)
from voxdesk.container import Container
from voxdesk.server.app import create_app

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--autoplay-policy=no-user-gesture-required",
]
PASSWORD = "correct horse battery"
CARD_TURN = Turn("agent", "Your card number is 4111111111111111, right?", 17500, 20000)
PII = Finding("agent_pii", "critical", "4111111111111111", 17500, 20000, "agent", "card")

if not CHROMIUM.exists() or importlib.util.find_spec("playwright") is None:
    pytest.skip("needs Debian's chromium and the playwright package", allow_module_level=True)


def artifacts() -> Path:
    folder = Path(os.environ.get("VOXDESK_TEST_ARTIFACTS", ROOT / "var" / "test-artifacts" / "qa"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def base_url(container: Container, tmp_path: Path) -> Iterator[str]:
    """The app on a free local port (uvicorn in a thread) with one qa user and three inspected calls."""
    import uvicorn

    container.auth.create_user("quinn", PASSWORD, ["qa"])
    wav = tmp_path / "imports" / "c-1.wav"
    write_wav(wav, seconds=22.0)
    save(
        container.qa_store,
        inspection(
            "c-1",
            turns=(GREETING, LOST_CARD, PROMISE, COMPLAINT, CLOSING, CARD_TURN),
            findings=(reason("cards.report_lost_card"), forbidden(), complaint(), PII),
            path=str(wav),
        ),
        inspection("c-2", agent_id="agent-2", findings=(complaint(),)),
        inspection("c-3", findings=()),
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(container), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        pytest.fail("the app did not come up")
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_qa_user_reviews_a_call_in_chromium(base_url: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    out = artifacts()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(base_url + "/login")
            page.fill("input[name=username]", "quinn")
            page.fill("input[name=password]", PASSWORD)
            page.click("main button[type=submit]")
            page.wait_for_url(base_url + "/")
            page.click('li[data-area="qa"] a[href="/qa"]')  # the home page links the queue for qa users

            page.wait_for_url(base_url + "/qa")
            page.goto(base_url + "/qa?lang=en")
            expect(page.get_by_test_id("qa-row")).to_have_count(2)  # the flagged calls, newest first
            page.screenshot(path=str(out / "1-queue.png"))
            page.click('tr[data-call-id="c-1"] [data-testid=qa-open]')

            page.wait_for_url(base_url + "/qa/calls/c-1")
            expect(page.get_by_test_id("qa-line")).to_have_count(6)
            page.wait_for_function("document.getElementById('qa-audio').readyState >= 1", timeout=15_000)
            assert page.evaluate("document.getElementById('qa-audio').duration") == pytest.approx(22.0, abs=0.1)
            line = page.get_by_test_id("qa-line").nth(1)  # the customer's lost card, from 3.5 s
            line.click()
            page.wait_for_function("document.getElementById('qa-audio').currentTime >= 3.4", timeout=10_000)
            expect(line).to_have_class(re.compile(r"\bplaying\b"))
            flagged = page.get_by_test_id("qa-line").nth(2)  # the promise of returns carries its finding
            expect(flagged).to_have_class(re.compile(r"\bflagged\b"))
            expect(flagged.locator(".badge.rule")).to_have_text("forbidden_phrase")

            findings = page.get_by_test_id("qa-finding")
            promise = findings.filter(has_text="forbidden_phrase")
            pii = findings.filter(has_text="agent_pii")
            pii.get_by_test_id("qa-seek").click()
            page.wait_for_function("document.getElementById('qa-audio').currentTime >= 17.4", timeout=10_000)
            expect(page.get_by_test_id("qa-line").nth(5)).to_have_class(re.compile(r"\bflagged playing\b"))
            expect(page.get_by_test_id("qa-score")).to_have_text(re.compile(r"^0(\.0)?$"))  # auto-failed

            promise.get_by_test_id("qa-confirm").click()
            expect(promise.get_by_test_id("qa-decision")).to_have_text("confirmed")
            pii.get_by_test_id("qa-reject").click()
            expect(pii.get_by_test_id("qa-decision")).to_have_text("rejected")
            expect(page.get_by_test_id("qa-score")).to_have_text("0")  # the confirmed promise still auto-fails it
            promise.get_by_test_id("qa-reject").click()  # a later decision replaces the earlier one
            expect(promise.get_by_test_id("qa-decision")).to_have_text("rejected")
            expect(page.get_by_test_id("qa-score")).to_have_text("97.5")
            badge = page.locator("#qa-transcript .badge[data-finding-id]", has_text="forbidden_phrase")
            expect(badge).to_have_class(re.compile(r"\brejected\b"))
            promise.get_by_test_id("qa-confirm").click()
            expect(promise.get_by_test_id("qa-decision")).to_have_text("confirmed")
            expect(page.get_by_test_id("qa-score")).to_have_text("0")

            form = page.get_by_test_id("qa-add-form")
            form.locator("select[name=rule_id]").select_option("greeting_missing")
            form.locator("select[name=severity]").select_option("minor")
            form.locator("input[name=end_s]").fill("3")
            form.get_by_test_id("qa-add-evidence").fill("greeting cut short")
            with page.expect_navigation():
                form.get_by_test_id("qa-add-submit").click()
            expect(findings).to_have_count(5)
            added = findings.filter(has_text="greeting_missing")
            expect(added).to_contain_text("reviewer")
            expect(added.get_by_test_id("qa-decision")).to_have_text("confirmed")
            page.screenshot(path=str(out / "2-call.png"), full_page=True)

            page.get_by_test_id("qa-override").fill("40")
            page.get_by_test_id("qa-complete").click()
            expect(page.get_by_test_id("qa-complete-status")).to_have_text("Review completed")
            expect(page.get_by_test_id("qa-final-score")).to_have_text("40")
            expect(page.get_by_test_id("qa-review-status")).to_have_text("reviewed")

            page.goto(base_url + "/qa?review_status=reviewed")
            expect(page.get_by_test_id("qa-row")).to_have_count(1)
            page.click("[data-testid=qa-analytics-link]")
            page.wait_for_url(base_url + "/qa/analytics")
            page.goto(base_url + "/qa/analytics?since=2026-03-01&until=2026-03-31&period=day")
            charts = page.locator("svg.chart")
            assert charts.count() == 9
            for name in ("reasons", "calls", "quality", "agents", "teams", "complaints", "topics"):
                assert page.locator(f'svg[data-chart="{name}"] .bar, svg[data-chart="{name}"] circle').count() > 0, name
            csv_href = (
                "/api/qa/analytics/reasons?period=day&since=2026-03-01T00%3A00%3A00%2B00%3A00"
                "&until=2026-04-01T00%3A00%3A00%2B00%3A00&lang=en&format=csv"
            )
            expect(page.get_by_test_id("csv-reasons")).to_have_attribute("href", csv_href)
            csv_text = page.request.get(base_url + csv_href).text()
            assert csv_text.lstrip("\ufeff").startswith("period_start,reason,title,calls")
            page.screenshot(path=str(out / "3-analytics.png"), full_page=True)
            assert not errors, errors
        finally:
            browser.close()
