"""Helpers of the browser tests: a free TCP port, the app served by uvicorn in a thread, and polling a JavaScript
expression under the pages' Content-Security-Policy."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import uvicorn

from voxdesk.container import Container
from voxdesk.server.app import create_app

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = ["free_port", "serve_app", "wait_js"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_app(container: Container) -> Iterator[str]:
    """The app around ``container`` on a free port in a background thread; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(container), host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "server did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def wait_js(page: Page, expression: str, timeout_s: float = 10.0) -> None:
    """Poll a JavaScript expression from Python until it is truthy.

    Playwright's ``wait_for_function`` compiles the expression inside the page when it has to poll, which the app's
    Content-Security-Policy (no 'unsafe-eval') rightly forbids; ``page.evaluate`` goes through the DevTools protocol
    and is not subject to it."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for: {expression}")
        time.sleep(0.05)
