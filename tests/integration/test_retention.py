"""Recording retention deletes old recordings and their sidecars, never files outside the recording folder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.events import CallEnded, CallStarted, RecordingSaved
from core.ids import CallId
from voxdesk.container import Container
from voxdesk.retention import purge_expired_recordings

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def call_with_recording(container: Container, call_id: str, ended: datetime, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF....WAVE")
    path.with_name(path.name + ".json").write_text("{}")
    calls = container.calls
    calls.apply(
        CallStarted(call_id=CallId(call_id), direction="inbound", line="navigator", at=ended - timedelta(minutes=2))
    )
    calls.apply(
        RecordingSaved(call_id=CallId(call_id), path=str(path), sha256="ab" * 32, duration_ms=120_000, size_bytes=12)
    )
    calls.apply(CallEnded(call_id=CallId(call_id), duration_ms=120_000, reason="normal", sip_code=200, at=ended))


def test_purge(container: Container, tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    container.settings.recording.directory = root
    container.settings.recording.retention_days = 30
    old = root / "2026-09-01" / "call-old.wav"
    fresh = root / "2026-11-20" / "call-new.wav"
    outside = tmp_path / "elsewhere" / "call-out.wav"
    call_with_recording(container, "call-old", NOW - timedelta(days=60), old)
    call_with_recording(container, "call-new", NOW - timedelta(days=2), fresh)
    call_with_recording(container, "call-out", NOW - timedelta(days=90), outside)
    result = purge_expired_recordings(container, now=NOW)
    assert (result.deleted, result.missing, result.refused) == (1, 0, 1)
    assert not old.exists() and not old.with_name("call-old.wav.json").exists()
    assert fresh.exists() and outside.exists()
    assert container.calls.get("call-old").recording_path is None
    assert container.calls.get("call-new").recording_path == str(fresh)
    assert [e.action for e in container.auth.audit_entries(limit=5)] == ["recording.purge"]
    container.settings.recording.retention_days = 0
    assert purge_expired_recordings(container, now=NOW + timedelta(days=365)).deleted == 0
