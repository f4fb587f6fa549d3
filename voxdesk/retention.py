"""Recording retention: delete recordings older than ``recording.retention_days`` (file, sidecar, store entry).

Runs daily inside the web server (``retention_loop``) and on demand (``voxdesk recordings purge``). Only files
inside ``recording.directory`` are ever deleted; the call record and its transcript stay.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from core.errors import VoxdeskError
from core.logging import get_logger
from voxdesk.container import Container

log = get_logger(__name__)
PURGE_INTERVAL_S = 24 * 3600


@dataclass(frozen=True)
class PurgeResult:
    """What one purge did."""

    deleted: int
    missing: int
    """Recordings whose file was already gone (the store entry is cleared all the same)."""
    refused: int
    """Paths outside the recording directory, left alone and reported."""


def purge_expired_recordings(container: Container, *, now: datetime | None = None, batch: int = 500) -> PurgeResult:
    """Delete every recording past retention; returns counts. ``retention_days = 0`` keeps everything."""
    days = container.settings.recording.retention_days
    if days <= 0:
        return PurgeResult(0, 0, 0)
    cutoff = (now or container.clock.now()) - timedelta(days=days)
    root = container.settings.recording.directory.resolve()
    deleted = missing = refused = 0
    refused_ids: set[str] = set()
    while True:
        calls = [c for c in container.calls.expired_recordings(cutoff, limit=batch) if c.call_id not in refused_ids]
        if not calls:
            break
        for call in calls:
            assert call.recording_path is not None
            path = Path(call.recording_path).resolve()
            if not path.is_relative_to(root):
                refused += 1
                refused_ids.add(call.call_id)
                log.warning("recording outside the recording directory left alone", call_id=call.call_id)
                continue
            existed = path.exists()
            path.unlink(missing_ok=True)
            path.with_name(path.name + ".json").unlink(missing_ok=True)
            container.calls.clear_recording(call.call_id)
            deleted += existed
            missing += not existed
        if len(calls) < batch:
            break
    if deleted or missing:
        container.auth.audit(
            None,
            "recording.purge",
            "call",
            None,
            client="retention",
            data={"deleted": deleted, "missing": missing, "retention_days": days},
        )
    return PurgeResult(deleted, missing, refused)


async def retention_loop(container: Container, interval_s: float = PURGE_INTERVAL_S) -> None:
    """Purge now and then every ``interval_s`` (s) until cancelled; failures are logged and retried next time."""
    while True:
        try:
            result = await asyncio.to_thread(purge_expired_recordings, container)
            if result.deleted or result.missing or result.refused:
                log.info("recordings purged", deleted=result.deleted, missing=result.missing, refused=result.refused)
        except VoxdeskError:
            log.exception("recording purge failed; will retry")
        await asyncio.sleep(interval_s)
