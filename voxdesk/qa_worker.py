"""The QA worker process: one pipeline and one store per process, and the task entry both backends call.

A local pool worker runs :func:`init_worker` once (its initializer) and then :func:`process_job` per recording; a
Celery worker does the same from :mod:`voxdesk.qa_celery` (the settings come from its own environment and config
file). The models inside the pipeline load on the first recording and stay loaded. Blocking; worker processes
only.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qa.tasks import JobOutcome, QaJob, run_job

if TYPE_CHECKING:
    from qa.pipeline import QaPipeline
    from qa.store import QaStore
    from voxdesk.container import Container
    from voxdesk.settings import Settings

__all__ = ["WorkerState", "init_worker", "process_job", "worker_state"]


@dataclass
class WorkerState:
    settings: Settings
    container: Container
    store: QaStore
    pipeline: QaPipeline


_STATE: WorkerState | None = None
_LOCK = threading.Lock()


def _limit_threads(threads: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))


def init_worker(settings_data: dict[str, Any] | None = None) -> None:
    """Build this process's pipeline and store (``settings_data``: ``Settings.model_dump()`` of the parent, or
    ``None`` to load the settings from the environment and config file)."""
    global _STATE
    from core.logging import configure_logging
    from qa.store import QaStore
    from voxdesk.container import build_container
    from voxdesk.qa_wiring import build_pipeline
    from voxdesk.settings import Settings, load_settings

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    settings = Settings(**settings_data) if settings_data is not None else load_settings()
    _limit_threads(settings.qa.threads_per_worker)
    configure_logging(settings.logging.level, settings.logging.json_logs, settings.logging.mask_pii)
    container = build_container(settings)
    store = QaStore(container.sessions, clock=container.clock)
    with _LOCK:
        _STATE = WorkerState(settings, container, store, build_pipeline(settings, container))


def worker_state() -> WorkerState:
    """This process's state, built on first use."""
    if _STATE is None:
        init_worker()
    assert _STATE is not None
    return _STATE


def process_job(job: QaJob | dict[str, Any]) -> JobOutcome:
    """Inspect one recording in this worker (the task body of both backends)."""
    state = worker_state()
    parsed = job if isinstance(job, QaJob) else QaJob.from_dict(job)
    return run_job(parsed, state.pipeline, state.store)
