"""agent.tts.frames: call frames from whole clips and from sentence-by-sentence synthesis (with the tone fake)."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import numpy.typing as npt
import pytest

from agent.testing import ToneSynthesizer
from agent.tts.frames import CallAudioStream, astream_call_frames, iter_call_frames, to_call_frames
from core.audio import AudioClip
from core.errors import AudioFormatError

pytestmark = pytest.mark.unit

TEXT = "Hello there. Your card is blocked! Anything else?"
SENTENCES = ["Hello there.", "Your card is blocked!", "Anything else?"]


def pcm(frames: list[bytes]) -> npt.NDArray[np.int32]:
    return np.frombuffer(b"".join(frames), dtype="<i2").astype(np.int32)


def tone_clip(n: int, rate: int = 8000, amplitude: int = 1000) -> AudioClip:
    t = np.arange(n) / rate
    return AudioClip(np.rint(amplitude * np.sin(2 * np.pi * 300 * t)).astype(np.int16), rate, 1)


@pytest.mark.parametrize(("rate", "size"), [(8000, 160), (16000, 320)])
def test_to_call_frames_sizes_count_and_padding(rate: int, size: int) -> None:
    clip = AudioClip(np.arange(1, 1001, dtype=np.int16), rate, 1)  # already at the call rate: no resampling
    frames = to_call_frames(clip, rate)
    assert len(frames) == -(-1000 // size)
    assert all(len(f) == 2 * size for f in frames)
    out = pcm(frames)
    assert np.array_equal(out[:1000], np.arange(1, 1001))
    assert not out[1000:].any()  # zero padding
    assert frames[0][:4] == b"\x01\x00\x02\x00"  # little-endian int16


@pytest.mark.parametrize(("rate", "size"), [(8000, 160), (16000, 320)])
def test_to_call_frames_resamples_from_the_voice_rate(rate: int, size: int) -> None:
    clip = tone_clip(22_050, rate=22_050)  # 1 s at 22,050 Hz
    frames = to_call_frames(clip, rate)
    assert len(frames) == 50 and {len(f) for f in frames} == {2 * size}
    out = pcm(frames)
    assert 600 < np.sqrt(np.mean(out[size:-size].astype(np.float64) ** 2)) < 800  # 1000 peak → ~707 rms


def test_to_call_frames_empty_stereo_and_bad_rate() -> None:
    assert to_call_frames(AudioClip(np.zeros(0, dtype=np.int16), 8000, 1)) == []
    stereo = AudioClip(np.full((160, 2), 100, dtype=np.int16), 8000, 2)
    assert pcm(to_call_frames(stereo)).tolist() == [100] * 160
    with pytest.raises(AudioFormatError):
        to_call_frames(stereo, rate_hz=8001)


@pytest.mark.parametrize(("rate", "size"), [(8000, 160), (16000, 320)])
def test_stream_has_no_gaps_between_sentences(rate: int, size: int) -> None:
    synth = ToneSynthesizer()
    total_in = sum(synth.sentence_samples(s) for s in SENTENCES)
    stream = CallAudioStream(rate)
    frames = list(stream.frames(synth.synthesize_sentences(TEXT)))
    assert {len(f) for f in frames} == {2 * size}
    total_out = math.ceil(total_in * rate / 22_050)  # what the resampler makes of the whole utterance
    assert len(frames) == math.ceil(total_out / size)  # one padded frame at the end only, no gaps between
    assert stream.frames_out == len(frames) and stream.pending_samples == 0


@pytest.mark.parametrize("rate", [8000, 16000])
def test_streaming_equals_batch(rate: int) -> None:
    synth = ToneSynthesizer()
    batch = pcm(to_call_frames(synth.synthesize(TEXT), rate))
    exact = pcm(list(CallAudioStream(rate, declick_ms=0).frames(synth.synthesize_sentences(TEXT))))
    assert np.array_equal(exact, batch)
    declicked = pcm(list(CallAudioStream(rate).frames(synth.synthesize_sentences(TEXT))))
    assert len(declicked) == len(batch)
    err = np.sqrt(np.mean((declicked - batch).astype(np.float64) ** 2))
    assert err < 0.02 * np.sqrt(np.mean(batch.astype(np.float64) ** 2))


def test_push_by_push_equals_frames() -> None:
    synth = ToneSynthesizer()
    stream = CallAudioStream(8000)
    pushed: list[bytes] = []
    for clip in synth.synthesize_sentences(TEXT):
        got = stream.push(clip)
        assert stream.pending_samples < 160
        pushed += got
    pushed += stream.finish()
    assert pushed == list(CallAudioStream(8000).frames(synth.synthesize_sentences(TEXT)))
    assert stream.finish() == []  # finished streams are empty and reusable


def _max_step_near_joins(out: npt.NDArray[np.int32], synth: ToneSynthesizer, rate: int) -> tuple[int, int]:
    steps = np.abs(np.diff(out))
    joins = np.cumsum([synth.sentence_samples(s) for s in SENTENCES])[:-1] * rate // 22_050
    near = max(int(steps[j - 40 : j + 40].max()) for j in joins)
    middle = int(joins[0]) // 2
    return near, int(steps[middle - 200 : middle + 200].max())


@pytest.mark.parametrize("rate", [8000, 16000])
def test_no_discontinuity_spikes_at_joins(rate: int) -> None:
    # A synthesizer whose sentences start and stop mid-waveform (the worst case for clicks).
    synth = ToneSynthesizer(fade_ms=0)
    out = pcm(list(CallAudioStream(rate).frames(synth.synthesize_sentences(TEXT))))
    near, steady = _max_step_near_joins(out, synth, rate)
    assert near <= 1.05 * steady, (near, steady)
    # Without the declick fade the same joins click: the test can tell.
    raw = pcm(list(CallAudioStream(rate, declick_ms=0).frames(synth.synthesize_sentences(TEXT))))
    near_raw, _ = _max_step_near_joins(raw, synth, rate)
    assert near_raw > 2 * steady


def test_rate_change_between_clips_and_reset() -> None:
    stream = CallAudioStream(8000, declick_ms=0)
    first = stream.push(tone_clip(2205, rate=22_050))  # 100 ms at 22,050 Hz
    second = stream.push(tone_clip(800, rate=8000))  # 100 ms already at 8 kHz: flushes the resampler first
    rest = stream.finish()
    assert len(first) + len(second) + len(rest) == 10
    stream.push(tone_clip(800))
    stream.reset()
    assert stream.pending_samples == 0 and stream.frames_out == 0 and stream.finish() == []


def test_iter_and_async_frames_agree() -> None:
    synth = ToneSynthesizer()
    sync = list(iter_call_frames(synth, TEXT, 16000))

    async def collect() -> list[bytes]:
        return [frame async for frame in astream_call_frames(synth, TEXT, 16000)]

    assert asyncio.run(collect()) == sync
    assert len(sync) > 10


def test_bad_arguments() -> None:
    with pytest.raises(AudioFormatError):
        CallAudioStream(8000, frame_ms=0)
    with pytest.raises(AudioFormatError):
        CallAudioStream(8000, declick_ms=-1)


def test_split_lead_clause_cuts_only_a_long_first_sentence_after_its_first_clause() -> None:
    from agent.tts.base import split_lead_clause

    long = "The card ending in 1234 is now reported lost; your reference is LC-88AB12. A new card follows."
    assert split_lead_clause(long) == [
        "The card ending in 1234 is now reported lost;", "your reference is LC-88AB12.", "A new card follows.",
    ]  # fmt: skip
    assert split_lead_clause("Sure, let me check your balance.") == ["Sure, let me check your balance."]
    assert split_lead_clause("您的卡片已挂失，新卡将在七到十个工作日内寄出。", longer_than=10, min_chars=4) == [
        "您的卡片已挂失，", "新卡将在七到十个工作日内寄出。",
    ]  # fmt: skip
    assert split_lead_clause("x" * 80) == ["x" * 80] and split_lead_clause("...") == []
