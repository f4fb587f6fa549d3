"""Entry point of an agent process: ``python -m voxdesk.agent_main [--index N] [--stats-file F]``.

Started by the supervisor behind ``voxdesk serve`` (``assist.agent_workers`` children). It reads the settings,
builds the assist room (:func:`voxdesk.assist.build_assist`: the intent classifier, sentiment models, compliance
rules) and runs one :class:`agent.assist.hub.AssistHub` on the main thread's event loop until SIGTERM/SIGINT.
The hub hears every call on the bus, opens a session for each call on an assisted line and publishes suggestions,
alerts, sentiment and summaries back on the bus, where the server's websockets pick them up.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
from collections.abc import Sequence
from pathlib import Path

from core.logging import configure_logging, get_logger
from voxdesk.container import build_container
from voxdesk.registry import build_bus
from voxdesk.settings import Settings, load_settings
from voxdesk.stats_file import write_stats_file

log = get_logger(__name__)


async def serve(settings: Settings, index: int = 0, *, stats_file: Path | None = None) -> None:
    """Run the assist hub until SIGTERM/SIGINT (event loop of the main thread)."""
    from voxdesk.assist import build_assist

    container = build_container(settings)
    wiring = await asyncio.to_thread(build_assist, container)
    bus = build_bus(settings.bus)
    await bus.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    hub = wiring.hub(bus, index=index)
    ready = asyncio.Event()
    task = asyncio.create_task(hub.run(ready=ready), name="assist-hub")
    try:
        await ready.wait()
        log.info("agent process ready", index=index, lines=sorted(wiring.lines))
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        stats = dataclasses.asdict(hub.stats)
        log.info("agent process exiting", index=index, sessions=hub.stats.sessions, errors=hub.stats.errors)
        if stats_file is not None:
            await asyncio.to_thread(write_stats_file, stats_file, {"index": index, **stats})
        await bus.aclose()
        container.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments and serve."""
    parser = argparse.ArgumentParser(prog="voxdesk.agent_main", description="Voxdesk agent process (live assist)")
    parser.add_argument("--index", type=int, default=0, help="process index (for logs)")
    parser.add_argument("--stats-file", type=Path, default=None, help="write the hub's counters here at exit")
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging(settings.logging.level, settings.logging.json_logs, settings.logging.mask_pii)
    asyncio.run(serve(settings, args.index, stats_file=args.stats_file))


if __name__ == "__main__":
    main()
