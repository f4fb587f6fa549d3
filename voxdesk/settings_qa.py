"""Settings of full-volume quality inspection (``qa/``, docs/qa.md): the ``[qa]`` section of the settings root."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field


class QaSettings(BaseModel):
    """The QA batch pipeline: where it runs, how it transcribes, which rules and forms it applies."""

    backend: Literal["local", "celery"] = "local"
    """``local``: a process pool in the process that runs the batch; ``celery``: tasks sent to Celery workers
    (``voxdesk qa worker``) over the Redis broker."""
    workers: int = Field(default=1, ge=1, le=64)
    """Local pool processes (each loads its own models, ~600 MB)."""
    threads_per_worker: int = Field(default=2, ge=1, le=32)
    """CPU threads each worker's recogniser uses."""
    celery_broker_url: str = "redis://127.0.0.1:6379/1"
    celery_result_backend: str = "redis://127.0.0.1:6379/2"
    celery_queue: str = "voxdesk-qa"
    task_timeout_s: float = Field(default=1800.0, gt=0)
    """Longest one recording may take on a worker (s)."""
    rules_path: Path | None = None
    """The bank's rules file (YAML); unset: the shipped ``qa/rules.yaml``."""
    scorecards_path: Path | None = None
    """The bank's QA forms (YAML); unset: the shipped ``qa/scorecards.yaml``."""
    lang: Literal["zh", "en", "auto"] = "auto"
    """Language of the calls; ``auto`` detects it once per call."""
    beam_size: int = Field(default=5, ge=1, le=10)
    """Beam search width for QA transcription (quality over speed)."""
    batch_size: int = Field(default=8, ge=1, le=64)
    """Speech segments decoded together where batching is faster."""
    diarization_speakers: int | None = Field(default=2, ge=1, le=8)
    """Speakers expected in a mono recording (two-party calls); unset: counted automatically."""
    auto_inspect: bool = True
    """Inspect every Voxdesk call after hangup (its stereo recording), as well as imported folders."""
    max_file_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    """Largest recording accepted (bytes); larger files are recorded as errors."""
    default_region: str = "CN"
    """Region of phone numbers without a country code in import metadata (ISO 3166 alpha-2)."""
    import_timezone: str = "UTC"
    """Time zone of import start times without an offset (IANA name, e.g. ``Asia/Shanghai``)."""
