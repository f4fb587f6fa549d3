"""Synthesized speech to telephone audio: 20 ms frames of mono int16 little-endian PCM at the call's rate.

:func:`to_call_frames` frames one whole clip (a cached prompt, a pre-recorded WAV). :class:`CallAudioStream` frames
speech that arrives sentence by sentence (:meth:`~agent.tts.base.SpeechSynthesizer.synthesize_sentences`): one
streaming :class:`~core.resample.Resampler` runs across all sentences of an utterance, and the samples left over
after the last full frame of one sentence start the next frame, so joins have neither filter restarts nor padding
gaps. A short raised-cosine fade at each sentence's edges (``declick_ms``) removes the click a synthesizer leaves
when a clip starts or stops mid-waveform.

Units: rates in Hz, durations in ms, frame sizes in samples (``rate_hz * frame_ms / 1000``: 160 at 8 kHz, 320 at
16 kHz) or bytes (twice that). Everything is pure CPU work on the calling thread; a :class:`CallAudioStream`
belongs to one call and one thread or task at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator

import numpy as np

from agent.tts.base import SpeechSynthesizer
from core.audio import AudioClip, PcmArray, Resampler, frame_iter, mix_to_mono, resample
from core.errors import AudioFormatError

__all__ = ["CallAudioStream", "astream_call_frames", "frame_samples", "iter_call_frames", "to_call_frames"]

DEFAULT_DECLICK_MS = 3.0


def frame_samples(rate_hz: int, frame_ms: int = 20) -> int:
    """Samples in one frame of ``frame_ms`` ms at ``rate_hz`` Hz (160 for 8 kHz, 20 ms); raises
    :class:`AudioFormatError` unless that is a positive whole number."""
    if rate_hz <= 0 or frame_ms <= 0 or (rate_hz * frame_ms) % 1000:
        raise AudioFormatError("Frame length must be a positive whole number of samples.", rate_hz=rate_hz)
    return rate_hz * frame_ms // 1000


def _mono(clip: AudioClip) -> PcmArray:
    return clip.samples if clip.channels == 1 else mix_to_mono(clip.samples)


def _to_bytes(frame: PcmArray) -> bytes:
    return frame.astype("<i2", copy=False).tobytes()


def to_call_frames(clip: AudioClip, rate_hz: int = 8000, frame_ms: int = 20) -> list[bytes]:
    """``clip`` (any rate, mono or mixed down to mono) resampled to ``rate_hz`` Hz and cut into ``frame_ms`` ms
    frames of mono int16 little-endian PCM (``2 * rate_hz * frame_ms / 1000`` bytes each: 320 bytes at 8 kHz,
    20 ms). The last frame is zero-padded to full size; an empty clip gives no frames. Pure, any thread."""
    frame_samples(rate_hz, frame_ms)  # validates
    pcm = _mono(clip)
    if clip.sample_rate != rate_hz:
        pcm = resample(pcm, clip.sample_rate, rate_hz)
    return [_to_bytes(frame) for frame in frame_iter(pcm, rate_hz, frame_ms)]


def _declick(pcm: PcmArray, rate_hz: int, declick_ms: float) -> PcmArray:
    """Raised-cosine fade in and out over ``declick_ms`` ms (at most a quarter of the clip each)."""
    n = min(round(rate_hz * declick_ms / 1000), len(pcm) // 4)
    if n <= 0:
        return pcm
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n, dtype=np.float64) + 0.5) / n)
    out = pcm.astype(np.float64)
    out[:n] *= ramp
    out[-n:] *= ramp[::-1]
    faded: PcmArray = np.rint(out).astype(np.int16)
    return faded


class CallAudioStream:
    """Turns clips that arrive one sentence at a time into ``frame_ms`` ms frames at the call's ``rate_hz``
    (8,000 or 16,000 Hz; any rate with whole-sample frames works), as mono int16 little-endian bytes.

    Feed each clip to :meth:`push`, which returns the frames that are complete so far; call :meth:`finish` after
    the last clip for the resampler's tail and the zero-padded last frame. The output equals
    :func:`to_call_frames` of all clips back to back, except within ``declick_ms`` ms of each clip's edges, which
    are faded (0 disables that, and then the output is the same to the sample). Clips may come at different rates
    (the resampler is then flushed and restarted at the change) and from stereo (mixed down).

    The resampler delays audio by its look-ahead (about 4.5 ms for 22,050 → 8,000 Hz), so the first
    :meth:`push` of an utterance returns slightly less. :meth:`reset` drops everything pending (barge-in).

    Not thread-safe: one stream per call, used by one thread or task at a time.
    """

    def __init__(self, rate_hz: int = 8000, frame_ms: int = 20, *, declick_ms: float = DEFAULT_DECLICK_MS) -> None:
        if declick_ms < 0:
            raise AudioFormatError("declick_ms must not be negative.")
        self.rate_hz = rate_hz
        """The call's rate (Hz)."""
        self.frame_ms = frame_ms
        """Frame length (ms)."""
        self.frame_samples = frame_samples(rate_hz, frame_ms)
        """Samples per frame (160 at 8 kHz, 20 ms); each frame is twice that in bytes."""
        self.declick_ms = declick_ms
        """Fade at each clip's start and end (ms)."""
        self._resampler: Resampler | None = None
        self._pending = np.zeros(0, dtype=np.int16)
        self.frames_out = 0
        """Frames returned since construction or the last :meth:`reset`."""

    @property
    def pending_samples(self) -> int:
        """Samples at the call rate held back for the next frame (fewer than :attr:`frame_samples`)."""
        return len(self._pending)

    def push(self, clip: AudioClip) -> list[bytes]:
        """Add the next sentence's clip; returns the frames now complete (possibly none). CPU-bound (the
        resampling), on the calling thread."""
        pcm = _declick(_mono(clip), clip.sample_rate, self.declick_ms)
        out: list[PcmArray] = []
        if clip.sample_rate == self.rate_hz:
            if self._resampler is not None:
                out.append(self._resampler.flush())
                self._resampler = None
            out.append(pcm)
        else:
            if self._resampler is not None and self._resampler.src_hz != clip.sample_rate:
                out.append(self._resampler.flush())
                self._resampler = None
            if self._resampler is None:
                self._resampler = Resampler(clip.sample_rate, self.rate_hz)
            out.append(self._resampler.process(pcm))
        return self._frames(out, final=False)

    def finish(self) -> list[bytes]:
        """End of the utterance: the remaining audio as frames, the last one zero-padded. The stream is then
        empty and ready for the next utterance."""
        out = [self._resampler.flush()] if self._resampler is not None else []
        self._resampler = None
        return self._frames(out, final=True)

    def reset(self) -> None:
        """Drop pending audio and filter state without emitting it (the caller barged in)."""
        self._resampler = None
        self._pending = np.zeros(0, dtype=np.int16)
        self.frames_out = 0

    def frames(self, clips: Iterable[AudioClip]) -> Iterator[bytes]:
        """All frames of ``clips`` (then :meth:`finish`), yielded as soon as each is complete; blocking on the
        iterator's own work (e.g. synthesis in ``synthesize_sentences``)."""
        for clip in clips:
            yield from self.push(clip)
        yield from self.finish()

    def _frames(self, parts: list[PcmArray], *, final: bool) -> list[bytes]:
        pcm = np.concatenate([self._pending, *parts]) if parts else self._pending
        size = self.frame_samples
        whole = len(pcm) // size * size
        frames = [_to_bytes(pcm[i : i + size]) for i in range(0, whole, size)]
        rest = pcm[whole:]
        if final and len(rest):
            frames.append(_to_bytes(np.concatenate([rest, np.zeros(size - len(rest), dtype=np.int16)])))
            rest = np.zeros(0, dtype=np.int16)
        self._pending = rest.copy()
        self.frames_out += len(frames)
        return frames


