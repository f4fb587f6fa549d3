"""agent.tts.cache: rendered prompts on disk, keyed by voice identity and text (with the tone fake)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from agent.testing import ToneSynthesizer
from agent.tts.cache import PromptCache, voice_identity
from core.audio import AudioClip, read_audio, write_audio
from core.errors import InvalidInputError

pytestmark = pytest.mark.unit

PROMPT = "Welcome to Example Bank. This call may be recorded."


def test_miss_renders_once_and_writes_the_call_rate_file(tmp_path: Path) -> None:
    synth = ToneSynthesizer()
    cache = PromptCache(synth, "tone-voice", tmp_path, rate_hz=8000)
    clip = cache.get(PROMPT)
    assert clip.sample_rate == 8000 and clip.channels == 1 and clip.frames > 0
    path = cache.path_for(PROMPT)
    assert path == tmp_path / "tone-voice" / "8000hz" / f"{PromptCache.key(PROMPT)}.wav"
    assert len(PromptCache.key(PROMPT)) == 64
    stored = read_audio(path)
    assert stored.sample_rate == 8000 and np.array_equal(stored.samples, clip.samples)
    assert synth.calls == [PROMPT] and cache.renders == 1
    assert PROMPT in cache
    assert not [p for p in path.parent.iterdir() if p.suffix == ".tmp"]  # no temporary files left behind


def test_hit_reads_the_file_without_rendering(tmp_path: Path) -> None:
    PromptCache(ToneSynthesizer(), "tone-voice", tmp_path).get(PROMPT)
    synth = ToneSynthesizer()
    cache = PromptCache(synth, "tone-voice", tmp_path)  # a fresh instance: only the file can answer
    path = cache.path_for(PROMPT)
    marker = AudioClip(np.full(800, 1234, dtype=np.int16), 8000, 1)
    write_audio(path, marker)
    assert np.array_equal(cache.get(PROMPT).samples, marker.samples)
    assert synth.calls == [] and cache.renders == 0


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "wrong_rate"])
def test_corrupt_file_is_rendered_again(tmp_path: Path, damage: str) -> None:
    synth = ToneSynthesizer()
    cache = PromptCache(synth, "tone-voice", tmp_path)
    good = cache.get(PROMPT)
    path = cache.path_for(PROMPT)
    if damage == "garbage":
        path.write_bytes(b"not a wav file at all")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        write_audio(path, AudioClip(np.ones(1600, dtype=np.int16), 16000, 1))
    again = cache.get(PROMPT)
    assert np.array_equal(again.samples, good.samples)
    assert len(synth.calls) == 2
    assert read_audio(path).sample_rate == 8000  # repaired on disk


def test_different_voice_identity_gives_a_different_key(tmp_path: Path) -> None:
    a = PromptCache(ToneSynthesizer(), "voice-a", tmp_path)
    b = PromptCache(ToneSynthesizer(frequency_hz=220), "voice-b", tmp_path)
    assert a.path_for(PROMPT) != b.path_for(PROMPT)
    assert not np.array_equal(a.get(PROMPT).samples, b.get(PROMPT).samples)
    assert a.path_for("Other text.") != a.path_for(PROMPT)
    wide = PromptCache(ToneSynthesizer(), "voice-a", tmp_path, rate_hz=16000)
    assert wide.path_for(PROMPT) != a.path_for(PROMPT) and wide.get(PROMPT).sample_rate == 16000


def test_voice_identity_follows_the_voice_files(tmp_path: Path) -> None:
    model = tmp_path / "zh_CN-bank-medium.onnx"
    model.write_bytes(b"model-1")
    config = tmp_path / "zh_CN-bank-medium.onnx.json"
    config.write_text('{"audio": {"sample_rate": 22050}}')
    by_stat = voice_identity(model)
    by_content = voice_identity(model, content_hash=True)
    assert by_stat.startswith("zh_CN-bank-medium-") and by_content.startswith("zh_CN-bank-medium-")
    assert voice_identity(model) == by_stat and voice_identity(model, content_hash=True) == by_content
    model.write_bytes(b"model-2")
    assert voice_identity(model, content_hash=True) != by_content
    config.write_text('{"audio": {"sample_rate": 22050}, "inference": {"length_scale": 1.2}}')
    os.utime(config, ns=(1, 1))
    assert voice_identity(model) != by_stat
    with pytest.raises(OSError):
        voice_identity(tmp_path / "missing.onnx")


def test_concurrent_get_renders_once(tmp_path: Path) -> None:
    synth = ToneSynthesizer(delay_s=0.05)
    cache = PromptCache(synth, "tone-voice", tmp_path)
    barrier = threading.Barrier(8)
    results: list[AudioClip] = []
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        clip = cache.get(PROMPT)
        with lock:
            results.append(clip)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and all(np.array_equal(r.samples, results[0].samples) for r in results)
    assert synth.calls == [PROMPT] and cache.renders == 1


def test_warm_renders_only_misses(tmp_path: Path) -> None:
    synth = ToneSynthesizer()
    cache = PromptCache(synth, "tone-voice", tmp_path)
    assert cache.warm(["One.", "Two.", "One."]) == 2
    assert cache.warm(["One.", "Two.", "Three."]) == 1
    assert synth.calls == ["One.", "Two.", "Three."]


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError):
        PromptCache(ToneSynthesizer(), "../escape", tmp_path)
    with pytest.raises(InvalidInputError):
        PromptCache(ToneSynthesizer(), "", tmp_path)
    with pytest.raises(InvalidInputError):
        PromptCache(ToneSynthesizer(), "tone", tmp_path).get("...")  # nothing to say
