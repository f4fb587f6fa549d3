"""``voxdesk bench calls --json`` end to end: sipp places real G.711 calls playing real speech from the shared
data into real media workers (pjsua2) and a real speech worker (Whisper base); the figures come back as JSON."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.sip, pytest.mark.models, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]

needs = pytest.mark.skipif(
    shutil.which("sipp") is None
    or importlib.util.find_spec("pjsua2") is None
    or importlib.util.find_spec("faster_whisper") is None,
    reason="needs sipp (apt-get install sip-tester), pjsua2-python and faster-whisper",
)


def _bench(tmp_path: Path, shared_data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VOXDESK_")}
    env.update(
        HF_HUB_OFFLINE="1",
        VOXDESK_SHARED_DATA=str(shared_data),
        VOXDESK_VAR_DIR=str(tmp_path / "var"),
        VOXDESK_MODELS_CACHE_DIR=str(ROOT / "var" / "models"),
        COLUMNS="220",
    )
    return subprocess.run(
        [sys.executable, "-m", "voxdesk.cli", "bench", "calls", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@needs
@pytest.mark.timeout(260)
def test_bench_calls_reports_two_real_calls(tmp_path: Path, shared_data: Path) -> None:
    if not (shared_data / "speech" / "manifest.jsonl").is_file():
        pytest.skip(f"no speech manifest under {shared_data}")
    done = _bench(tmp_path, shared_data, "--concurrent", "2", "--seconds", "12", "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    keys = {"concurrent", "lost_frames", "frame_gap_p99_ms", "final_latency_p50_ms", "final_latency_p95_ms",
            "cpu_percent", "holds", "max_holding", "curve"}  # fmt: skip
    assert keys <= result.keys()
    assert result["concurrent"] == 2 and result["calls_completed"] == 2 and result["callers_ok"]
    assert result["lost_frames"] == 0  # two calls cannot starve the media clock on loopback
    assert 18.0 < result["frame_gap_p99_ms"] < 40.0  # 20 ms frames, regular
    assert result["finals"] >= 4  # each call says at least two clips, each ends an utterance
    assert 0 < result["final_latency_p50_ms"] < 10_000  # includes the 600 ms endpoint hangover
    assert result["wer_en"] is not None and result["wer_en"] < 0.25  # the transcripts are of the real speech
    assert result["cer_zh"] is not None and result["cer_zh"] < 0.5
    assert 0 < result["cpu_percent"] <= 100
    assert "voxdesk bench calls" in done.stdout  # the table


@needs
def test_bench_calls_without_shared_data_fails_clearly(tmp_path: Path) -> None:
    done = _bench(tmp_path, tmp_path / "absent", "--concurrent", "1", "--seconds", "5")
    assert done.returncode == 2
    assert "no speech manifest" in done.stderr and "VOXDESK_SHARED_DATA" in done.stderr
