"""The QA process of ``voxdesk serve``: inspects every recorded Voxdesk call after hangup.

It wakes on the bus's ``call.ended`` events and at least every ``POLL_S`` seconds, asks the call store for recorded
calls the QA store does not know (:func:`qa.call_source.calls_to_inspect` — a catch-up query, so nothing is missed
while this process is down), registers them and inspects them: in this process one at a time with backend
``local`` (the pipeline runs on a worker thread, models loaded once), or by sending them to Celery workers with
backend ``celery``. Started by the supervisor when ``[qa] auto_inspect`` is on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Sequence
from typing import Final

from core.bus.base import EventBus
from core.logging import configure_logging, get_logger
from qa.call_source import calls_to_inspect
from qa.tasks import QaJob
from voxdesk.settings import Settings, load_settings

log = get_logger(__name__)

POLL_S: Final = 30.0
"""Longest wait between two looks at the call store (s)."""
BATCH: Final = 20


async def _wake_on_call_end(bus: EventBus, wake: asyncio.Event) -> None:
    sub = bus.subscribe("call.ended")
    try:
        async for _event in sub:
            wake.set()
    finally:
        await sub.aclose()


async def serve(settings: Settings, *, once: bool = False) -> int:
    """Inspect recorded calls until cancelled (``once``: one catch-up pass, then return); returns how many calls
    were inspected or sent (event-loop thread; the work runs on threads)."""
    from qa.store import QaStore
    from voxdesk.container import build_container
    from voxdesk.qa_worker import init_worker, process_job
    from voxdesk.registry import build_bus

    container = build_container(settings)
    store = QaStore(container.sessions, clock=container.clock)
    celery_app = None
    if settings.qa.backend == "celery":
        from voxdesk.qa_celery import make_celery

        celery_app = make_celery(settings)
    else:
        await asyncio.to_thread(init_worker, settings.model_dump())
    bus = None if once else build_bus(settings.bus)
    wake = asyncio.Event()
    listener = asyncio.create_task(_wake_on_call_end(bus, wake)) if bus is not None else None
    handled = 0
    try:
        while True:
            found = await asyncio.to_thread(calls_to_inspect, container.sessions, limit=BATCH)
            for path, meta in found:
                job = QaJob(path, meta, "voxdesk")
                await asyncio.to_thread(store.enqueue, meta, path, source="voxdesk")
                if celery_app is not None:
                    from voxdesk.qa_celery import TASK_NAME

                    celery_app.send_task(TASK_NAME, args=[job.to_dict()], queue=settings.qa.celery_queue)
                else:
                    outcome = await asyncio.to_thread(process_job, job)
                    log.info("call inspected", call_id=meta.call_id, status=outcome.status, flagged=outcome.flagged)
                handled += 1
            if once:
                return handled
            if len(found) == BATCH:
                continue
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), POLL_S)
    finally:
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        if bus is not None:
            await bus.aclose()
        container.close()


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(prog="voxdesk.qa_main", description="Voxdesk QA process (inspects calls)")
    parser.add_argument("--once", action="store_true", help="one catch-up pass, then exit")
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging(settings.logging.level, settings.logging.json_logs, settings.logging.mask_pii)
    asyncio.run(serve(settings, once=args.once))


if __name__ == "__main__":
    main()
