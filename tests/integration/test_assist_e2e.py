"""The live assist panel end to end, with every part real.

A private Voxdesk (speech worker, SIP media worker, agent process, web server: :class:`LiveStack`) serves an
English assisted line whose agent is a baresip softphone (:class:`BaresipAgent`, SIP user ``agent101``). A second
baresip calls the line as a demo-bank customer and asks, in speech synthesised by Piper, how to report a lost
card; the agent's softphone answers and, a few seconds later, promises guaranteed returns. Headless Chromium
(Playwright on Debian's chromium), logged in as the agent, must show the live transcript of both legs, the
customer's card, the right suggestion (the approved lost-card script) and the compliance alert; the supervisor
view must list the call; after hangup the post-call summary must be on the customer's timeline. Screenshots go
to ``$VOXDESK_TEST_ARTIFACTS`` (default ``var/test-artifacts/assist``).

Skips when baresip, Chromium, Playwright, Piper or the provisioned Whisper model is missing.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from core.audio import AudioClip, resample, write_audio
from telephony.peer_agent import BaresipAgent
from telephony.peers import BaresipCaller, CallOutcome
from voxdesk.benches.live_stack import LiveStack, StaffUser
from voxdesk.settings import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.sip, pytest.mark.models, pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
QUESTION = "Hi, good morning. I lost my credit card yesterday. How do I report it?"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update"]  # fmt: skip
PROMISE = "This fund has guaranteed returns, you cannot lose any money."

if not BaresipCaller.available():
    pytest.skip("baresip is not installed (apt-get install baresip-core)", allow_module_level=True)
if not CHROMIUM.exists() or importlib.util.find_spec("playwright") is None:
    pytest.skip("needs Debian's chromium and the playwright package", allow_module_level=True)
if importlib.util.find_spec("piper") is None or not (ROOT / "var" / "models").is_dir():
    pytest.skip("needs piper-tts and provisioned models (voxdesk models provision)", allow_module_level=True)


def artifacts() -> Path:
    folder = Path(os.environ.get("VOXDESK_TEST_ARTIFACTS", ROOT / "var" / "test-artifacts" / "assist"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def speech_wav(path: Path, text: str, *, lead_s: float, tail_s: float) -> Path:
    """``text`` spoken by the bundled Piper voice, at 8 kHz, with silence before and after."""
    from agent.tts import PiperVoice

    clip = PiperVoice.load().synthesize(text)
    pcm = resample(clip.samples, clip.sample_rate, 8000).astype(np.int16)
    silence = lambda s: np.zeros(int(s * 8000), dtype=np.int16)  # noqa: E731
    write_audio(path, AudioClip(np.concatenate([silence(lead_s), pcm, silence(tail_s)]), 8000, 1), subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveStack, BaresipAgent]]:
    work = tmp_path_factory.mktemp("assist-stack")
    agent = BaresipAgent(work_dir=work, user="agent101", hold_s=30.0)
    lines = (
        '[{"name": "assisted-en", "kind": "assisted", "number": "95599", "lang": "en", "skill_group": "cards", '
        f'"agent_uri": "{agent.uri}"}}]'
    )
    users = [
        StaffUser("agent1", "agent1-password", ("agent",), "agent101"),
        StaffUser("super1", "super1-password", ("supervisor",)),
    ]
    settings = load_settings()
    live = LiveStack(settings, work, users=users, overrides={"VOXDESK_TELEPHONY_LINES": lines})
    try:
        live.start()
        yield live, agent
    finally:
        agent.stop()
        live.close()


def customer_phone(live: LiveStack, token: str) -> tuple[str, dict[str, Any]]:
    """A demo customer who consented to marketing (their phone is the caller number)."""
    page = httpx.get(live.base_url + "/api/v1/customers?limit=200", headers={"Authorization": f"Bearer {token}"})
    assert page.status_code == 200, page.text
    for c in page.json()["items"]:
        if c["phones"] and any(x["kind"] == "marketing_calls" and x["granted"] for x in c["consents"]):
            return c["phones"][0], c
    pytest.fail("no demo customer with marketing consent")


def test_agent_sees_transcript_suggestion_and_alert_on_a_real_call(
    stack: tuple[LiveStack, BaresipAgent], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    live, agent = stack
    out = artifacts()
    supervisor_token = live.token("super1", "super1-password")
    phone, customer = customer_phone(live, supervisor_token)
    customer_wav = speech_wav(tmp_path / "customer.wav", QUESTION, lead_s=2.0, tail_s=16.0)
    agent_wav = speech_wav(tmp_path / "agent.wav", PROMISE, lead_s=9.0, tail_s=2.0)
    agent.start(agent_wav)
    outcome: dict[str, CallOutcome] = {}

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=BROWSER_ARGS,
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(live.base_url + "/login")
            page.fill("input[name=username]", "agent1")
            page.fill("input[name=password]", "agent1-password")
            page.click("button[type=submit]")
            page.goto(live.base_url + "/assist?lang=en")
            expect(page.get_by_test_id("call-status")).to_contain_text("Waiting", timeout=15_000)
            page.screenshot(path=str(out / "1-waiting.png"))

            caller = BaresipCaller(work_dir=tmp_path, caller_user=phone)
            target = f"sip:95599@127.0.0.1:{live.sip_port}"
            thread = threading.Thread(
                target=lambda: outcome.setdefault("call", caller.call(target, customer_wav)), daemon=True
            )
            thread.start()

            expect(page.get_by_test_id("call-status")).to_contain_text("On call", timeout=20_000)
            expect(page.get_by_test_id("customer-name")).to_be_visible(timeout=10_000)
            expect(page.get_by_test_id("line-customer").first).to_contain_text("card", timeout=25_000)
            card = page.locator('[data-testid=suggestion][data-question-id="cards.report_lost_card"]')
            expect(card).to_be_visible(timeout=10_000)
            expect(card.get_by_test_id("suggestion-script")).not_to_be_empty()
            page.screenshot(path=str(out / "2-suggestion.png"), full_page=True)

            expect(page.get_by_test_id("line-agent").first).to_contain_text("guarantee", timeout=25_000)
            alert = page.locator('[data-testid=alert][data-rule-id="agent.promises.guaranteed_return"]')
            expect(alert).to_be_visible(timeout=10_000)
            page.screenshot(path=str(out / "3-alert.png"), full_page=True)

            card.get_by_test_id("suggestion-used").click()
            expect(card).to_have_class("suggestion used", timeout=5_000)

            sup = browser.new_page(viewport={"width": 1400, "height": 800})
            sup.goto(live.base_url + "/login")
            sup.fill("input[name=username]", "super1")
            sup.fill("input[name=password]", "super1-password")
            sup.click("button[type=submit]")
            sup.goto(live.base_url + "/supervisor?lang=en")
            row = sup.get_by_test_id("live-call").first
            expect(row.get_by_test_id("agent")).to_have_text("agent101", timeout=10_000)
            sup.screenshot(path=str(out / "4-supervisor.png"), full_page=True)

            thread.join(timeout=60)
            expect(page.get_by_test_id("call-status")).to_contain_text("ended", timeout=20_000)
            page.screenshot(path=str(out / "5-ended.png"), full_page=True)
            assert not errors, errors
        finally:
            browser.close()

    call = outcome.get("call")
    assert call is not None and call.answered, call.log if call else "caller never returned"
    assert agent.stop().answered
    headers = {"Authorization": f"Bearer {supervisor_token}"}
    deadline = time.monotonic() + 20
    summaries: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not summaries:
        timeline = httpx.get(f"{live.base_url}/api/v1/customers/{customer['customer_id']}/timeline", headers=headers)
        summaries = [e for e in timeline.json() if e["kind"] == "call" and e["data"].get("source") == "extractive"]
        time.sleep(0.5)
    assert summaries, "no post-call summary on the customer's timeline"
    assert "card" in (summaries[0]["data"]["reason"] + summaries[0]["summary"]).lower()
    feedback = httpx.get(live.base_url + "/api/v1/assist/recent", headers=headers).json()
    assert feedback and feedback[0]["suggestions"] >= 1 and feedback[0]["alerts"] >= 1
    assert (out / "3-alert.png").stat().st_size > 10_000
