"""agent.tts.voices: per-language voices, the pre-recorded fallback and the start-up report (no models)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from agent.models import PiperVoiceFiles
from agent.testing import ToneSynthesizer
from agent.tts.base import SpeechSynthesizer
from agent.tts.voices import PrerecordedPrompts, PromptMissingError, VoiceSet
from core.audio import AudioClip, write_audio
from core.errors import ConfigError, ModelMissingError, NotFoundError

pytestmark = pytest.mark.unit


def prompt_dir(root: Path, keys: list[str]) -> Path:
    folder = root / "prompts-zh"
    folder.mkdir()
    for i, key in enumerate(keys):
        write_audio(folder / f"{key}.wav", AudioClip(np.full(800, i + 1, dtype=np.int16), 8000, 1))
    (folder / "README.txt").write_text("not a prompt")
    return folder


def fake_voice(root: Path, name: str, language: str) -> Path:
    model = root / f"{name}.onnx"
    model.write_bytes(b"onnx")
    (root / f"{name}.onnx.json").write_text(
        json.dumps({"audio": {"sample_rate": 22050}, "language": {"code": language}})
    )
    return model


class Loader:
    """Stands in for PiperVoice.load: a tone voice per file set, ModelMissingError for names with 'broken'."""

    def __init__(self) -> None:
        self.loaded: list[PiperVoiceFiles | None] = []

    def __call__(self, files: PiperVoiceFiles | None) -> SpeechSynthesizer:
        self.loaded.append(files)
        if files is not None and "broken" in files.model.name:
            raise ModelMissingError("Piper voice broken.onnx could not be loaded", remedy="reinstall it")
        return ToneSynthesizer()


def test_prerecorded_prompts_lookup(tmp_path: Path) -> None:
    prompts = PrerecordedPrompts(prompt_dir(tmp_path, ["greeting", "ask_last4"]))
    assert prompts.keys == ("ask_last4", "greeting") and len(prompts) == 2 and "greeting" in prompts
    clip = prompts.get("greeting")
    assert clip.sample_rate == 8000 and int(clip.samples[0]) == 1
    assert prompts.get("greeting") is clip  # decoded once
    with pytest.raises(PromptMissingError) as info:
        prompts.get("transfer_notice")
    assert isinstance(info.value, NotFoundError)
    assert "transfer_notice" in str(info.value) and str(prompts.folder) in str(info.value)
    with pytest.raises(ConfigError):
        PrerecordedPrompts(tmp_path / "nowhere")


def test_bundled_english_and_chinese_by_path(tmp_path: Path) -> None:
    loader = Loader()
    zh = fake_voice(tmp_path, "zh_CN-bank-medium", "zh_CN")
    voices = VoiceSet.load(voices={"zh": zh}, loader=loader)
    assert loader.loaded[0] is not None and loader.loaded[0].model == zh and loader.loaded[1] is None
    assert voices.synthesizer("zh") is not None and voices.synthesizer("en") is not None
    assert voices.mute_languages() == []
    assert voices.describe() == ["zh: Piper voice zh_CN-bank-medium", "en: Piper voice the bundled en_US voice"]


def test_missing_chinese_voice_falls_back_to_prompts_and_says_so(tmp_path: Path) -> None:
    folder = prompt_dir(tmp_path, [f"p{i:02d}" for i in range(12)])
    voices = VoiceSet.load(prompt_dirs={"zh": folder}, loader=Loader())
    assert voices.synthesizer("zh") is None and voices.can_speak("zh")
    prompts = voices.prompts("zh")
    assert prompts is not None and len(prompts) == 12
    zh_line = voices.describe()[0]
    assert zh_line.startswith(f"zh: no Piper voice; using the pre-recorded prompts in {folder} (12 prompts)")


def test_no_voice_and_no_prompts_is_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    voices = VoiceSet.load(loader=Loader())
    assert voices.describe()[0] == "zh: no voice and no pre-recorded prompts: navigator lines in zh cannot speak"
    assert voices.mute_languages() == ["zh"] and not voices.can_speak("zh")
    assert any(r.levelname == "ERROR" for r in caplog.records)


def test_broken_voice_and_missing_folder_are_problems_not_crashes(tmp_path: Path) -> None:
    broken = fake_voice(tmp_path, "broken", "zh_CN")
    voices = VoiceSet.load(
        voices={"zh": broken, "en": tmp_path / "absent.onnx"},
        prompt_dirs={"en": tmp_path / "no-such-dir"},
        loader=Loader(),
    )
    zh_line, en_line = voices.describe()
    assert "could not be loaded" in zh_line and "cannot speak" in zh_line
    assert "absent.onnx" in en_line and "no-such-dir does not exist" in en_line and "cannot speak" in en_line
    assert voices.mute_languages() == ["zh", "en"]


def test_language_mismatch_is_noted(tmp_path: Path) -> None:
    wrong = fake_voice(tmp_path, "en_GB-other", "en_GB")
    voices = VoiceSet.load(voices={"zh": wrong}, bundled_english=False, loader=Loader())
    assert voices.describe()[0] == "zh: Piper voice en_GB-other (its config says language en_GB)"
    assert voices.describe()[1].startswith("en: no voice and no pre-recorded prompts")
