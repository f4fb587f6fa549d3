"""G.711 μ-law and A-law codecs for PCM16, bit-exact with ITU-T G.711, via numpy lookup tables.

The decode tables have 256 entries; the encode tables 65536 (indexed by the uint16 view of each int16 sample)
and are built lazily once. Pure and thread-safe.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from core.errors import AudioFormatError

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


def pcm_1d(pcm: npt.NDArray[Any] | bytes) -> PcmArray:
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
    return bytes(_ulaw_encode_table()[pcm_1d(pcm).view(np.uint16)].tobytes())


def alaw_encode(pcm: npt.NDArray[np.int16] | bytes) -> bytes:
    """Encode int16 PCM (array or little-endian bytes) to G.711 A-law, one byte per sample. Same output as the
    old ``audioop.lin2alaw(pcm, 2)``. Raises :class:`AudioFormatError` like :func:`ulaw_encode`."""
    return bytes(_alaw_encode_table()[pcm_1d(pcm).view(np.uint16)].tobytes())
