"""Fast access to the payload of a pjsua2 ``MediaFrame`` (a SWIG-wrapped ``std::vector<unsigned char>``).

``bytes(frame.buf)`` iterates the SWIG vector element by element: ~350 µs for a 640-byte frame on this machine,
far too slow for the media clock thread. A libstdc++ ``std::vector`` starts with its ``begin`` and ``end``
pointers, so the payload can be copied with one ``memcpy`` (``ctypes.string_at``): ~1.8 µs per frame including
the SWIG attribute access (measured, 640 bytes, Python 3.11, x86-64). :func:`probe_fast_path` checks that layout
once against a vector with known contents; when it does not hold the slow, always-correct path is used.

Runs on whatever thread calls it (the media clock thread, in the worker). No pjsua2 import here: frames and
vectors are passed in, and :func:`probe_fast_path` takes the ``ByteVector`` class.
"""

from __future__ import annotations

import ctypes
from typing import Any

_POINTER_PAIR = ctypes.c_uint64 * 2


class FrameAccess:
    """Reads and writes frame payloads; ``fast`` says whether the one-``memcpy`` path is in use."""

    def __init__(self, fast: bool) -> None:
        self.fast = fast

    def read(self, frame: Any) -> bytes:
        """A copy of the frame's payload (bytes; 2 bytes per sample for L16). Media clock thread."""
        vec = frame.buf
        if self.fast:
            begin, end = _POINTER_PAIR.from_address(int(vec.this))
            return ctypes.string_at(begin, end - begin) if end > begin else b""
        return bytes(vec)

    def write(self, frame: Any, data: bytes, audio_type: int) -> None:
        """Fill ``frame`` with ``data`` (bytes) and mark it ``audio_type`` (``PJMEDIA_FRAME_TYPE_AUDIO``)."""
        vec = frame.buf
        if self.fast:
            vec.resize(len(data))
            begin, _end = _POINTER_PAIR.from_address(int(vec.this))
            ctypes.memmove(begin, data, len(data))
        else:
            frame.buf = type(vec)(data)
        frame.size = len(data)
        frame.type = audio_type


def probe_fast_path(byte_vector_cls: Any) -> FrameAccess:
    """Check the ``std::vector`` layout assumption on a real pjsua2 ``ByteVector``; the access to use."""
    sample = bytes(range(256)) + bytes(range(255, -1, -1))
    vec = byte_vector_cls(sample)
    try:
        begin, end = _POINTER_PAIR.from_address(int(vec.this))
        ok = end - begin == len(sample) and ctypes.string_at(begin, end - begin) == sample
    except (TypeError, ValueError, OverflowError, AttributeError):
        ok = False
    return FrameAccess(fast=ok)
