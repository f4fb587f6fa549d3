"""The QA task: inspect one recording and store the result — the same code on a local process pool and on Celery.

:func:`run_job` claims the recording in the store (idempotency: a recording already inspected is skipped, so
re-running a batch never duplicates anything), runs the pipeline and saves the inspection; any failure of that one
file (corrupt audio, a missing file, a model error) is recorded as the file's error and returned as a ``failed``
outcome, so the batch goes on. It is the task root: it catches broad exceptions, logs them, and never raises
(except for the store itself being unreachable, which the runner retries). Blocking; runs in a worker process.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from core.errors import StorageError, VoxdeskError
from core.logging import get_logger
from qa.models import RecordingMeta
from qa.pipeline import QaPipeline
from qa.store import QaStore

__all__ = ["JobOutcome", "QaJob", "run_job"]

log = get_logger(__name__)


@dataclass(frozen=True)
class QaJob:
    """One recording to inspect (picklable; also sent to Celery as a dict, see :meth:`to_dict`)."""

    path: str
    meta: RecordingMeta
    source: Literal["voxdesk", "import"] = "import"
    force: bool = False

    def to_dict(self) -> dict[str, object]:
        m = self.meta
        return {
            "path": self.path,
            "source": self.source,
            "force": self.force,
            "meta": {
                "call_id": m.call_id,
                "agent_id": m.agent_id,
                "customer_phone": m.customer_phone,
                "started_at": m.started_at.isoformat() if m.started_at else None,
                "direction": m.direction,
                "team": m.team,
                "customer_id": m.customer_id,
                "extra": dict(m.extra),
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> QaJob:
        raw = data["meta"]
        assert isinstance(raw, dict)
        started = raw.get("started_at")
        meta = RecordingMeta(
            call_id=str(raw["call_id"]),
            agent_id=raw.get("agent_id"),
            customer_phone=raw.get("customer_phone"),
            started_at=datetime.fromisoformat(started) if isinstance(started, str) else None,
            direction=raw.get("direction") or "inbound",
            team=raw.get("team"),
            customer_id=raw.get("customer_id"),
            extra=dict(raw.get("extra") or {}),
        )
        source = data.get("source", "import")
        return cls(str(data["path"]), meta, "voxdesk" if source == "voxdesk" else "import", bool(data.get("force")))


@dataclass(frozen=True)
class JobOutcome:
    """What happened to one job; ``audio_ms`` is the recording's length when it was inspected."""

    call_id: str
    status: Literal["done", "skipped", "failed"]
    audio_ms: int = 0
    seconds: float = 0.0
    error: str | None = None
    findings: int = 0
    score: float | None = None
    flagged: bool = False
    timings: dict[str, float] = field(default_factory=dict)


def run_job(job: QaJob, pipeline: QaPipeline, store: QaStore) -> JobOutcome:
    """Claim, inspect and store one recording (see the module docstring)."""
    started = time.perf_counter()
    meta = job.meta
    claim = store.claim(meta, job.path, source=job.source, force=job.force)
    if claim != "claimed":
        return JobOutcome(meta.call_id, "skipped", error=None if claim == "done" else claim)
    try:
        result = pipeline.inspect_file(Path(job.path), meta, history=store)
        store.save(result, source=job.source)
    except StorageError:
        raise
    except VoxdeskError as exc:
        message = f"{exc.code}: {exc}"
        log.warning("QA inspection failed", call_id=meta.call_id, error=exc.code)
        store.fail(meta, job.path, message, source=job.source)
        return JobOutcome(meta.call_id, "failed", seconds=time.perf_counter() - started, error=message)
    except Exception as exc:  # task root: one bad file must not stop the batch
        log.exception("QA inspection crashed", call_id=meta.call_id)
        message = f"internal_error: {type(exc).__name__}"
        store.fail(meta, job.path, message, source=job.source)
        return JobOutcome(meta.call_id, "failed", seconds=time.perf_counter() - started, error=message)
    non_info = [f for f in result.findings if f.severity != "info"]
    return JobOutcome(
        meta.call_id,
        "done",
        audio_ms=result.audio_ms,
        seconds=time.perf_counter() - started,
        findings=len(non_info),
        score=result.score.score if result.score else None,
        flagged=result.flagged,
        timings=result.timings,
    )
