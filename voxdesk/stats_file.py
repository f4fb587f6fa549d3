"""Workers' statistics files: one JSON object written at exit when ``--stats-file`` is given (for benchmarks)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.logging import get_logger

__all__ = ["write_stats_file"]

log = get_logger(__name__)


def write_stats_file(path: Path, stats: Mapping[str, Any]) -> None:
    """Write ``stats`` as JSON to ``path`` atomically (a reader never sees half a file); a failure is logged, not
    raised: statistics must never keep a worker from exiting."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(stats), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        log.exception("worker statistics not written", path=str(path))
