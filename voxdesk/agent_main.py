"""Entry point of an agent process: ``python -m voxdesk.agent_main [--index N] [--stats-file F]``.

Started by the supervisor behind ``voxdesk serve`` (``assist.agent_workers`` children). It reads the settings,
builds the assist room (:func:`voxdesk.assist.build_assist`: the intent classifier, sentiment models, compliance
rules) and runs one :class:`agent.assist.hub.AssistHub` on the main thread's event loop until SIGTERM/SIGINT.
The hub hears every call on the bus, opens a session for each call on an assisted line and publishes suggestions,
alerts, sentiment and summaries back on the bus, where the server's websockets pick them up.

When the settings have navigator lines or the dialer is enabled, the process also builds the navigator
(:func:`voxdesk.navigator.build_navigator`: voices, flows; the same intent classifier) and runs an
:class:`agent.navigator.hub.NavigatorHub` beside the assist hub, sending bot audio and call commands to the media
workers' play channels (``telephony.play_endpoint_template``, one per ``telephony.media_workers``); the prompt
cache is warmed on a background thread once the hubs are ready. The navigator hub also runs the dialogs of
outbound campaign calls (:class:`agent.navigator.campaign_session.CampaignSession`), announced by the dialer's
``dialer.call`` events.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from core.logging import configure_logging, get_logger
from voxdesk.container import build_container
from voxdesk.registry import build_bus
from voxdesk.settings import Settings, load_settings
from voxdesk.stats_file import write_stats_file

if TYPE_CHECKING:
    from agent.navigator.hub import NavigatorHub
    from agent.navigator.play_client import ZmqPlaySink

log = get_logger(__name__)


async def serve(settings: Settings, index: int = 0, *, stats_file: Path | None = None) -> None:
    """Run the assist hub (and the navigator hub, with navigator lines) until SIGTERM/SIGINT (event loop of the
    main thread)."""
    from voxdesk.assist import build_assist
    from voxdesk.navigator import build_navigator, navigator_lines

    container = build_container(settings)
    wiring = await asyncio.to_thread(build_assist, container)
    speaks = bool(navigator_lines(container)) or settings.dialer.enabled  # navigator lines, or campaign calls
    navigator = await asyncio.to_thread(build_navigator, container, warm=False) if speaks else None
    bus = build_bus(settings.bus)
    await bus.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    hub = wiring.hub(bus, index=index)
    sink: ZmqPlaySink | None = None
    nav_hub: NavigatorHub | None = None
    tasks: dict[asyncio.Task[None], asyncio.Event] = {}
    warming: threading.Event | None = None
    ready = asyncio.Event()
    tasks[asyncio.create_task(hub.run(ready=ready), name="assist-hub")] = ready
    if navigator is not None:
        from agent.navigator.play_client import ZmqPlaySink

        sink = ZmqPlaySink(settings.telephony.play_endpoint_template, workers=settings.telephony.media_workers)
        nav_hub = navigator.hub(bus, sink, index=index)
        nav_ready = asyncio.Event()
        tasks[asyncio.create_task(nav_hub.run(ready=nav_ready), name="navigator-hub")] = nav_ready
    try:
        for task, event in tasks.items():
            waiter = asyncio.create_task(event.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if task.done():
                break
        warming = navigator.warm_in_background() if navigator is not None else None
        log.info(
            "agent process ready",
            index=index,
            lines=sorted(wiring.lines),
            navigator_lines=sorted(navigator.lines) if navigator else [],
        )
        waiter = asyncio.create_task(stop.wait())
        await asyncio.wait({*tasks, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        if warming is not None:
            warming.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        stats: dict[str, object] = {"index": index, **dataclasses.asdict(hub.stats)}
        if nav_hub is not None:
            stats["navigator"] = dataclasses.asdict(nav_hub.stats)
        if sink is not None:
            stats["play_sent"], stats["play_dropped"] = sink.sent, sink.dropped
            sink.close()
        log.info("agent process exiting", index=index, sessions=hub.stats.sessions, errors=hub.stats.errors,
                 navigator_sessions=nav_hub.stats.sessions if nav_hub else 0)  # fmt: skip
        if stats_file is not None:
            await asyncio.to_thread(write_stats_file, stats_file, stats)
        if navigator is not None:
            navigator.close()
        await bus.aclose()
        container.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments and serve."""
    parser = argparse.ArgumentParser(
        prog="voxdesk.agent_main", description="Voxdesk agent process (live assist, voice navigator)"
    )
    parser.add_argument("--index", type=int, default=0, help="process index (for logs)")
    parser.add_argument("--stats-file", type=Path, default=None, help="write the hub's counters here at exit")
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging(settings.logging.level, settings.logging.json_logs, settings.logging.mask_pii)
    asyncio.run(serve(settings, args.index, stats_file=args.stats_file))


if __name__ == "__main__":
    main()
