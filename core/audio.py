"""Audio utilities: G.711 codecs, resampling, sample-format conversion, WAV/FLAC I/O and framing.

Everything works on 16-bit signed PCM (``int16``) held in numpy arrays: shape ``(n,)`` for mono and
``(n, channels)`` for interleaved multi-channel audio. Sample rates are in Hz, durations in ms, sizes in bytes
unless a name says ``samples``. No ``audioop`` (removed in Python 3.13) and no scipy.

All functions are pure and thread-safe; the lazily built lookup and filter tables are immutable and shared.
A :class:`Resampler` holds per-stream state and must be used by one thread (one media task) at a time.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import soundfile as sf

from core.errors import AudioFormatError, NotFoundError, PayloadTooLargeError

PcmArray = npt.NDArray[np.int16]
"""16-bit signed PCM samples, shape ``(n,)`` or ``(n, channels)``."""

# --------------------------------------------------------------------------------------------------- G.711

_ULAW_SEG_END = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF], dtype=np.int32)
_ALAW_SEG_END = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF], dtype=np.int32)


def _build_ulaw_decode() -> PcmArray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, 0x84 - t, t - 0x84).astype(np.int16)


def _build_alaw_decode() -> PcmArray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    seg = (a & 0x70) >> 4
    t = ((a & 0x0F) << 4) + np.where(seg == 0, 8, 0x108)
    t = np.where(seg > 1, t << np.maximum(seg - 1, 0), t)
    return np.where(a & 0x80, t, -t).astype(np.int16)


_ULAW_DECODE = _build_ulaw_decode()
_ALAW_DECODE = _build_alaw_decode()
_ULAW_DECODE.flags.writeable = False
_ALAW_DECODE.flags.writeable = False


def _all_int16_by_uint16() -> npt.NDArray[np.int32]:
    """Every int16 value, ordered by its uint16 bit pattern (so index ``x.view(uint16)`` finds ``x``)."""
    return np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)


@lru_cache(maxsize=1)
def _ulaw_encode_table() -> npt.NDArray[np.uint8]:
    v = _all_int16_by_uint16() >> 2  # 14-bit
    mask = np.where(v < 0, 0x7F, 0xFF)
    mag = np.minimum(np.abs(v), 8159) + 33
    seg = np.searchsorted(_ULAW_SEG_END, mag)
    code = (seg << 4) | ((mag >> (np.minimum(seg, 7) + 1)) & 0x0F)
    code = np.where(seg >= 8, 0x7F, code) ^ mask
    table = code.astype(np.uint8)
    table.flags.writeable = False
    return table


@lru_cache(maxsize=1)
def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    v = _all_int16_by_uint16() >> 3  # 13-bit
    mask = np.where(v < 0, 0x55, 0xD5)
    mag = np.where(v < 0, -v - 1, v)
    seg = np.searchsorted(_ALAW_SEG_END, mag)  # never 8: |13-bit| <= 0xFFF
    code = (seg << 4) | ((mag >> np.where(seg < 2, 1, seg)) & 0x0F)
    table = (code ^ mask).astype(np.uint8)
    table.flags.writeable = False
    return table


def _pcm_1d(pcm: npt.NDArray[Any] | bytes) -> PcmArray:
    """``pcm`` as a flat int16 array; bytes are little-endian PCM16."""
    if isinstance(pcm, bytes | bytearray | memoryview):
        if len(pcm) % 2:
            raise AudioFormatError("PCM16 byte length must be even.")
        return np.frombuffer(pcm, dtype="<i2").astype(np.int16, copy=False)
    if pcm.dtype.kind != "i" or pcm.dtype.itemsize != 2:
        raise AudioFormatError("PCM samples must be int16.")
    return pcm.astype(np.int16, copy=False).reshape(-1)


def ulaw_decode(data: bytes) -> PcmArray:
    """Decode G.711 μ-law bytes (one byte per sample) to int16 PCM, shape ``(len(data),)``. Bit-exact with ITU
    G.711 / the old ``audioop.ulaw2lin(data, 2)``."""
    return _ULAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def alaw_decode(data: bytes) -> PcmArray:
    """Decode G.711 A-law bytes (one byte per sample) to int16 PCM, shape ``(len(data),)``. Bit-exact with ITU
    G.711 / the old ``audioop.alaw2lin(data, 2)``."""
    return _ALAW_DECODE[np.frombuffer(data, dtype=np.uint8)]


def ulaw_encode(pcm: npt.NDArray[np.int16] | bytes) -> bytes:
    """Encode int16 PCM (array, flattened in C order, or little-endian bytes) to G.711 μ-law, one byte per
    sample. Same output as the old ``audioop.lin2ulaw(pcm, 2)`` (the Sun/CCITT reference). Raises
    :class:`AudioFormatError` for non-int16 arrays or an odd byte count."""
    return bytes(_ulaw_encode_table()[_pcm_1d(pcm).view(np.uint16)].tobytes())


def alaw_encode(pcm: npt.NDArray[np.int16] | bytes) -> bytes:
    """Encode int16 PCM (array or little-endian bytes) to G.711 A-law, one byte per sample. Same output as the
    old ``audioop.lin2alaw(pcm, 2)``. Raises :class:`AudioFormatError` like :func:`ulaw_encode`."""
    return bytes(_alaw_encode_table()[_pcm_1d(pcm).view(np.uint16)].tobytes())


# ---------------------------------------------------------------------------------------------- resampling

_STOPBAND_DB = 80.0
_PASS_EDGE = 0.43  # of the lower of the two rates: 3440 Hz for 8 kHz
_STOP_EDGE = 0.50  # Nyquist of the lower rate: nothing above it survives (aliases or images)
_MAX_PHASES = 4096
_BLOCK = 4096  # outputs computed per vectorised step, bounds temporary memory


@lru_cache(maxsize=32)
def _polyphase_table(up: int, down: int) -> tuple[npt.NDArray[np.float64], int]:
    """Kaiser-windowed sinc weights, shape ``(up, 2K+1)``: row ``p`` interpolates at input time
    ``q + p/up`` from input samples ``q-K .. q+K``. Each row sums to 1 (exact DC gain)."""
    beta = 0.1102 * (_STOPBAND_DB - 8.7)
    taps_low = (_STOPBAND_DB - 7.95) / (2.285 * 2 * math.pi * (_STOP_EDGE - _PASS_EDGE))
    scale = min(1.0, up / down)  # lower rate / input rate
    cutoff = (_PASS_EDGE + _STOP_EDGE) / 2 * scale  # cycles per input sample
    half = taps_low / 2 / scale  # half-width in input samples
    k = math.ceil(half) + 1
    tau = (np.arange(up, dtype=np.float64) / up)[:, None] - np.arange(-k, k + 1, dtype=np.float64)[None, :]
    inside = np.abs(tau) <= half
    window = np.i0(beta * np.sqrt(np.clip(1.0 - (tau / half) ** 2, 0.0, None))) / np.i0(beta)
    weights = np.where(inside, 2 * cutoff * np.sinc(2 * cutoff * tau) * window, 0.0)
    weights /= weights.sum(axis=1, keepdims=True)
    weights.flags.writeable = False
    return weights, k


class Resampler:
    """Streaming int16 resampler from ``src_hz`` to ``dst_hz`` (any rational ratio, e.g. 8000↔16000,
    22050→16000, 44100→16000) with a linear-phase, anti-aliased windowed-sinc polyphase FIR (Kaiser, ~80 dB
    stopband starting at the lower rate's Nyquist, flat to 43 % of the lower rate: 3.44 kHz for 8 kHz).

    Feed mono frames of any size to :meth:`process`; filter history is kept between calls, so the
    concatenation of all outputs plus :meth:`flush` equals :func:`resample` on the whole signal (the same
    arithmetic, no clicks at frame boundaries). Output is delayed by at most :attr:`latency_samples` input
    samples: the first call yields that much less, after which each call yields ``len(frame) * dst/src``
    samples (exactly, when the frame is a multiple of ``src/gcd(src, dst)`` samples, e.g. any 20 ms frame of
    the rates above). :meth:`flush` emits the tail and resets the resampler for a new stream.

    Not thread-safe: one instance per stream, used by one thread or task at a time.
    """

    def __init__(self, src_hz: int, dst_hz: int) -> None:
        if src_hz <= 0 or dst_hz <= 0:
            raise AudioFormatError("Sample rates must be positive.")
        g = math.gcd(src_hz, dst_hz)
        self.src_hz = src_hz
        self.dst_hz = dst_hz
        self._up, self._down = dst_hz // g, src_hz // g
        if self._up > _MAX_PHASES:
            raise AudioFormatError("Unsupported resampling ratio.", src_hz=src_hz, dst_hz=dst_hz)
        self._table, self._k = _polyphase_table(self._up, self._down)
        self._taps = np.arange(self._table.shape[1], dtype=np.int64)
        self.reset()

    @property
    def latency_samples(self) -> int:
        """Look-ahead of the filter in input samples (at ``src_hz``): output is this late at most."""
        return self._k

    @property
    def latency_ms(self) -> float:
        """:attr:`latency_samples` in ms."""
        return self._k * 1000.0 / self.src_hz

    def reset(self) -> None:
        """Forget all history; the next :meth:`process` starts a new stream."""
        self._buf = np.zeros(self._k, dtype=np.float64)  # input samples from index self._buf_start on
        self._buf_start = -self._k
        self._n_in = 0
        self._n_out = 0

    def process(self, pcm: npt.NDArray[np.int16] | bytes) -> PcmArray:
        """Resample the next chunk of mono int16 PCM (array or little-endian bytes); returns the output samples
        that are complete so far (possibly none)."""
        x = _pcm_1d(pcm)
        self._buf = np.concatenate([self._buf, x.astype(np.float64)])
        self._n_in += len(x)
        ready = self._n_in - self._k
        return self._emit(-(-ready * self._up // self._down) if ready > 0 else 0)

    def flush(self) -> PcmArray:
        """Emit the remaining output (the end of the signal filtered against silence) and reset."""
        total = -(-self._n_in * self._up // self._down)
        if total > self._n_out:
            need = (total - 1) * self._down // self._up + self._k + 1 - (self._buf_start + len(self._buf))
            if need > 0:
                self._buf = np.concatenate([self._buf, np.zeros(need, dtype=np.float64)])
        out = self._emit(total)
        self.reset()
        return out

    def _emit(self, n_end: int) -> PcmArray:
        if n_end <= self._n_out:
            return np.zeros(0, dtype=np.int16)
        parts = []
        for first in range(self._n_out, n_end, _BLOCK):
            n = np.arange(first, min(first + _BLOCK, n_end), dtype=np.int64)
            pos = n * self._down
            q, p = pos // self._up, pos % self._up
            windows = self._buf[(q - self._k - self._buf_start)[:, None] + self._taps]
            parts.append(np.einsum("ij,ij->i", windows, self._table[p]))
        self._n_out = n_end
        keep_from = n_end * self._down // self._up - self._k
        self._buf = self._buf[keep_from - self._buf_start :]
        self._buf_start = keep_from
        y = np.concatenate(parts)
        return np.clip(np.rint(y), -32768, 32767).astype(np.int16)


def resample(pcm: npt.NDArray[np.int16], src_hz: int, dst_hz: int) -> PcmArray:
    """Resample a whole int16 signal, mono ``(n,)`` or ``(n, channels)``, from ``src_hz`` to ``dst_hz``.

    Output has ``ceil(n * dst_hz / src_hz)`` samples, time-aligned with the input (the filter delay is
    compensated). See :class:`Resampler` for the filter. Thread-safe.
    """
    if pcm.dtype != np.int16 or pcm.ndim not in (1, 2):
        raise AudioFormatError("PCM samples must be int16 of shape (n,) or (n, channels).")
    if pcm.ndim == 2:
        return np.stack([resample(pcm[:, c], src_hz, dst_hz) for c in range(pcm.shape[1])], axis=1)
    r = Resampler(src_hz, dst_hz)
    if src_hz == dst_hz:
        return pcm.copy()
    return np.concatenate([r.process(pcm), r.flush()])


# ------------------------------------------------------------------------------------ sample conversions


def pcm16_to_float32(pcm: npt.NDArray[np.int16] | bytes) -> npt.NDArray[np.float32]:
    """int16 PCM to float32 in [-1.0, 1.0) (``x / 32768``), same shape (bytes give shape ``(n,)``)."""
    arr = _pcm_1d(pcm) if isinstance(pcm, bytes | bytearray | memoryview) else pcm
    if arr.dtype != np.int16:
        raise AudioFormatError("PCM samples must be int16.")
    return arr.astype(np.float32) / np.float32(32768.0)


def float32_to_pcm16(samples: npt.NDArray[np.floating[Any]]) -> PcmArray:
    """Float samples (nominal range [-1.0, 1.0]) to int16 PCM: ``round(x * 32768)`` clipped to
    [-32768, 32767]; NaN becomes 0 and ±inf full scale. Exact inverse of :func:`pcm16_to_float32`."""
    x = np.nan_to_num(np.asarray(samples, dtype=np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(np.rint(x * 32768.0), -32768, 32767).astype(np.int16)


def mix_to_mono(pcm: npt.NDArray[np.int16]) -> PcmArray:
    """Average the channels of ``(n, channels)`` int16 PCM to shape ``(n,)`` (rounded); mono input is copied."""
    if pcm.dtype != np.int16 or pcm.ndim not in (1, 2):
        raise AudioFormatError("PCM samples must be int16 of shape (n,) or (n, channels).")
    if pcm.ndim == 1:
        return pcm.copy()
    return np.rint(pcm.mean(axis=1, dtype=np.float64)).astype(np.int16)


def stereo_interleave(left: npt.NDArray[np.int16], right: npt.NDArray[np.int16]) -> PcmArray:
    """Two mono int16 legs to one ``(n, 2)`` C-contiguous array (``.tobytes()`` is L R L R …).

    The shorter leg is padded with trailing zeros (silence) to the longer one's length.
    """
    a, b = _pcm_1d(left), _pcm_1d(right)
    out = np.zeros((max(len(a), len(b)), 2), dtype=np.int16)
    out[: len(a), 0] = a
    out[: len(b), 1] = b
    return out


# -------------------------------------------------------------------------------------------------- files

_READ_FORMATS = frozenset({"WAV", "WAVEX", "RF64", "FLAC"})
_FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})
_READ_BLOCK = 1 << 16  # frames decoded per step; headers are not trusted for allocation


@dataclass(frozen=True, eq=False)
class AudioClip:
    """Decoded audio: int16 ``samples`` of shape ``(n,)`` (mono) or ``(n, channels)``, at ``sample_rate`` Hz.

    Treat ``samples`` as read-only.
    """

    samples: PcmArray
    sample_rate: int
    channels: int

    def __post_init__(self) -> None:
        s = self.samples
        shape_ok = (s.ndim == 1 and self.channels == 1) or (s.ndim == 2 and s.shape[1] == self.channels >= 1)
        if s.dtype != np.int16 or not shape_ok or self.sample_rate <= 0:
            raise AudioFormatError("AudioClip needs int16 samples matching channels and a positive rate.")

    @property
    def frames(self) -> int:
        """Number of sample frames (samples per channel)."""
        return int(self.samples.shape[0])

    @property
    def duration_ms(self) -> float:
        """Duration in ms."""
        return self.frames * 1000.0 / self.sample_rate


def _load_bytes(source: str | os.PathLike[str] | bytes, max_bytes: int | None) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        try:
            with open(source, "rb") as fh:
                size = os.fstat(fh.fileno()).st_size
                if max_bytes is not None and size > max_bytes:
                    raise PayloadTooLargeError("Audio exceeds the size limit.", size=size, limit=max_bytes)
                data = fh.read() if max_bytes is None else fh.read(max_bytes + 1)
        except FileNotFoundError as exc:
            raise NotFoundError("Audio file not found.") from exc
        except OSError as exc:
            raise AudioFormatError("Audio file could not be read.") from exc
    if max_bytes is not None and len(data) > max_bytes:
        raise PayloadTooLargeError("Audio exceeds the size limit.", size=len(data), limit=max_bytes)
    return data


def _check_wav_complete(data: bytes) -> None:
    """Reject a RIFF/WAVE whose ``data`` chunk claims more bytes than there are (libsndfile would quietly
    return the part that is there). Placeholder sizes of streaming writers (0, ≥ 0x7FFF0000) are accepted."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return
    pos = 12
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos + 4 : pos + 8], "little")
        if data[pos : pos + 4] == b"data":
            if 0 < size < 0x7FFF0000 and pos + 8 + size > len(data):
                raise AudioFormatError("Audio is truncated.")
            return
        pos += 8 + size + (size & 1)


def _decode(fh: sf.SoundFile) -> PcmArray:
    if fh.format not in _READ_FORMATS:
        raise AudioFormatError("Unsupported audio container; expected WAV or FLAC.")
    if fh.channels < 1 or fh.samplerate < 1:
        raise AudioFormatError("Audio header is invalid.")
    as_float = fh.subtype in _FLOAT_SUBTYPES
    blocks: list[PcmArray] = []
    while True:
        if as_float:
            block = float32_to_pcm16(fh.read(_READ_BLOCK, dtype="float64", always_2d=True))
        else:  # read 32-bit and round to 16, so 24/32-bit PCM is rounded rather than truncated
            wide = fh.read(_READ_BLOCK, dtype="int32", always_2d=True).astype(np.int64)
            block = np.clip((wide + 0x8000) >> 16, -32768, 32767).astype(np.int16)
        if len(block) == 0:
            break
        blocks.append(block)
    samples = np.concatenate(blocks) if blocks else np.zeros((0, fh.channels), dtype=np.int16)
    if len(samples) == 0:
        raise AudioFormatError("Audio contains no samples.")
    if fh.frames > 0 and len(samples) != fh.frames:
        raise AudioFormatError("Audio is truncated.")
    return samples


def read_audio(source: str | os.PathLike[str] | bytes, *, max_bytes: int | None = None) -> AudioClip:
    """Decode a WAV (PCM 8/16/24/32-bit, float, μ-law, A-law, ADPCM, WAVEX, RF64) or FLAC file to int16.

    ``source`` is a path or the file's bytes. Mono gives shape ``(n,)``, otherwise ``(n, channels)``; wider
    samples are rounded to 16 bits and float samples clipped to full scale. Runs in the calling thread (CPU
    and, for paths, blocking file I/O: call it via ``asyncio.to_thread`` from async code).

    Raises :class:`PayloadTooLargeError` when the input is over ``max_bytes`` bytes, :class:`NotFoundError`
    for a missing path, and :class:`AudioFormatError` for empty, truncated, corrupt or non-audio input and
    for containers other than WAV/FLAC. Never returns a partial result.
    """
    data = _load_bytes(source, max_bytes)
    if not data:
        raise AudioFormatError("Audio is empty.")
    _check_wav_complete(data)
    try:
        with sf.SoundFile(io.BytesIO(data)) as fh:
            samples, rate, channels = _decode(fh), int(fh.samplerate), int(fh.channels)
    except AudioFormatError:
        raise
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError, EOFError) as exc:
        raise AudioFormatError("Audio could not be decoded.") from exc
    return AudioClip(samples[:, 0].copy() if channels == 1 else samples, rate, channels)


def encode_audio(clip: AudioClip, format: Literal["WAV", "FLAC"] = "WAV", *, subtype: str | None = None) -> bytes:
    """Encode ``clip`` as a WAV or FLAC file in memory. ``subtype`` is a libsndfile subtype (``"PCM_16"``,
    the default, ``"PCM_24"``, ``"FLOAT"``, ``"ULAW"``, ``"ALAW"``, …). Raises :class:`AudioFormatError` for
    combinations the format cannot hold."""
    if format not in ("WAV", "FLAC"):
        raise AudioFormatError("Unsupported audio container; expected WAV or FLAC.")
    subtype = (subtype or "PCM_16").upper()
    # libsndfile would store int16 in a float file unscaled (1000.0, not 0.0305): scale it ourselves.
    data = pcm16_to_float32(clip.samples) if subtype in _FLOAT_SUBTYPES else clip.samples
    buf = io.BytesIO()
    try:
        sf.write(buf, data, clip.sample_rate, subtype=subtype, format=format)
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as exc:
        raise AudioFormatError("Audio could not be encoded.") from exc
    return buf.getvalue()


def write_audio(
    path: str | os.PathLike[str], clip: AudioClip, format: Literal["WAV", "FLAC"] = "WAV", *, subtype: str | None = None
) -> None:
    """Write ``clip`` to ``path`` as WAV or FLAC (see :func:`encode_audio`). Blocking file I/O."""
    data = encode_audio(clip, format, subtype=subtype)
    with open(path, "wb") as fh:
        fh.write(data)


# ------------------------------------------------------------------------------------------------ framing


def frame_iter(pcm: npt.NDArray[np.int16], sample_rate: int, frame_ms: int = 20) -> Iterator[PcmArray]:
    """Split int16 PCM, ``(n,)`` or ``(n, channels)``, into frames of ``sample_rate * frame_ms / 1000`` samples
    (320 for 16 kHz, 20 ms). The last, partial frame is padded with trailing zeros (silence) to full size;
    empty input yields nothing. Full frames are read-only views into ``pcm``.

    Raises :class:`AudioFormatError` at once (not on iteration) when the frame is not a whole number of
    samples or the arguments are not positive.
    """
    if sample_rate <= 0 or frame_ms <= 0 or (sample_rate * frame_ms) % 1000:
        raise AudioFormatError("Frame length must be a positive whole number of samples.")
    if pcm.dtype != np.int16 or pcm.ndim not in (1, 2):
        raise AudioFormatError("PCM samples must be int16 of shape (n,) or (n, channels).")
    return _frames(pcm, sample_rate * frame_ms // 1000)


def _frames(pcm: PcmArray, size: int) -> Iterator[PcmArray]:
    n = len(pcm)
    for start in range(0, n - size + 1, size):
        view = pcm[start : start + size]
        view.flags.writeable = False
        yield view
    rest = n % size
    if rest:
        last = np.zeros((size, *pcm.shape[1:]), dtype=np.int16)
        last[:rest] = pcm[n - rest :]
        yield last