def iter_call_frames(
    synthesizer: SpeechSynthesizer, text: str, rate_hz: int = 8000, frame_ms: int = 20
) -> Iterator[bytes]:
    """``text`` spoken by ``synthesizer`` as call frames (see :class:`CallAudioStream`), synthesized sentence by
    sentence as the iterator advances. Blocking, CPU-bound: use a worker thread, or :func:`astream_call_frames`."""
    return CallAudioStream(rate_hz, frame_ms).frames(synthesizer.synthesize_sentences(text))


async def astream_call_frames(
    synthesizer: SpeechSynthesizer, text: str, rate_hz: int = 8000, frame_ms: int = 20
) -> AsyncIterator[bytes]:
    """Async :func:`iter_call_frames`: each sentence is synthesized and framed in a worker thread
    (``asyncio.to_thread``), so the first sentence's frames come while the next is still being synthesized and
    the event loop never blocks. Frames come in bursts of one sentence; pace them at ``frame_ms`` on the wire."""
    stream = CallAudioStream(rate_hz, frame_ms)
    sentences = synthesizer.synthesize_sentences(text)

    def step() -> list[bytes] | None:
        clip = next(sentences, None)
        return None if clip is None else stream.push(clip)

    while (frames := await asyncio.to_thread(step)) is not None:
        for frame in frames:
            yield frame
    for frame in stream.finish():
        yield frame
