"""Process supervisor behind ``voxdesk serve``.

Starts each child process, restarts one that dies with exponential backoff (reset once it has run for
``stable_after_s``), and on SIGTERM/SIGINT stops all children: SIGTERM, then SIGKILL after ``shutdown_grace_s``.
Runs in the main process on the main thread (signal handlers need it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType

from core.logging import get_logger
from voxdesk.settings import SupervisorSettings

log = get_logger(__name__)


@dataclass(frozen=True)
class ChildSpec:
    """How to start one child: ``argv`` and extra environment variables."""

    name: str
    argv: Sequence[str]
    env: dict[str, str] | None = None


@dataclass
class _Child:
    spec: ChildSpec
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff_s: float = 0.0
    next_start_at: float = 0.0
    exit_codes: list[int] = field(default_factory=list)


class Supervisor:
    """Keeps a set of child processes running until asked to stop."""

    def __init__(
        self,
        children: Sequence[ChildSpec],
        settings: SupervisorSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = 0.2,
    ) -> None:
        self._children = [_Child(spec) for spec in children]
        self._settings = settings
        self._clock = clock
        self._poll_s = poll_s
        self._stopping = False

    @property
    def restarts(self) -> dict[str, int]:
        """How often each child was restarted after dying."""
        return {c.spec.name: c.restarts for c in self._children}

    def pids(self) -> dict[str, int | None]:
        """Current process id of each child (``None`` while waiting to restart)."""
        return {c.spec.name: (c.process.pid if c.process else None) for c in self._children}

    def request_stop(self, *_: object) -> None:
        """Ask the run loop to stop (safe from a signal handler)."""
        self._stopping = True

    def install_signal_handlers(self) -> None:
        """Stop cleanly on SIGTERM and SIGINT."""

        def handler(signum: int, frame: FrameType | None) -> None:
            self.request_stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self) -> None:
        """Start everything and supervise until :meth:`request_stop`; then stop all children."""
        for child in self._children:
            self._start(child)
        try:
            while not self._stopping:
                self.poll_once()
                time.sleep(self._poll_s)
        finally:
            self.stop_all()

    def poll_once(self) -> None:
        """Check every child once: note deaths, schedule and perform restarts."""
        now = self._clock()
        for child in self._children:
            if child.process is not None:
                code = child.process.poll()
                if code is None:
                    continue
                ran_for = now - child.started_at
                child.exit_codes.append(code)
                child.process = None
                if ran_for >= self._settings.stable_after_s:
                    child.backoff_s = self._settings.restart_backoff_initial_s
                else:
                    child.backoff_s = min(
                        max(child.backoff_s * 2, self._settings.restart_backoff_initial_s),
                        self._settings.restart_backoff_max_s,
                    )
                child.next_start_at = now + child.backoff_s
                log.warning(
                    "child exited; restarting after backoff",
                    child=child.spec.name,
                    exit_code=code,
                    ran_s=round(ran_for, 1),
                    backoff_s=child.backoff_s,
                )
            elif not self._stopping and now >= child.next_start_at:
                child.restarts += 1
                self._start(child)

    def stop_all(self) -> None:
        """SIGTERM every child, wait up to the grace period, then SIGKILL what is left."""
        running = [c for c in self._children if c.process is not None and c.process.poll() is None]
        for child in running:
            assert child.process is not None
            child.process.terminate()
        deadline = time.monotonic() + self._settings.shutdown_grace_s
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("child ignored SIGTERM; killing", child=child.spec.name)
                child.process.kill()
                child.process.wait()
        for child in self._children:
            child.process = None
        log.info("all children stopped")

    def _start(self, child: _Child) -> None:
        env = {**os.environ, **(child.spec.env or {})}
        child.process = subprocess.Popen(list(child.spec.argv), env=env)  # noqa: S603 - our own argv
        child.started_at = self._clock()
        log.info("child started", child=child.spec.name, pid=child.process.pid)
