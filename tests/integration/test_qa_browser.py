"""The QA pages in a real headless Chromium against the real app (uvicorn, SQLite): a qa user opens the queue and a
call, seeks the recording from the transcript, confirms and rejects findings, completes the review and opens the
analytics page with its SVG charts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.browser_helpers import serve_app, wait_js
from tests.qa_samples import T0, complaint, forbidden, inspection, reason, save, silence, write_wav
from voxdesk.container import Container

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the browser checks the pages, the API test covers PostgreSQL."""
    return f"sqlite:///{tmp_path / 'voxdesk.db'}"


@pytest.fixture
def served(container: Container, tmp_path: Path) -> Iterator[str]:
    """The app on a free port in a background thread, with three inspected calls (one with a real 20 s WAV)."""
    container.auth.create_user("quinn", PASSWORD, ["qa"], display_name="Quinn")
    wav = tmp_path / "imports" / "c-1.wav"
    write_wav(wav, seconds=20.0)
    save(
        container.qa_store,
        inspection("c-1", path=str(wav), findings=(reason("cards.report_lost_card"), forbidden(), complaint())),
        inspection("c-2", started_at=T0 + timedelta(days=1), agent_id="agent-2", findings=(complaint(), silence())),
        inspection("c-3", started_at=T0 + timedelta(days=2), team="wealth", findings=()),
    )
    with serve_app(container) as base:
        yield base


def test_qa_reviews_a_call_in_chromium(served: str, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--mute-audio",
                  "--autoplay-policy=no-user-gesture-required"],
        )  # fmt: skip
        page = browser.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.on("console", lambda msg: problems.append(f"{msg.text} {msg.location}") if msg.type == "error" else None)

        page.goto(served + "/login?next=/")
        page.fill("input[name=username]", "quinn")
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("main button[type=submit]")
        assert page.locator('[data-area="qa"] a').get_attribute("href") == "/qa"
        page.click('[data-area="qa"] a')
        page.wait_for_url(served + "/qa")

        rows = page.locator("[data-testid=qa-row]")
        assert rows.evaluate_all("els => els.map(e => e.dataset.callId)") == ["c-2", "c-1"]
        page.select_option("select[name=rule_id]", "forbidden_phrase")
        with page.expect_navigation():
            page.click("[data-testid=qa-filter-submit]")
        assert rows.evaluate_all("els => els.map(e => e.dataset.callId)") == ["c-1"]
        with page.expect_navigation():
            page.click('[data-call-id="c-1"] [data-testid=qa-open]')
        assert page.inner_text("[data-testid=qa-call-id]") == "c-1"

        # The recording loads; clicking a transcript line seeks to it and highlights it.
        wait_js(page, "document.getElementById('qa-audio').readyState >= 1", timeout_s=15)
        assert page.evaluate("document.getElementById('qa-audio').duration") == pytest.approx(20.0, abs=0.1)
        lines = page.locator("[data-testid=qa-line]")
        assert lines.count() == 5
        assert "flagged" in (lines.nth(2).get_attribute("class") or "")  # the promise of returns
        lines.nth(3).click()  # the complaint, 11.5 s in
        wait_js(page, "document.getElementById('qa-audio').currentTime >= 11.4", timeout_s=5)
        assert "playing" in (lines.nth(3).get_attribute("class") or "")
        page.evaluate("document.getElementById('qa-audio').pause()")

        # Clicking a finding seeks to it too.
        promise = page.locator('[data-testid=qa-finding][data-rule-id="forbidden_phrase"]')
        promise.locator("[data-testid=qa-seek]").click()
        wait_js(page, "Math.abs(document.getElementById('qa-audio').currentTime - 8.3) < 0.3", timeout_s=5)
        page.evaluate("document.getElementById('qa-audio').pause()")

        # Confirm one finding, reject the other: the score items follow.
        assert page.inner_text("[data-testid=qa-score]") == "0.0"
        promise.locator("[data-testid=qa-confirm]").click()
        wait_js(page, "document.querySelector('[data-rule-id=forbidden_phrase]').classList.contains('confirmed')")
        grumble = page.locator('[data-testid=qa-finding][data-rule-id="customer_complaint"]')
        grumble.locator("[data-testid=qa-reject]").click()
        wait_js(page, "document.querySelector('[data-rule-id=customer_complaint]').classList.contains('rejected')")
        assert page.inner_text("[data-testid=qa-score]") == "0"  # still auto-failed on the confirmed promise

        page.fill("[data-testid=qa-override]", "35")
        page.click("[data-testid=qa-complete]")
        wait_js(page, "document.getElementById('qa-complete-status').textContent.length > 0")
        assert page.inner_text("[data-testid=qa-final-score]") == "35"
        page.screenshot(path=str(tmp_path / "qa-call.png"), full_page=True)

        # After a reload the decisions and the review are still there.
        page.reload()
        assert "confirmed" in (promise.get_attribute("class") or "")
        assert "rejected" in (grumble.get_attribute("class") or "")
        assert "live" in (page.locator("[data-testid=qa-review-status]").get_attribute("class") or "")

        page.goto(served + "/qa/analytics?since=2026-03-01&until=2026-03-10&lang=en")
        charts = page.locator("svg.chart").evaluate_all("els => els.map(e => e.dataset.chart)")
        assert set(charts) >= {"reasons", "calls", "quality", "agents", "teams", "complaints", "topics", "agreement"}
        assert page.locator('svg[data-chart="reasons"] rect.bar').count() >= 3
        assert page.locator('svg[data-chart="agents"] rect.bar').count() == 2
        assert page.locator('svg[data-chart="calls"] circle').count() >= 3
        csv_link = page.locator("[data-testid=csv-trends]").get_attribute("href") or ""
        assert csv_link.startswith("/api/qa/analytics/trends?") and "format=csv" in csv_link
        exported = page.request.get(served + csv_link)
        assert exported.ok and exported.text().lstrip("\ufeff").startswith("period_start,calls")
        page.screenshot(path=str(tmp_path / "qa-analytics.png"), full_page=True)
        browser.close()
    assert problems == [], problems
