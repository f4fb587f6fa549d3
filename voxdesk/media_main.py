"""Entry point of a SIP media worker process: ``python -m voxdesk.media_main --index I``.

Builds the settings (``$VOXDESK_CONFIG`` and ``VOXDESK_*``), the event bus and a
:class:`telephony.pjsua_worker.PjsuaMediaWorker` listening on ``telephony.sip_port + I`` (RTP from
``telephony.rtp_port_start + 100·I``), and runs until SIGTERM/SIGINT. The worker's threads hand events to the
asyncio loop with ``call_soon_threadsafe``; one task publishes them in order. Every ``STATUS_EVERY_S`` the worker
publishes a ``MediaWorkerStatus`` heartbeat (its slots and the calls it holds), by which the dialer places calls.
Shutdown hangs up every call, destroys pjsua2, closes the recordings, publishes the last ``CallEnded`` events and
exits 0. Exits 1 when the worker cannot start and 2 when its pjsua thread dies (the supervisor restarts the process).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from core.bus.base import EventBus
from core.errors import BusError, VoxdeskError
from core.events import Event, MediaWorkerStatus
from core.logging import configure_logging, get_logger
from telephony.lines import Line
from telephony.pjsua_worker import PjsuaMediaWorker
from voxdesk.registry import build_bus
from voxdesk.settings import Settings, load_settings
from voxdesk.stats_file import write_stats_file

log = get_logger(__name__)

STATUS_EVERY_S = 1.0
"""How often the worker publishes its ``MediaWorkerStatus`` heartbeat (s)."""
RTP_PORTS_PER_WORKER = 100
"""RTP/RTCP ports reserved for each media worker, from ``rtp_port_start + index * RTP_PORTS_PER_WORKER``."""


def speech_endpoints(settings: Settings) -> list[str]:
    """The PULL endpoints of every speech worker (``asr.speech_endpoint_template`` for each index)."""
    template = settings.asr.speech_endpoint_template
    return [template.format(index=i) for i in range(settings.asr.speech_workers)]


def build_worker(settings: Settings, index: int, emit: Callable[[Event], None]) -> PjsuaMediaWorker:
    """The media worker ``index`` as configured (not started). ``emit`` must be thread-safe."""
    tel = settings.telephony
    lines = [
        Line(ln.name, ln.kind, ln.number, ln.lang, ln.agent_uri, ln.disclosure_wav) for ln in tel.lines
    ]  # fmt: skip
    return PjsuaMediaWorker(
        sip_host=tel.sip_host,
        sip_port=tel.sip_port + index,
        rtp_port_start=tel.rtp_port_start + index * RTP_PORTS_PER_WORKER,
        rtp_port_range=RTP_PORTS_PER_WORKER,
        lines=lines,
        speech_endpoints=speech_endpoints(settings),
        recording_dir=settings.recording.directory,
        recording_format=settings.recording.format,
        emit=emit,
        max_calls=tel.max_calls_per_worker,
        ring_timeout_s=tel.ring_timeout_s,
        clock_rate_hz=tel.clock_rate_hz,
        play_endpoint=tel.play_endpoint_template.format(index=index),
        index=index,
    )


def write_stats(worker: PjsuaMediaWorker, index: int, path: Path) -> None:
    """Write the worker's counters and per-call frame timing / RTP statistics as JSON to ``path`` (for
    ``voxdesk bench calls``; after the worker stopped)."""
    sender = worker.sender
    write_stats_file(
        path,
        {
            "index": index,
            "frames_in": sender.frames_in,
            "sent_chunks": sender.sent_chunks,
            "dropped_chunks": sender.dropped_chunks,
            "play_dropped": worker.play_dropped,
            "play_received": worker.receiver.received if worker.receiver is not None else 0,
            "calls": list(sender.call_stats),
            "rtp": list(worker.rtp_stats),
        },
    )


async def run(settings: Settings, index: int, *, stats_file: Path | None = None) -> int:
    """Serve calls until SIGTERM/SIGINT; the process exit status. With ``stats_file``, per-call frame timing and
    RTP statistics are written there at exit (:func:`write_stats`)."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[Event | None] = asyncio.Queue()

    def emit(event: Event) -> None:  # any worker thread
        try:
            loop.call_soon_threadsafe(events.put_nowait, event)
        except RuntimeError:  # loop already closed: the process is exiting
            log.warning("event dropped after shutdown", kind=getattr(event, "kind", "?"))

    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    bus = build_bus(settings.bus)
    try:
        await bus.start()
    except BusError:
        log.exception("event bus not reachable; media worker not started", index=index)
        await bus.aclose()
        return 1
    publisher = loop.create_task(_publish(bus, events), name="voxdesk-media-publish")
    worker = build_worker(settings, index, emit)
    status = 0
    try:
        try:
            await asyncio.to_thread(worker.start)
        except VoxdeskError:
            log.exception("media worker could not start", index=index)
            return 1
        while not stop.is_set():
            if worker.wait(0):
                log.error("media worker pjsua thread died", index=index)
                status = 2
                break
            emit(MediaWorkerStatus(media_worker=index, max_calls=worker.max_calls, calls=worker.held_calls()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=STATUS_EVERY_S)
        await asyncio.to_thread(worker.stop)
        if stats_file is not None:
            write_stats(worker, index, stats_file)
    finally:
        events.put_nowait(None)
        await publisher
        await bus.aclose()
    log.info("media worker exited", index=index, status=status)
    return status


async def _publish(bus: EventBus, events: asyncio.Queue[Event | None]) -> None:
    """Publish queued events in order until the ``None`` sentinel (event-loop task)."""
    while (event := await events.get()) is not None:
        try:
            await bus.publish(event)
        except BusError:
            log.exception("event could not be published", kind=getattr(event, "kind", "?"))


def main(argv: Sequence[str] | None = None) -> None:
    """Parse ``--index``, build settings and run; exits with :func:`run`'s status."""
    parser = argparse.ArgumentParser(prog="voxdesk.media_main", description="Voxdesk SIP media worker")
    parser.add_argument("--index", type=int, default=0, help="worker index: SIP port = telephony.sip_port + index")
    parser.add_argument("--stats-file", type=Path, default=None, help="write frame timing statistics here at exit")
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging(settings.logging.level, settings.logging.json_logs, settings.logging.mask_pii)
    sys.exit(asyncio.run(run(settings, args.index, stats_file=args.stats_file)))


if __name__ == "__main__":
    main()
