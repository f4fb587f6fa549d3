"""What ``voxdesk serve`` does: prepare the database, seed, start the bus proxy, supervise the children."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rich.console import Console

from core.logging import get_logger
from voxdesk.container import build_container
from voxdesk.db import upgrade
from voxdesk.settings import Settings
from voxdesk.supervisor import ChildSpec, Supervisor

log = get_logger(__name__)


def prepare(settings: Settings, console: Console) -> None:
    """Migrate the database, create the first admin (credentials printed once) and load the demo bank when
    the database has no customers (``demo.load_on_empty``)."""
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    container = build_container(settings)
    try:
        upgrade(container.engine)
        password = container.auth.ensure_admin()
        if password is not None:
            console.print(
                "\n[bold yellow]First run: created user 'admin' with password[/bold yellow] "
                f"[bold]{password}[/bold]\n  (shown only this once; you will be asked to change it at first login)\n"
            )
        if settings.demo.load_on_empty and container.profiles.count() == 0 and not settings.production:
            from voxdesk.demo.loader import load_demo

            console.print(load_demo(container).describe())
    finally:
        container.close()


def server_child(config_file: Path | None) -> ChildSpec:
    """The web server child process."""
    env = {"VOXDESK_CONFIG": str(config_file.resolve())} if config_file else {}
    return ChildSpec("server", [sys.executable, "-m", "voxdesk.server.main"], env=env)


def worker_children(settings: Settings, config_file: Path | None) -> list[ChildSpec]:
    """One speech worker per ``asr.speech_workers`` (each binds its own audio endpoint), one SIP media worker
    per ``telephony.media_workers`` (worker ``i`` on ``telephony.sip_port + i``) and ``assist.agent_workers``
    agent processes (live assist and the navigator), the QA process that inspects every recorded call
    (``qa.auto_inspect``) and the outbound dialer (``dialer.enabled``)."""
    env = {"VOXDESK_CONFIG": str(config_file.resolve())} if config_file else {}
    speech = [
        ChildSpec(f"speech-{i}", [sys.executable, "-m", "voxdesk.speech_main", "--index", str(i)], env=env)
        for i in range(settings.asr.speech_workers)
    ]
    media = [
        ChildSpec(f"media-{i}", [sys.executable, "-m", "voxdesk.media_main", "--index", str(i)], env=env)
        for i in range(settings.telephony.media_workers)
    ]
    dialer = (
        [ChildSpec("dialer", [sys.executable, "-m", "voxdesk.dialer_main"], env=env)] if settings.dialer.enabled else []
    )
    agents = [
        ChildSpec(f"agent-{i}", [sys.executable, "-m", "voxdesk.agent_main", "--index", str(i)], env=env)
        for i in range(settings.assist.agent_workers)
    ]
    qa = (
        [ChildSpec("qa", [sys.executable, "-m", "voxdesk.qa_main"], env=env)]
        if settings.qa.auto_inspect and settings.qa.workers > 0
        else []
    )
    return speech + media + agents + qa + dialer


def run_serve(settings: Settings, *, config_file: Path | None, console: Console) -> None:
    """Run until SIGTERM/SIGINT. Raises :class:`core.errors.ConfigError` for unsafe production settings."""
    if settings.production:
        settings.check_production()
    prepare(settings, console)
    # Children read the same settings; overrides given on the command line travel as environment variables.
    os.environ["VOXDESK_SERVER_HOST"] = settings.server.host
    os.environ["VOXDESK_SERVER_PORT"] = str(settings.server.port)
    proxy = None
    if settings.bus.backend == "zmq":
        from core.bus.zmq_bus import ZmqBusProxy

        proxy = ZmqBusProxy(settings.bus.zmq_frontend, settings.bus.zmq_backend)
        proxy.start()
    children = [server_child(config_file), *worker_children(settings, config_file)]
    supervisor = Supervisor(children, settings.supervisor)
    supervisor.install_signal_handlers()
    console.print(
        f"Voxdesk serving on http://{settings.server.host}:{settings.server.port}/ and "
        f"sip:{settings.telephony.sip_host}:{settings.telephony.sip_port} (Ctrl-C to stop)"
    )
    try:
        supervisor.run()
    finally:
        if proxy is not None:
            proxy.close()
