"""core.audio: G.711, resampling, conversions, WAV/FLAC I/O, framing."""

from __future__ import annotations

import importlib
import io
import struct
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np
import numpy.typing as npt
import pytest
import soundfile as sf

from core.audio import (
    AudioClip,
    Resampler,
    alaw_decode,
    alaw_encode,
    encode_audio,
    float32_to_pcm16,
    frame_iter,
    mix_to_mono,
    pcm16_to_float32,
    read_audio,
    resample,
    stereo_interleave,
    ulaw_decode,
    ulaw_encode,
    write_audio,
)
from core.errors import AudioFormatError, NotFoundError, PayloadTooLargeError

pytestmark = pytest.mark.unit

ALL_PCM = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = bytes(range(256))


def _audioop() -> ModuleType:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            return importlib.import_module("audioop")
        except ImportError:
            pytest.skip("audioop not available (Python >= 3.13)")


def tone(freq_hz: float, rate_hz: int, seconds: float = 1.0, amplitude: float = 10000.0) -> npt.NDArray[np.int16]:
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    return np.rint(amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.int16)


def rms(x: npt.NDArray[np.int16]) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


# ------------------------------------------------------------------------------------------------- G.711


def test_ulaw_bit_exact_with_audioop() -> None:
    audioop = _audioop()
    assert ulaw_encode(ALL_PCM) == audioop.lin2ulaw(ALL_PCM.tobytes(), 2)
    assert ulaw_decode(ALL_CODES).tobytes() == audioop.ulaw2lin(ALL_CODES, 2)


def test_alaw_bit_exact_with_audioop() -> None:
    audioop = _audioop()
    assert alaw_encode(ALL_PCM) == audioop.lin2alaw(ALL_PCM.tobytes(), 2)
    assert alaw_decode(ALL_CODES).tobytes() == audioop.alaw2lin(ALL_CODES, 2)


def test_g711_reference_values() -> None:
    # ITU-T G.711 tables: μ-law 0xFF/0x7F are ±0, 0x80 is +32124; A-law 0xD5 is +8, 0x2A is -32256.
    assert ulaw_decode(b"\xff\x7f\x80\x00").tolist() == [0, 0, 32124, -32124]
    assert alaw_decode(b"\xd5\x55\xaa\x2a").tolist() == [8, -8, 32256, -32256]
    assert ulaw_encode(np.array([0, 32767, -32768], dtype=np.int16)) == b"\xff\x80\x00"
    assert alaw_encode(np.array([0, 32767, -32768], dtype=np.int16)) == b"\xd5\xaa\x2a"


