"""Stereo call recordings written incrementally: customer on the left channel, agent/bot on the right.

:class:`StereoWavRecorder` writes a 16-bit PCM WAV as the call goes. The RIFF and ``data`` sizes in the header
are rewritten on every :meth:`StereoWavRecorder.flush` (about once a second of audio), so a worker crash leaves a
valid file with everything up to the last flush described by the header and the rest of the samples still on
disk. :meth:`StereoWavRecorder.close` fixes the header, fsyncs, optionally transcodes to FLAC, and returns the
path, duration and SHA-256 of the final file.

Runs on the media sender thread of the worker (blocking file I/O); never on the media clock thread.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np

from core.errors import StorageError
from core.g711 import pcm_1d

_HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")
_HEADER_SIZE = _HEADER.size  # 44 bytes
_CHANNELS = 2
_SAMPLE_BYTES = 2


@dataclass(frozen=True)
class RecordingInfo:
    """A finished recording: ``duration_ms`` of audio (ms), ``sha256`` (hex) of the file's bytes."""

    path: Path
    duration_ms: int
    sha256: str
    sample_rate_hz: int
    size_bytes: int


def _header(sample_rate_hz: int, data_bytes: int) -> bytes:
    block_align = _CHANNELS * _SAMPLE_BYTES
    return _HEADER.pack(
        b"RIFF", 36 + data_bytes, b"WAVE", b"fmt ", 16, 1, _CHANNELS, sample_rate_hz,
        sample_rate_hz * block_align, block_align, 8 * _SAMPLE_BYTES, b"data", data_bytes,
    )  # fmt: skip


class StereoWavRecorder:
    """Incremental stereo WAV writer for one call (16-bit PCM at ``sample_rate_hz`` Hz).

    Feed equal-length mono ``int16`` frames with :meth:`write` (left = customer, right = agent/bot). Not
    thread-safe: one instance belongs to the media sender thread.
    """

    def __init__(
        self,
        path: Path,
        sample_rate_hz: int,
        *,
        flush_every_ms: int = 1000,
        final_format: Literal["WAV", "FLAC"] = "WAV",
    ) -> None:
        self.path = path
        self.sample_rate_hz = sample_rate_hz
        self.final_format = final_format
        self._flush_every_bytes = max(1, sample_rate_hz * flush_every_ms // 1000) * _CHANNELS * _SAMPLE_BYTES
        self._data_bytes = 0
        self._unflushed = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh: BinaryIO | None = path.open("wb")
            self._fh.write(_header(sample_rate_hz, 0))
            self._fh.flush()
        except OSError as exc:
            raise StorageError("recording could not be created", path=str(path)) from exc

    @property
    def duration_ms(self) -> int:
        """Audio written so far (ms)."""
        return self._data_bytes * 1000 // (self.sample_rate_hz * _CHANNELS * _SAMPLE_BYTES)

    def write(self, left: bytes, right: bytes | None) -> None:
        """Append one frame: ``left``/``right`` are little-endian int16 mono bytes; ``None`` or a short right
        frame is padded with silence to the left frame's length."""
        if self._fh is None:
            return
        a = pcm_1d(left)
        out = np.zeros((len(a), 2), dtype=np.int16)
        out[:, 0] = a
        if right:
            b = pcm_1d(right)[: len(a)]
            out[: len(b), 1] = b
        data = out.tobytes()
        try:
            self._fh.write(data)
        except OSError as exc:
            raise StorageError("recording write failed", path=str(self.path)) from exc
        self._data_bytes += len(data)
        self._unflushed += len(data)
        if self._unflushed >= self._flush_every_bytes:
            self.flush()

    def flush(self) -> None:
        """Rewrite the header sizes and push buffered bytes to the OS (no fsync)."""
        if self._fh is None:
            return
        try:
            self._rewrite_header()
            self._fh.flush()
        except OSError as exc:
            raise StorageError("recording flush failed", path=str(self.path)) from exc
        self._unflushed = 0

    def close(self) -> RecordingInfo:
        """Finalise the header, fsync, transcode to FLAC when asked, and hash the file. Idempotent only in the
        sense that a second call raises nothing but re-hashes the file."""
        if self._fh is not None:
            fh, self._fh = self._fh, None
            try:
                self._rewrite_header_of(fh)
                fh.flush()
                os.fsync(fh.fileno())
            except OSError as exc:
                raise StorageError("recording could not be finalised", path=str(self.path)) from exc
            finally:
                fh.close()
            if self.final_format == "FLAC":
                self.path = self._to_flac()
        return self._info()

    def _rewrite_header(self) -> None:
        assert self._fh is not None
        self._rewrite_header_of(self._fh)

    def _rewrite_header_of(self, fh: BinaryIO) -> None:
        end = fh.tell()
        fh.seek(0)
        fh.write(_header(self.sample_rate_hz, self._data_bytes))
        fh.seek(end)

    def _to_flac(self) -> Path:
        import soundfile as sf

        target = self.path.with_suffix(".flac")
        try:
            data, rate = sf.read(str(self.path), dtype="int16", always_2d=True)
            sf.write(str(target), data, rate, format="FLAC", subtype="PCM_16")
            self.path.unlink()
        except (OSError, RuntimeError, sf.SoundFileError) as exc:
            raise StorageError("recording could not be transcoded", path=str(self.path)) from exc
        return target

    def _info(self) -> RecordingInfo:
        digest = hashlib.sha256()
        try:
            with self.path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            size = self.path.stat().st_size
        except OSError as exc:
            raise StorageError("recording could not be hashed", path=str(self.path)) from exc
        return RecordingInfo(self.path, self.duration_ms, digest.hexdigest(), self.sample_rate_hz, size)


def write_sidecar(info: RecordingInfo, call_id: str) -> Path:
    """Write ``<recording>.json`` beside the recording: call id, SHA-256, duration (ms), rate (Hz), size (bytes).

    The call store can verify a recording against it later (tamper evidence, retention jobs).
    """
    sidecar = info.path.with_name(info.path.name + ".json")
    body = {
        "call_id": call_id,
        "file": info.path.name,
        "sha256": info.sha256,
        "duration_ms": info.duration_ms,
        "sample_rate_hz": info.sample_rate_hz,
        "channels": _CHANNELS,
        "size_bytes": info.size_bytes,
    }
    try:
        sidecar.write_text(json.dumps(body, indent=1))
    except OSError as exc:
        raise StorageError("recording sidecar could not be written", path=str(sidecar)) from exc
    return sidecar
