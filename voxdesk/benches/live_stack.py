"""A private, complete Voxdesk for benchmarks and end-to-end tests: the same processes ``voxdesk serve`` runs.

:class:`LiveStack` (blocking; CLI or test thread) prepares a fresh SQLite database in a work folder (migrations,
the demo bank, the given staff users), starts a ZeroMQ bus proxy in this process with an :class:`EventRecorder`,
then the speech worker(s), the SIP media worker(s), the agent process and the web server as child processes on
free loopback ports, with the caller's settings except for ports, folders and ``overrides`` (``VOXDESK_*``
environment values, e.g. the lines under test as JSON). Media workers write their statistics file at exit (per-leg
first-frame wall clock times, for latency measurements). :meth:`LiveStack.close` always tears everything down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import zmq

from core.bus.zmq_bus import ZmqBusProxy
from core.logging import get_logger
from voxdesk.benches.calls import (
    BenchError,
    EventRecorder,
    free_port_block,
    private_container,
    private_env,
    read_stats_files,
    stop_processes,
)
from voxdesk.benches.children import StackChild, spawn_child
from voxdesk.settings import Settings

__all__ = ["LiveStack", "StaffUser"]

log = get_logger(__name__)
_READY_TIMEOUT_S = 180.0
_STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class StaffUser:
    """A user created in the stack's database (``sip_user`` attaches an agent's panel to their softphone)."""

    username: str
    password: str
    roles: tuple[str, ...] = ("agent",)
    sip_user: str | None = None


class LiveStack:
    """See the module docstring. ``start()`` then use ``base_url`` / ``sip_port``; ``close()`` at the end."""

    def __init__(
        self,
        settings: Settings,
        work: Path,
        *,
        users: Sequence[StaffUser] = (),
        overrides: Mapping[str, str] | None = None,
        media_workers: int = 1,
        config_file: Path | None = None,
    ) -> None:
        self.settings, self.work, self.users = settings, work, tuple(users)
        self.media_workers = media_workers
        self.sip_port = free_port_block(media_workers)
        self.rtp_port = free_port_block(media_workers, step=100)
        self.http_port = _free_tcp_port()
        self.base_url = f"http://127.0.0.1:{self.http_port}"
        self.env = private_env(
            settings,
            work,
            database="stack.db",
            media_workers=media_workers,
            sip_port=self.sip_port,
            rtp_port=self.rtp_port,
            config_file=config_file,
        )
        self.env.update(
            VOXDESK_KNOWLEDGE_INDEX_DIR=str(settings.knowledge.index_dir.resolve()),
            VOXDESK_SERVER_HOST="127.0.0.1",
            VOXDESK_SERVER_PORT=str(self.http_port),
            VOXDESK_ASSIST_AGENT_WORKERS="1",
            **(dict(overrides) if overrides else {}),
        )
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.proxy: ZmqBusProxy | None = None
        self.recorder: EventRecorder | None = None
        self.children: list[StackChild] = []

    # --- lifecycle ------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Prepare the database, start the bus and every process, and wait until all are ready (minutes at most).

        Raises :class:`BenchError` with the failing child's last log lines when one does not start.
        """
        self._prepare()
        self.proxy = ZmqBusProxy(self.env["VOXDESK_BUS_ZMQ_FRONTEND"], self.env["VOXDESK_BUS_ZMQ_BACKEND"])
        self.proxy.start()
        self.recorder = EventRecorder(
            self.context,
            self.proxy.backend,
            topics=("call.", "speech.", "nlu.", "assist.", "bot.", "navigator.", "dialer."),
        )
        speech = int(self.env.get("VOXDESK_ASR_SPEECH_WORKERS", self.settings.asr.speech_workers))
        for i in range(speech):
            self._spawn(
                f"speech-{i}",
                ["voxdesk.speech_main", "--index", str(i), "--stats-file", str(self.work / f"speech-{i}.json")],
                "speech worker listening",
            )
        for i in range(self.media_workers):
            self._spawn(
                f"media-{i}",
                ["voxdesk.media_main", "--index", str(i), "--stats-file", str(self.work / f"media-{i}.json")],
                "sip media worker listening",
            )
        self._spawn("agent-0", ["voxdesk.agent_main", "--index", "0"], "agent process ready")
        self._spawn("server", ["voxdesk.server.main"], "Application startup complete")
        deadline = time.monotonic() + _READY_TIMEOUT_S
        for child in self.children:
            child.wait_ready(max(0.0, deadline - time.monotonic()))
        self._wait_http()

    def stop_media(self) -> list[dict[str, Any]]:
        """Stop the media workers (SIGTERM) and return their statistics files' contents."""
        return self._stop_and_read("media-")

    def stop_speech(self) -> list[dict[str, Any]]:
        """Stop the speech workers (after the media workers: their streams end first) and return their statistics."""
        return self._stop_and_read("speech-")

    def _stop_and_read(self, prefix: str) -> list[dict[str, Any]]:
        children = [c for c in self.children if c.name.startswith(prefix)]
        self._stop(children)
        return read_stats_files(self.work, [(c.name, c.process) for c in children])

    def close(self) -> None:
        """Stop every child (SIGTERM, then SIGKILL), the recorder and the bus proxy."""
        self._stop(self.children)
        if self.recorder is not None:
            self.recorder.close()
        if self.proxy is not None:
            self.proxy.close()
        self.context.destroy(linger=0)

    def log_tail(self, lines: int = 30) -> str:
        """The last log lines of every child (for error messages)."""
        return "\n".join(f"--- {c.name}\n" + "\n".join(c.lines[-lines:]) for c in self.children)

    # --- helpers --------------------------------------------------------------------------------------------

    def token(self, username: str, password: str) -> str:
        """A bearer token for a staff user (API login)."""
        response = httpx.post(
            self.base_url + "/api/v1/auth/login", json={"username": username, "password": password}, timeout=10
        )
        if response.status_code != 200:
            raise BenchError(f"login as {username} failed: {response.status_code} {response.text}")
        return str(response.json()["token"])

    def _prepare(self) -> None:
        from voxdesk.db import upgrade
        from voxdesk.demo.loader import load_demo

        for noisy in ("alembic", "httpx"):  # their INFO lines would drown the benchmark's table
            logging.getLogger(noisy).setLevel(logging.WARNING)
        (self.work / "var").mkdir(parents=True, exist_ok=True)
        container = private_container(self.settings, self.env)
        try:
            upgrade(container.engine)
            container.auth.ensure_admin()
            load_demo(container)
            for user in self.users:
                container.auth.create_user(user.username, user.password, user.roles, sip_user=user.sip_user)
        finally:
            container.close()

    def _spawn(self, name: str, argv: list[str], marker: str) -> None:
        self.children.append(spawn_child(name, argv, self.env, self.work, marker))

    def _wait_http(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base_url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise BenchError(f"web server not ready:\n{self.log_tail()}")

    def _stop(self, children: Sequence[StackChild]) -> None:
        stop_processes([(c.name, c.process) for c in children])


def _free_tcp_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
