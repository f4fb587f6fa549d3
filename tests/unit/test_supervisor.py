"""The process supervisor restarts dead children with backoff and stops them all."""

from __future__ import annotations

import sys
import time

import pytest

from voxdesk.settings import SupervisorSettings
from voxdesk.supervisor import ChildSpec, Supervisor

pytestmark = pytest.mark.unit

FAST = SupervisorSettings(
    restart_backoff_initial_s=0.05, restart_backoff_max_s=0.4, stable_after_s=60, shutdown_grace_s=2
)


def test_crashing_child_restarts_with_growing_backoff() -> None:
    sup = Supervisor([ChildSpec("crasher", [sys.executable, "-c", "raise SystemExit(3)"])], FAST, poll_s=0.01)
    sup._start(sup._children[0])
    child = sup._children[0]
    backoffs: list[float] = []
    deadline = time.monotonic() + 20
    while len(backoffs) < 5 and time.monotonic() < deadline:
        seen = len(child.exit_codes)
        sup.poll_once()
        if len(child.exit_codes) > seen:
            backoffs.append(child.backoff_s)
        time.sleep(0.01)
    sup.stop_all()
    assert backoffs == [0.05, 0.1, 0.2, 0.4, 0.4]
    assert set(sup._children[0].exit_codes) == {3}
    assert sup.restarts["crasher"] >= 4


def test_stop_all_terminates_then_kills() -> None:
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    )
    polite = "import time; time.sleep(60)"
    settings = SupervisorSettings(shutdown_grace_s=0.5)
    sup = Supervisor(
        [ChildSpec("stubborn", [sys.executable, "-c", stubborn]), ChildSpec("polite", [sys.executable, "-c", polite])],
        settings,
    )
    for child in sup._children:
        sup._start(child)
    processes = [c.process for c in sup._children]
    time.sleep(0.5)
    started = time.monotonic()
    sup.stop_all()
    assert time.monotonic() - started < 5
    assert all(p is not None and p.poll() is not None for p in processes)
    assert sup.pids() == {"stubborn": None, "polite": None}
