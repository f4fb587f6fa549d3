"""The QA pipeline on Celery workers with the Redis broker (``[qa] backend = "celery"``).

:func:`make_celery` builds the Celery app from the settings; its one task, ``voxdesk.qa.inspect``, runs the same
body as the local pool (:func:`voxdesk.qa_worker.process_job`) and returns the outcome as JSON. Tasks are
acknowledged late and taken one at a time, so a worker that dies mid-recording leaves the task to another worker;
the store's claim makes the rerun safe. ``voxdesk qa worker`` starts a worker (:func:`run_worker`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from celery import Celery

    from voxdesk.settings import Settings

__all__ = ["TASK_NAME", "make_celery", "run_worker"]

TASK_NAME: Final = "voxdesk.qa.inspect"


def _inspect(job: dict[str, Any]) -> dict[str, Any]:
    from voxdesk.qa_runner import outcome_dict
    from voxdesk.qa_worker import process_job

    return outcome_dict(process_job(job))


def make_celery(settings: Settings) -> Celery:
    """The Celery app of ``settings.qa`` (broker, result backend, queue, time limit)."""
    from celery import Celery

    qa = settings.qa
    app = Celery("voxdesk-qa", broker=qa.celery_broker_url, backend=qa.celery_result_backend)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=qa.celery_queue,
        task_time_limit=int(qa.task_timeout_s),
        result_expires=24 * 3600,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    app.task(name=TASK_NAME)(_inspect)
    return app


def run_worker(settings: Settings, *, concurrency: int | None = None, pool: str = "prefork") -> None:
    """Run a Celery worker for the QA queue in this process until it is stopped (blocking)."""
    app = make_celery(settings)
    argv = [
        "worker",
        f"--queues={settings.qa.celery_queue}",
        f"--concurrency={concurrency or settings.qa.workers}",
        f"--pool={pool}",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
    ]
    app.worker_main(argv=argv)
