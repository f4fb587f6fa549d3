"""QA batches with the real pipeline: a local process pool and a real Celery worker over the real Redis.

The folder holds a real stereo recording (one speaker per channel), a real mono recording (diarized), a corrupt
file and a metadata CSV. Every run must inspect the good files, record an error for the corrupt one and go on;
re-running must not inspect or store anything twice.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select

from qa.imports import scan_folder
from qa.store import QaStore
from qa.tables import QaFindingRow, QaRecordingRow, QaTurnRow
from qa.tasks import QaJob
from voxdesk.container import build_container
from voxdesk.db import upgrade
from voxdesk.qa_runner import register_jobs, run_batch
from voxdesk.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.models, pytest.mark.slow]

METADATA = """call_id,agent,customer_phone,start_time,direction,team
stereo-1,1001,+8613800138000,2026-11-30T09:00:00+08:00,inbound,cards
mono-1,1002,+8613800138000,2026-11-30T15:00:00+08:00,inbound,cards
broken-1,1003,,2026-11-30T16:00:00+08:00,inbound,loans
"""


@pytest.fixture
def folder(shared_data: Path, tmp_path: Path) -> Path:
    out = tmp_path / "recordings"
    out.mkdir()
    shutil.copy(shared_data / "speech/faster_whisper/stereo_diarization.wav", out / "stereo-1.wav")
    shutil.copy(shared_data / "speech/faster_whisper/jfk.flac", out / "mono-1.flac")
    (out / "broken-1.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt garbage that is not audio")
    (out / "metadata.csv").write_text(METADATA, encoding="utf-8")
    return out


@pytest.fixture
def qa_settings(tmp_path: Path) -> Settings:
    return Settings(
        var_dir=tmp_path / "var",
        database={"url": f"sqlite:///{tmp_path / 'qa.db'}"},
        bus={"backend": "memory"},
        demo={"load_on_empty": False},
        qa={
            "workers": 1,
            "celery_broker_url": "redis://127.0.0.1:6379/11",
            "celery_result_backend": "redis://127.0.0.1:6379/12",
            "celery_queue": f"voxdesk-qa-test-{uuid.uuid4().hex[:8]}",
            "task_timeout_s": 600,
        },
    )


def _jobs(folder: Path) -> list[QaJob]:
    return [QaJob(str(r.path), r.meta, "import") for r in scan_folder(folder).recordings]


def _counts(settings: Settings) -> tuple[int, int, int]:
    container = build_container(settings)
    try:
        with container.sessions() as s:
            return (
                s.scalar(select(func.count()).select_from(QaRecordingRow)) or 0,
                s.scalar(select(func.count()).select_from(QaTurnRow)) or 0,
                s.scalar(select(func.count()).select_from(QaFindingRow)) or 0,
            )
    finally:
        container.close()


def _prepare(settings: Settings, jobs: list[QaJob]) -> QaStore:
    container = build_container(settings)
    upgrade(container.engine)
    store = QaStore(container.sessions)
    register_jobs(store, jobs)
    return store


def _check_first_run(store: QaStore, outcomes: dict[str, str]) -> None:
    assert outcomes == {"stereo-1": "done", "mono-1": "done", "broken-1": "failed"}
    stereo = store.detail("stereo-1")
    assert stereo.call.parties == "stereo" and stereo.call.lang == "en"
    assert {t.channel for t in stereo.turns} == {"agent", "customer"}
    text = " ".join(t.text for t in stereo.turns).lower()
    assert "wizard" in text and "horizon" in text
    mono = store.detail("mono-1")
    assert mono.call.parties in ("mono", "diarized") and "country" in " ".join(t.text for t in mono.turns).lower()
    repeat = [f for f in mono.findings if f.rule_id == "repeat_call"]
    assert [f.severity for f in repeat] == ["major"]  # the same phone 6 h earlier, whatever order they ran in
    broken = store.get("broken-1")
    assert broken.status == "failed" and broken.error and "audio" in broken.error.lower()


def test_local_pool_inspects_skips_and_records_errors(folder: Path, qa_settings: Settings) -> None:
    jobs = _jobs(folder)
    store = _prepare(qa_settings, jobs)
    first = run_batch(qa_settings, jobs, backend="local", workers=2)
    _check_first_run(store, {o.call_id: o.status for o in first})
    counts = _counts(qa_settings)
    again = run_batch(qa_settings, jobs, backend="local", workers=1)
    statuses = {o.call_id: o.status for o in again}
    assert statuses == {"stereo-1": "skipped", "mono-1": "skipped", "broken-1": "failed"}
    assert _counts(qa_settings) == counts  # nothing stored twice


@pytest.mark.redis
def test_celery_worker_runs_the_same_task(folder: Path, qa_settings: Settings, tmp_path: Path) -> None:
    import redis

    try:
        redis.Redis.from_url(qa_settings.qa.celery_broker_url, socket_connect_timeout=2).ping()
    except redis.RedisError:
        pytest.skip("Redis not reachable at 127.0.0.1:6379")
    jobs = _jobs(folder)
    store = _prepare(qa_settings, jobs)
    env = {
        **os.environ,
        "VOXDESK_VAR_DIR": str(qa_settings.var_dir),
        "VOXDESK_DATABASE_URL": qa_settings.database.url,
        "VOXDESK_BUS_BACKEND": "memory",
        "VOXDESK_DEMO_LOAD_ON_EMPTY": "false",
        "VOXDESK_QA_CELERY_BROKER_URL": qa_settings.qa.celery_broker_url,
        "VOXDESK_QA_CELERY_RESULT_BACKEND": qa_settings.qa.celery_result_backend,
        "VOXDESK_QA_CELERY_QUEUE": qa_settings.qa.celery_queue,
    }
    log = (tmp_path / "worker.log").open("w")
    voxdesk = Path(sys.executable).with_name("voxdesk")
    worker = subprocess.Popen(
        [str(voxdesk), "qa", "worker", "--pool", "solo", "--concurrency", "1"], env=env, stdout=log, stderr=log
    )
    try:
        started = time.monotonic()
        outcomes = run_batch(qa_settings, jobs, backend="celery")
        _check_first_run(store, {o.call_id: o.status for o in outcomes})
        counts = _counts(qa_settings)
        again = {o.call_id: o.status for o in run_batch(qa_settings, jobs, backend="celery")}
        assert again == {"stereo-1": "skipped", "mono-1": "skipped", "broken-1": "failed"}
        assert _counts(qa_settings) == counts
        assert time.monotonic() - started < 600
        assert worker.poll() is None, "the Celery worker died"
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
    assert "voxdesk.qa.inspect" in (tmp_path / "worker.log").read_text()
