"""Prompts played into calls (the recording disclosure): loaded once, cut into 20 ms L16 frames.

Runs on the worker's owner thread at start-up (file I/O and resampling), never on the media clock thread.
"""

from __future__ import annotations

from pathlib import Path

from core.audio import mix_to_mono, read_audio, resample


def load_prompt(path: Path, clock_rate_hz: int, frame_ms: int = 20) -> list[bytes]:
    """``path`` (WAV/FLAC, any rate and channel count) as mono little-endian int16 frames of ``frame_ms`` (ms)
    at ``clock_rate_hz`` (Hz); the last frame is padded with silence. Raises :class:`core.errors.NotFoundError`
    or :class:`core.errors.AudioFormatError`."""
    clip = read_audio(path)
    mono = mix_to_mono(clip.samples)
    pcm = resample(mono, clip.sample_rate, clock_rate_hz) if clip.sample_rate != clock_rate_hz else mono
    size = clock_rate_hz * frame_ms // 1000
    frames = [pcm[i : i + size] for i in range(0, len(pcm), size)]
    return [f.tobytes() + bytes(2 * (size - len(f))) for f in frames]
