"""Child processes of the benchmarks and end-to-end stacks: start ``python -m <module>``, keep its output, wait for
its ready line. Blocking; the caller's thread (a daemon thread per child reads its output)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import VoxdeskError

__all__ = ["BenchError", "StackChild", "spawn_child"]


class BenchError(VoxdeskError):
    """The benchmark could not run (a missing tool, no data, a process that did not start)."""


@dataclass
class StackChild:
    """One child process of a private stack: its log lines (the last 300) and whether it said it is ready."""

    name: str
    process: subprocess.Popen[str]
    ready: threading.Event
    lines: list[str] = field(default_factory=list)

    def wait_ready(self, timeout_s: float) -> None:
        """Block until the child logged its ready marker; raises :class:`BenchError` with its last log lines
        when it exits or ``timeout_s`` (s) passes first."""
        deadline = time.monotonic() + timeout_s
        while not self.ready.wait(0.2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(self.lines[-20:])
                raise BenchError(f"{self.name} did not start (exit {self.process.poll()}):\n{tail}")


def spawn_child(name: str, argv: list[str], env: Mapping[str, str], cwd: Path, marker: str) -> StackChild:
    """Start ``python -m <argv>`` with ``env`` in ``cwd``; a thread keeps its output and watches for ``marker``."""
    process = subprocess.Popen(  # noqa: S603 - our own modules, fixed argv
        [sys.executable, "-m", *argv],
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    child = StackChild(name, process, threading.Event())

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            child.lines.append(line.rstrip())
            del child.lines[:-300]
            if marker in line:
                child.ready.set()

    threading.Thread(target=drain, name=f"stack-{name}-log", daemon=True).start()
    return child