def test_g711_round_trip() -> None:
    # Every code decodes to a value that encodes back to it, except μ-law's negative zero.
    ulaw = ulaw_encode(ulaw_decode(ALL_CODES))
    assert [i for i in range(256) if ulaw[i] != i] == [0x7F]
    assert alaw_encode(alaw_decode(ALL_CODES)) == ALL_CODES
    # PCM -> G.711 -> PCM stays within half a quantisation step (<= 1/32 of the value, or tiny absolute).
    for enc, dec in ((ulaw_encode, ulaw_decode), (alaw_encode, alaw_decode)):
        back = dec(enc(ALL_PCM)).astype(np.int32)
        err = np.abs(back - ALL_PCM.astype(np.int32))
        assert np.all(err <= np.maximum(np.abs(ALL_PCM.astype(np.int32)) // 16, 16) + 1)


def test_g711_accepts_bytes_and_rejects_bad_input() -> None:
    pcm = tone(440, 8000, 0.02)
    assert ulaw_encode(pcm.tobytes()) == ulaw_encode(pcm)
    assert alaw_encode(pcm.tobytes()) == alaw_encode(pcm)
    with pytest.raises(AudioFormatError):
        ulaw_encode(b"\x00\x01\x02")
    with pytest.raises(AudioFormatError):
        alaw_encode(np.zeros(4, dtype=np.float32))
    assert ulaw_decode(b"").shape == (0,)


# -------------------------------------------------------------------------------------------- resampling


def test_1khz_tone_survives_16k_8k_16k() -> None:
    x = tone(1000, 16000)
    y = resample(resample(x, 16000, 8000), 8000, 16000)
    assert y.dtype == np.int16 and len(y) == len(x)
    err = np.abs(y[100:-100].astype(np.int32) - x[100:-100])
    assert err.max() <= 4  # of 10000 peak: rounding only


def test_6khz_tone_attenuated_when_downsampling_to_8k() -> None:
    x = tone(6000, 16000)
    y = resample(x, 16000, 8000)
    assert len(y) == 8000
    attenuation_db = 20 * np.log10(max(rms(y[100:-100]), 1e-3) / rms(x))
    assert attenuation_db < -40


@pytest.mark.parametrize("freq_hz", [300, 1000, 3000, 3400])
def test_telephone_band_passes_downsampling(freq_hz: int) -> None:
    x = tone(freq_hz, 16000)
    y = resample(x, 16000, 8000)
    assert abs(20 * np.log10(rms(y[100:-100]) / rms(x))) < 0.1


def test_upsampling_leaves_no_images() -> None:
    y = resample(tone(3000, 8000), 8000, 16000)[200:-200].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    freqs = np.fft.rfftfreq(len(y), 1 / 16000)
    assert 20 * np.log10(spectrum[freqs > 4500].max() / spectrum.max()) < -60  # image of 3 kHz is at 5 kHz


@pytest.mark.parametrize(("src", "dst"), [(22050, 16000), (44100, 16000), (48000, 8000), (16000, 44100)])
def test_general_rates_keep_a_tone(src: int, dst: int) -> None:
    x = tone(1000, src)
    y = resample(x, src, dst)
    assert len(y) == dst
    expected = tone(1000, dst)
    assert np.abs(y[200:-200].astype(np.int32) - expected[200:-200]).max() <= 4


@pytest.mark.parametrize(("src", "dst"), [(8000, 16000), (16000, 8000), (22050, 16000), (44100, 16000)])
def test_streaming_equals_batch(src: int, dst: int) -> None:
    rng = np.random.default_rng(7)
    x = np.rint(rng.standard_normal(src) * 4000).astype(np.int16)
    batch = resample(x, src, dst)
    r = Resampler(src, dst)
    frame = src // 50  # 20 ms
    outs = [r.process(x[i : i + frame]) for i in range(0, len(x), frame)]
    streamed = np.concatenate([*outs, r.flush()])
    assert len(streamed) == len(batch)
    assert np.abs(streamed.astype(np.int32) - batch).max() <= 1
    # After the first frame (short by the latency), every 20 ms in gives 20 ms out.
    assert len(outs[0]) >= dst // 50 - r.latency_samples * dst // src - 1
    assert {len(o) for o in outs[1:]} == {dst // 50}


def test_streaming_has_no_clicks_at_frame_boundaries() -> None:
    x = tone(440, 8000, 0.5)
    r = Resampler(8000, 16000)
    y = np.concatenate([*(r.process(f) for f in frame_iter(x, 8000)), r.flush()]).astype(np.int32)
    # Away from the abrupt start and end, a 440 Hz sine at 16 kHz moves at most 2*pi*440/16000*10000 ~ 1728
    # per sample; a discontinuity at a frame boundary (every 320 samples) would exceed that.
    assert np.abs(np.diff(y[100:-100])).max() < 1740


def test_resampler_latency_and_reset() -> None:
    r = Resampler(16000, 8000)
    assert 0 < r.latency_samples <= 100
    assert r.latency_ms == pytest.approx(r.latency_samples / 16)
    first = np.concatenate([r.process(tone(500, 16000, 0.1)), r.flush()])
    second = np.concatenate([r.process(tone(500, 16000, 0.1)), r.flush()])
    assert np.array_equal(first, second)


def test_resample_multichannel_identity_and_errors() -> None:
    stereo = np.stack([tone(500, 8000), tone(700, 8000)], axis=1)
    up = resample(stereo, 8000, 16000)
    assert up.shape == (16000, 2)
    assert np.array_equal(up[:, 1], resample(stereo[:, 1].copy(), 8000, 16000))
    assert np.array_equal(resample(stereo, 8000, 8000), stereo)
    assert resample(np.zeros(0, dtype=np.int16), 8000, 16000).shape == (0,)
    with pytest.raises(AudioFormatError):
        resample(stereo.astype(np.float32), 8000, 16000)
    with pytest.raises(AudioFormatError):
        Resampler(8000, 16000).process(stereo)
    with pytest.raises(AudioFormatError):
        Resampler(0, 16000)
    with pytest.raises(AudioFormatError):
        Resampler(16001, 16000)


# ----------------------------------------------------------------------------------------- conversions


def test_float_conversion_round_trip_and_clipping() -> None:
    f = pcm16_to_float32(ALL_PCM)
    assert f.dtype == np.float32 and f.min() == -1.0 and f.max() < 1.0
    assert np.array_equal(float32_to_pcm16(f), ALL_PCM)
    assert pcm16_to_float32(ALL_PCM[:4].tobytes()).tolist() == f[:4].tolist()
    clipped = float32_to_pcm16(np.array([2.0, -2.0, np.nan, np.inf, 0.5], dtype=np.float32))
    assert clipped.tolist() == [32767, -32768, 0, 32767, 16384]


def test_mix_to_mono_and_interleave() -> None:
    left = np.array([100, -200, 32767], dtype=np.int16)
    right = np.array([300, -400], dtype=np.int16)
    st = stereo_interleave(left, right)
    assert st.shape == (3, 2)
    assert st.tobytes() == np.array([100, 300, -200, -400, 32767, 0], dtype=np.int16).tobytes()
    assert mix_to_mono(st).tolist() == [200, -300, 16384]
    assert np.array_equal(mix_to_mono(left), left)


# ------------------------------------------------------------------------------------------------ files


@pytest.mark.parametrize(
    ("fmt", "subtype", "tolerance"),
    [("WAV", "PCM_16", 0), ("WAV", "PCM_24", 0), ("WAV", "PCM_32", 0), ("WAV", "FLOAT", 0), ("WAV", "DOUBLE", 0),
     ("FLAC", "PCM_16", 0), ("FLAC", "PCM_24", 0), ("WAV", "ULAW", 1024), ("WAV", "ALAW", 1024)],
)  # fmt: skip
def test_files_written_by_soundfile_read_back(tmp_path: Path, fmt: str, subtype: str, tolerance: int) -> None:
    x = np.stack([tone(440, 8000, 0.3, 20000), tone(1000, 8000, 0.3, 5000)], axis=1)
    path = tmp_path / f"clip.{fmt.lower()}"
    data = x.astype(np.float64) / 32768 if subtype in ("FLOAT", "DOUBLE") else x
    sf.write(path, data, 8000, subtype=subtype, format=fmt)
    clip = read_audio(path)
    assert (clip.sample_rate, clip.channels, clip.samples.shape) == (8000, 2, x.shape)
    assert clip.samples.dtype == np.int16
    assert np.abs(clip.samples.astype(np.int32) - x).max() <= tolerance
    assert clip.duration_ms == pytest.approx(300.0)


def _g711_wav(codes: bytes, format_tag: int, rate_hz: int = 8000) -> bytes:
    fmt = struct.pack("<HHIIHHH", format_tag, 1, rate_hz, rate_hz, 1, 8, 0)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(codes)) + codes
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_g711_wav_decodes_like_our_codec() -> None:
    x = tone(440, 8000, 0.1, 20000)
    ulaw, alaw = ulaw_encode(x), alaw_encode(x)
    assert np.array_equal(read_audio(_g711_wav(ulaw, 7)).samples, ulaw_decode(ulaw))
    assert np.array_equal(read_audio(_g711_wav(alaw, 6)).samples, alaw_decode(alaw))


@pytest.mark.parametrize(("fmt", "subtype"), [("WAV", None), ("WAV", "PCM_24"), ("WAV", "FLOAT"), ("FLAC", None)])
def test_write_audio_round_trip(tmp_path: Path, fmt: str, subtype: str | None) -> None:
    x = tone(300, 16000, 0.25)
    x[:2] = [-32768, 32767]
    path = tmp_path / "out.bin"
    write_audio(path, AudioClip(x, 16000, 1), fmt, subtype=subtype)  # type: ignore[arg-type]
    assert sf.info(str(path)).format == fmt
    clip = read_audio(path)
    assert (clip.sample_rate, clip.channels) == (16000, 1)
    assert np.array_equal(clip.samples, x)


def test_float_wav_is_normalised_and_clipped() -> None:
    buf = io.BytesIO()
    sf.write(buf, np.array([0.5, -0.25, 1.5, -3.0]), 8000, subtype="FLOAT", format="WAV")
    assert read_audio(buf.getvalue()).samples.tolist() == [16384, -8192, 32767, -32768]


def _wav_bytes() -> bytes:
    return encode_audio(AudioClip(tone(440, 8000, 0.2), 8000, 1))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, this is not audio at all",
        bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8)),
        b"RIFF\x24\x00\x00\x00WAVEfmt ",
        _wav_bytes()[:30],
        _wav_bytes()[:44],
        _wav_bytes()[: len(_wav_bytes()) // 2],
        _wav_bytes()[:-1],
        encode_audio(AudioClip(tone(440, 8000, 0.2), 8000, 1), "FLAC")[:500],
        b"fLaC" + bytes(200),
        encode_audio(AudioClip(np.zeros(0, dtype=np.int16), 8000, 1)),
    ],
    ids=["empty", "text", "random", "riff-stub", "header-cut", "no-data", "half", "minus-1", "flac-cut", "flac-zero",
         "zero-frames"],
)  # fmt: skip
def test_bad_input_raises_audio_format_error(data: bytes) -> None:
    with pytest.raises(AudioFormatError):
        read_audio(data)


