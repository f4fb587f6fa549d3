"""Runs a batch of QA jobs on the configured backend: a local process pool (default) or Celery workers.

Both backends run the same task body (:func:`voxdesk.qa_worker.process_job`). Before any job runs, every recording
of the batch is registered in the QA store (so the repeat-call rule sees the whole batch, whatever the order the
workers take the jobs in). ``on_outcome`` is called on the calling thread as each job finishes, in completion order.
A job whose worker died or timed out becomes a ``failed`` outcome; the batch always runs to the end. Blocking.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict
from multiprocessing import get_context
from typing import TYPE_CHECKING, Any, Literal

from core.errors import InvalidInputError, VoxdeskError
from core.logging import get_logger
from qa.store import QaStore
from qa.tasks import JobOutcome, QaJob

if TYPE_CHECKING:
    from voxdesk.settings import Settings

__all__ = ["outcome_dict", "outcome_from_dict", "register_jobs", "run_batch"]

log = get_logger(__name__)
OutcomeFn = Callable[[JobOutcome], None]


def register_jobs(store: QaStore, jobs: Sequence[QaJob]) -> int:
    """Register every job's recording as pending (known ones are left alone); returns how many were new."""
    return sum(store.enqueue(j.meta, j.path, source=j.source) for j in jobs)


def outcome_from_dict(data: dict[str, Any]) -> JobOutcome:
    """A :class:`JobOutcome` from its JSON form (Celery results)."""
    return JobOutcome(**{k: v for k, v in data.items() if k in JobOutcome.__dataclass_fields__})


def run_batch(
    settings: Settings,
    jobs: Sequence[QaJob],
    *,
    on_outcome: OutcomeFn | None = None,
    backend: Literal["local", "celery"] | None = None,
    workers: int | None = None,
) -> list[JobOutcome]:
    """Inspect ``jobs`` (see the module docstring); returns the outcomes in completion order."""
    chosen = backend or settings.qa.backend
    if chosen == "local":
        return _run_local(settings, jobs, on_outcome, workers or settings.qa.workers)
    if chosen == "celery":
        return _run_celery(settings, jobs, on_outcome)
    raise InvalidInputError(f"unknown QA backend {chosen!r}")


def _failed(job: QaJob, error: str) -> JobOutcome:
    return JobOutcome(job.meta.call_id, "failed", error=error)


def _run_local(
    settings: Settings, jobs: Sequence[QaJob], on_outcome: OutcomeFn | None, workers: int
) -> list[JobOutcome]:
    from voxdesk.qa_worker import init_worker, process_job

    outcomes: list[JobOutcome] = []
    if not jobs:
        return outcomes
    ctx = get_context("spawn")  # a clean interpreter per worker: no inherited threads or sockets
    size = max(1, min(workers, len(jobs)))
    with ProcessPoolExecutor(size, mp_context=ctx, initializer=init_worker, initargs=(settings.model_dump(),)) as pool:
        pending: dict[Future[JobOutcome], QaJob] = {pool.submit(process_job, job): job for job in jobs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    outcome = _failed(job, "worker_died: the worker process ended while inspecting")
                except VoxdeskError as exc:
                    outcome = _failed(job, f"{exc.code}: {exc}")
                except Exception as exc:  # batch root: report the job, keep going
                    log.exception("QA job failed in the pool", call_id=job.meta.call_id)
                    outcome = _failed(job, f"internal_error: {type(exc).__name__}")
                outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
    return outcomes


def _run_celery(settings: Settings, jobs: Sequence[QaJob], on_outcome: OutcomeFn | None) -> list[JobOutcome]:
    from voxdesk.qa_celery import TASK_NAME, make_celery

    app = make_celery(settings)
    outcomes: list[JobOutcome] = []
    pending = {}
    for job in jobs:
        result = app.send_task(TASK_NAME, args=[job.to_dict()], queue=settings.qa.celery_queue)
        pending[result.id] = (result, job, time.monotonic())
    timeout = settings.qa.task_timeout_s
    while pending:
        progressed = False
        for task_id, (result, job, sent) in list(pending.items()):
            if result.ready():
                try:
                    outcome = outcome_from_dict(result.get(timeout=5, propagate=True))
                except Exception as exc:  # noqa: BLE001 - batch root: a task that raised on the worker
                    outcome = _failed(job, f"worker_error: {type(exc).__name__}")
                del pending[task_id]
            elif time.monotonic() - sent > timeout:
                outcome = _failed(job, f"timeout: no result after {timeout:g} s")
                del pending[task_id]
            else:
                continue
            progressed = True
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
        if not progressed:
            time.sleep(0.2)
    return outcomes


def outcome_dict(outcome: JobOutcome) -> dict[str, Any]:
    """The JSON form of an outcome (Celery results, ``--json`` output)."""
    return asdict(outcome)
