"""Entry point of the dialer process: ``python -m voxdesk.dialer_main`` (also ``voxdesk dialer``).

Started by the supervisor behind ``voxdesk serve`` when ``dialer.enabled``. It builds the container (campaigns,
dialing lists, DNC list, profiles for consent), the event bus and a :class:`telephony.dialer.sip_placer.SipPlacer`
that sends ``dial`` commands to the media workers' play channels (``dialer.media_workers``, else all of
``telephony.media_workers``) and follows the calls on the bus, then runs :class:`telephony.dialer.engine.Dialer`
until SIGTERM/SIGINT. Each placed attempt of a known customer is written to the profile store's timeline and tags
(:mod:`voxdesk.dialer_results`).

On start the dialer settles what a previous run with the same ``dialer.dialer_id`` left (crash or kill: attempts
that may have reached a callee are closed as ``interrupted``, never redialed). On SIGTERM it stops claiming, hangs
up the calls in flight and records their outcomes before exiting 0; exit 1 when the bus cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Sequence

from core.errors import BusError, NotFoundError, VoxdeskError
from core.logging import configure_logging, get_logger
from telephony.dialer.engine import Dialer
from telephony.dialer.sip_placer import SipPlacer
from telephony.pjsua_worker import PJSUA_MAX_CALLS
from telephony.prompts import load_prompt
from voxdesk.container import Container, build_container
from voxdesk.dialer_results import profile_writer
from voxdesk.registry import build_bus
from voxdesk.settings import Settings, load_settings

log = get_logger(__name__)

__all__ = ["abandon_messages", "consent_lookup", "dialer_workers", "run"]


def dialer_workers(settings: Settings) -> list[int]:
    """The media worker indexes the dialer places calls through."""
    chosen = settings.dialer.media_workers
    workers = list(range(settings.telephony.media_workers)) if chosen is None else list(chosen)
    return [w for w in workers if 0 <= w < settings.telephony.media_workers]


def consent_lookup(container: Container) -> Callable[[str], bool | None]:
    """``customer_id`` → whether the customer granted marketing-calls consent, ``None`` for an unknown customer
    (blocking: one read of the profile store)."""

    def lookup(customer_id: str) -> bool | None:
        try:
            return container.profiles.get(customer_id).has_consent("marketing_calls")
        except NotFoundError:
            return None

    return lookup


def abandon_messages(settings: Settings) -> dict[str, bytes]:
    """The information message of abandoned calls per language, as L16 at the bridge rate (blocking: reads the
    WAVs). Raises the errors of :func:`telephony.prompts.load_prompt` for a bad file."""
    rate = settings.telephony.clock_rate_hz
    return {lang: b"".join(load_prompt(path, rate)) for lang, path in settings.dialer.abandon_message_wav.items()}


async def run(settings: Settings) -> int:
    """Dial until SIGTERM/SIGINT; the process exit status."""
    from agent.navigator.play_client import ZmqPlaySink

    workers = dialer_workers(settings)
    if not workers:
        log.error("the dialer has no media worker to place calls through", media_workers=settings.dialer.media_workers)
        return 1
    try:
        messages = abandon_messages(settings)
    except VoxdeskError:
        log.exception("the abandoned-call information message cannot be read; dialer not started")
        return 1
    container = build_container(settings)
    bus = build_bus(settings.bus)
    try:
        await bus.start()
    except BusError:
        log.exception("event bus not reachable; dialer not started")
        container.close()
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    tel = settings.telephony
    sink = ZmqPlaySink(tel.play_endpoint_template, workers=tel.media_workers)
    slots = min(tel.max_calls_per_worker, PJSUA_MAX_CALLS)
    placer = SipPlacer(
        bus, sink, workers=workers, route=settings.dialer.route, slots_per_worker=slots, line=settings.dialer.line,
        outcome_grace_s=settings.dialer.outcome_grace_s, max_call_s=settings.dialer.max_call_s,
        silent_after_s=settings.dialer.silent_after_s, abandon_message=messages,
        rate_hz=tel.clock_rate_hz,
    )  # fmt: skip
    dialer = Dialer(
        container.dialer, container.campaigns, placer, consent=consent_lookup(container),
        dialer_id=settings.dialer.dialer_id, max_channels=min(settings.dialer.max_channels, placer.capacity),
        tick_s=settings.dialer.tick_s, clock=container.clock, on_recorded=profile_writer(container.profiles),
        max_abandon_rate=settings.dialer.max_abandon_rate,
    )  # fmt: skip
    events = loop.create_task(placer.run(), name="dialer-events")
    dialing = loop.create_task(dialer.run(), name="dialer-loop")
    log.info("dialer started", dialer_id=dialer.dialer_id, workers=workers, channels=dialer.max_channels)
    try:
        done, _ = await asyncio.wait({loop.create_task(stop.wait()), dialing}, return_when=asyncio.FIRST_COMPLETED)
        if dialing in done:
            log.error("dialer loop ended", error=repr(dialing.exception()) if not dialing.cancelled() else "cancelled")
        placer.hang_up_all("dialer_stopping")
        dialing.cancel()  # Dialer.run drains: the calls in flight end (hung up above) and are recorded
        with contextlib.suppress(asyncio.CancelledError):
            await dialing
    finally:
        events.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await events
        sink.close()
        await bus.aclose()
        container.close()
    log.info("dialer stopped", placed=placer.placed)
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """Build settings and run; exits with :func:`run`'s status."""
    parser = argparse.ArgumentParser(prog="voxdesk.dialer_main", description="Voxdesk outbound dialer")
    parser.parse_args(argv)
    settings = load_settings()
    configure_logging(settings.logging.level, settings.logging.json_logs, settings.logging.mask_pii)
    sys.exit(asyncio.run(run(settings)))


if __name__ == "__main__":
    main()