def test_other_containers_are_refused() -> None:
    buf = io.BytesIO()
    sf.write(buf, tone(440, 8000, 0.1), 8000, format="AIFF")
    with pytest.raises(AudioFormatError, match="expected WAV, FLAC or MP3"):
        read_audio(buf.getvalue())


def test_mp3_is_read_as_int16() -> None:
    buf = io.BytesIO()
    stereo = np.stack([tone(440, 8000, 1.0), tone(660, 8000, 1.0)], axis=1)
    sf.write(buf, stereo, 8000, format="MP3")
    clip = read_audio(buf.getvalue())
    assert clip.channels == 2 and clip.sample_rate == 8000
    assert clip.samples.dtype == np.int16 and abs(clip.frames - 8000) < 2000


def test_size_limit_and_missing_file(tmp_path: Path) -> None:
    data = _wav_bytes()
    assert read_audio(data, max_bytes=len(data)).frames == 1600
    with pytest.raises(PayloadTooLargeError):
        read_audio(data, max_bytes=len(data) - 1)
    path = tmp_path / "a.wav"
    path.write_bytes(data)
    with pytest.raises(PayloadTooLargeError):
        read_audio(path, max_bytes=100)
    with pytest.raises(NotFoundError):
        read_audio(tmp_path / "missing.wav")
    with pytest.raises(AudioFormatError):
        read_audio(tmp_path)  # a directory


