"""`voxdesk serve` end to end: a real supervised server process, a real headless Chromium logging in."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser_helpers import free_port

pytestmark = [pytest.mark.integration, pytest.mark.browser]

CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[2]


class Served:
    def __init__(self, process: subprocess.Popen[str], base: str, password: str, log: Path) -> None:
        self.process, self.base, self.password, self.log = process, base, password, log


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """`voxdesk serve` on a fresh SQLite database in tmp_path (loads the demo bank, seeds the admin)."""
    port = free_port()
    env = {
        **os.environ,
        "VOXDESK_VAR_DIR": str(tmp_path / "var"),
        "VOXDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'voxdesk.db'}",
        "VOXDESK_BUS_ZMQ_FRONTEND": f"ipc://{tmp_path}/bus-in.sock",
        "VOXDESK_BUS_ZMQ_BACKEND": f"ipc://{tmp_path}/bus-out.sock",
        "VOXDESK_SERVER_PORT": str(port),
        "VOXDESK_TELEPHONY_SIP_PORT": str(free_port()),
        "VOXDESK_TELEPHONY_RTP_PORT_START": str(30000 + port % 1000 * 20),
        "VOXDESK_LOGGING_JSON_LOGS": "true",
        "VOXDESK_MODELS_CACHE_DIR": str(ROOT / "var" / "models"),
    }
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "voxdesk.cli", "serve"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"voxdesk serve exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    else:
        process.kill()
        pytest.fail(f"server not ready:\n{log.read_text()}")
    match = re.search(r"user 'admin' with password\s+(\S+)", log.read_text())
    assert match, log.read_text()
    try:
        yield Served(process, base, match.group(1), log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                pytest.fail("voxdesk serve did not stop on SIGTERM")


def test_admin_logs_in_with_chromium_and_sees_home(served: Served, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        page = browser.new_page()
        page.goto(served.base + "/")
        assert page.url.startswith(served.base + "/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", "wrong password")
        page.click("main button[type=submit]")
        assert "Invalid username or password" in page.inner_text("[data-testid=login-error]")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", served.password)
        page.click("main button[type=submit]")
        # The first-run admin must change the password before anything else.
        page.wait_for_url(served.base + "/password")
        page.fill("input[name=current_password]", served.password)
        page.fill("input[name=new_password]", "a much better secret")
        with page.expect_navigation():
            page.click("main button[type=submit]")
        assert page.url == served.base + "/login"
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", "a much better secret")
        with page.expect_navigation():
            page.click("main button[type=submit]")
        assert page.url == served.base + "/", page.inner_text("main")
        areas = page.locator("[data-testid=areas] li").evaluate_all("els => els.map(e => e.dataset.area)")
        assert {"customers", "users", "audit"} <= set(areas)
        page.screenshot(path=str(tmp_path / "home.png"))
        page.click("text=Customer profiles")
        rows = page.locator("[data-testid=customers] tbody tr")
        assert rows.count() == 50  # one page of the 200-customer demo bank
        rows.first.locator("a").click()
        assert page.locator("[data-testid=profile]").is_visible()
        page.goto(served.base + "/customers/NO-SUCH-ID")
        page.goto(served.base + "/customers?q=%2B8613800138000")
        page.click("[data-testid=logout]")
        page.wait_for_url(re.compile(r".*/login"))
        browser.close()
    # No customer data in the logs: names and phone numbers of the demo bank never appear.
    from voxdesk.demo.generate import generate_customers

    customers_csv, _ = generate_customers(200, 20261122)
    log = served.log.read_text()
    for line in customers_csv.splitlines()[1:]:
        fields = line.split(",")
        name, phones = fields[1], fields[2]
        assert name not in log
        for phone in phones.split(";"):
            assert re.sub(r"\D", "", phone)[-11:] not in re.sub(r"[ -]", "", log)


def test_supervisor_restarts_a_crashed_server_and_stops_on_sigterm(served: Served) -> None:
    import psutil

    parent = psutil.Process(served.process.pid)

    def server_children() -> list[psutil.Process]:
        found = []
        for p in parent.children():
            try:
                if "voxdesk.server.main" in " ".join(p.cmdline()):
                    found.append(p)
            except psutil.Error:  # a killed child not yet reaped
                continue
        return found

    names = {" ".join(p.cmdline()).split(" -m ")[-1].split()[0] for p in parent.children()}
    assert names == {
        "voxdesk.server.main",
        "voxdesk.speech_main",
        "voxdesk.media_main",
        "voxdesk.agent_main",
        "voxdesk.qa_main",
        "voxdesk.dialer_main",
    }
    first = server_children()
    assert len(first) == 1
    first[0].kill()
    deadline = time.monotonic() + 30
    new_pid = None
    while time.monotonic() < deadline:
        kids = server_children()
        if kids and kids[0].pid != first[0].pid:
            try:
                if httpx.get(f"{served.base}/healthz", timeout=1).status_code == 200:
                    new_pid = kids[0].pid
                    break
            except httpx.HTTPError:
                pass
        time.sleep(0.3)
    assert new_pid is not None, served.log.read_text()
    all_children = parent.children()
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=20) == 0
    for child in all_children:  # no leaked processes
        assert not psutil.pid_exists(child.pid) or psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE
