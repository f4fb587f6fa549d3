"""Audio utilities: G.711 codecs, resampling, sample-format conversion, WAV/FLAC I/O and framing.

Everything works on 16-bit signed PCM (``int16``) held in numpy arrays: shape ``(n,)`` for mono and
``(n, channels)`` for interleaved multi-channel audio. Sample rates are in Hz, durations in ms, sizes in bytes
unless a name says ``samples``. No ``audioop`` (removed in Python 3.13) and no scipy.

All functions are pure and thread-safe; the lazily built lookup and filter tables are immutable and shared.
A :class:`Resampler` holds per-stream state and must be used by one thread (one media task) at a time.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import soundfile as sf

from core.errors import AudioFormatError, NotFoundError, PayloadTooLargeError
from core.g711 import PcmArray, alaw_decode, alaw_encode, pcm_1d, ulaw_decode, ulaw_encode
from core.resample import Resampler, resample

__all__ = [
    "AudioClip",
    "PcmArray",
    "Resampler",
    "alaw_decode",
    "alaw_encode",
    "encode_audio",
    "float32_to_pcm16",
    "frame_iter",
    "mix_to_mono",
    "pcm16_to_float32",
    "read_audio",
    "read_audio_with_digest",
    "resample",
    "stereo_interleave",
    "ulaw_decode",
    "ulaw_encode",
    "write_audio",
]

# ------------------------------------------------------------------------------------ sample conversions


def pcm16_to_float32(pcm: npt.NDArray[np.int16] | bytes) -> npt.NDArray[np.float32]:
    """int16 PCM to float32 in [-1.0, 1.0) (``x / 32768``), same shape (bytes give shape ``(n,)``)."""
    arr = pcm_1d(pcm) if isinstance(pcm, bytes | bytearray | memoryview) else pcm
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
    mono: PcmArray = np.rint(pcm.mean(axis=1, dtype=np.float64)).astype(np.int16)
    return mono


def stereo_interleave(left: npt.NDArray[np.int16], right: npt.NDArray[np.int16]) -> PcmArray:
    """Two mono int16 legs to one ``(n, 2)`` C-contiguous array (``.tobytes()`` is L R L R …).

    The shorter leg is padded with trailing zeros (silence) to the longer one's length.
    """
    a, b = pcm_1d(left), pcm_1d(right)
    out = np.zeros((max(len(a), len(b)), 2), dtype=np.int16)
    out[: len(a), 0] = a
    out[: len(b), 1] = b
    return out


# -------------------------------------------------------------------------------------------------- files

_READ_FORMATS = frozenset({"WAV", "WAVEX", "RF64", "FLAC", "MP3"})
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
        raise AudioFormatError("Unsupported audio container; expected WAV, FLAC or MP3.")
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
    """Decode a WAV (PCM 8/16/24/32-bit, float, μ-law, A-law, ADPCM, WAVEX, RF64), FLAC or MP3 file to int16.

    ``source`` is a path or the file's bytes. Mono gives shape ``(n,)``, otherwise ``(n, channels)``; wider
    samples are rounded to 16 bits and float samples clipped to full scale. Runs in the calling thread (CPU
    and, for paths, blocking file I/O: call it via ``asyncio.to_thread`` from async code).

    Raises :class:`PayloadTooLargeError` when the input is over ``max_bytes`` bytes, :class:`NotFoundError`
    for a missing path, and :class:`AudioFormatError` for empty, truncated, corrupt or non-audio input and
    for containers other than WAV/FLAC/MP3. Never returns a partial result.
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


def read_audio_with_digest(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> tuple[AudioClip, str]:
    """:func:`read_audio` of a file, and the hex SHA-256 of its bytes (read once). Same errors."""
    data = _load_bytes(path, max_bytes)
    return read_audio(data), hashlib.sha256(data).hexdigest()


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