def test_audio_clip_validates() -> None:
    with pytest.raises(AudioFormatError):
        AudioClip(np.zeros((10, 2), dtype=np.int16), 8000, 1)
    with pytest.raises(AudioFormatError):
        AudioClip(np.zeros(10, dtype=np.float32), 8000, 1)
    with pytest.raises(AudioFormatError):
        encode_audio(AudioClip(np.zeros(10, dtype=np.int16), 8000, 1), "MP3")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- framing


def test_frame_iter_pads_last_frame() -> None:
    x = np.arange(1, 801, dtype=np.int16)  # 50 ms at 16 kHz
    frames = list(frame_iter(x, 16000))
    assert [len(f) for f in frames] == [320, 320, 320]
    assert np.array_equal(np.concatenate(frames)[:800], x)
    assert not frames[2][160:].any()
    assert not frames[0].flags.writeable
    assert list(frame_iter(np.zeros(0, dtype=np.int16), 8000)) == []
    stereo = list(frame_iter(np.zeros((330, 2), dtype=np.int16), 16000, frame_ms=10))
    assert [f.shape for f in stereo] == [(160, 2), (160, 2), (160, 2)]


def test_frame_iter_rejects_fractional_frames_eagerly() -> None:
    with pytest.raises(AudioFormatError):
        frame_iter(np.zeros(100, dtype=np.int16), 11025, frame_ms=10)
    with pytest.raises(AudioFormatError):
        frame_iter(np.zeros(100, dtype=np.int16), 8000, frame_ms=0)
