"""One call leg as media messages (:mod:`core.media`) → a :class:`~asr.streaming.StreamingTranscriber`.

:class:`MediaStream` turns a ``StreamStart`` and its ``AudioChunk`` payloads into 16 kHz PCM16: G.711 μ-law/A-law or
L16 decoding, resampling with a per-stream :class:`core.audio.Resampler`, and silence for lost packets so event
times stay aligned with the call's clock. Owned by the speech worker's inference thread (not thread-safe).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from asr.base import SAMPLE_RATE_HZ, DecodeOptions, Recognizer, VoiceActivityDetector
from asr.streaming import StreamingConfig, StreamingTranscriber
from core.audio import Resampler, alaw_decode, ulaw_decode
from core.errors import AudioFormatError
from core.events import Event
from core.ids import CallId
from core.media import AudioChunk, StreamStart

MAX_GAP_MS = 5_000
"""A jump forward in ``AudioChunk.start_ms`` up to this (ms) is filled with silence; larger jumps are not."""


@dataclass(frozen=True)
class DecodeDefaults:
    """Decoding choices of a worker; a stream's ``StreamStart.lang``/``prompt`` refine them."""

    beam_size: int = 1
    hotwords: tuple[str, ...] = ()
    zh_prompt: str | None = None
    """Initial prompt for ``zh`` streams without their own prompt (Simplified Chinese)."""


LIVE_TOKENS_PER_S = 15.0
"""Token cap of live passes (per second of audio, plus 16): about twice the densest speech."""


def decode_options(start: StreamStart, defaults: DecodeDefaults) -> DecodeOptions:
    """The options for every pass on this stream: its language and prompt, the worker's beam and hot words, no
    timestamps (the VAD gives the times), and a cap of 15 tokens per second of audio (live passes must not spend
    seconds in a decoding loop)."""
    prompt = start.prompt
    if prompt is None and start.lang == "zh":
        prompt = defaults.zh_prompt
    return DecodeOptions(
        lang=start.lang,
        prompt=prompt,
        beam_size=defaults.beam_size,
        hotwords=defaults.hotwords,
        timestamps=False,
        max_tokens_per_s=LIVE_TOKENS_PER_S,
    )


def bytes_per_ms(start: StreamStart) -> float:
    """Payload bytes per ms of audio for this stream's encoding and rate."""
    return start.sample_rate_hz * (2 if start.encoding == "l16" else 1) / 1000.0


class MediaStream:
    """A started stream. The transcriber is created on the first chunk, whose ``start_ms`` becomes its offset.

    ``last_active_s`` is maintained by the owner (monotonic seconds of the last message).
    """

    def __init__(
        self,
        start: StreamStart,
        *,
        recognizer: Recognizer,
        vad_factory: Callable[[], VoiceActivityDetector],
        config: StreamingConfig,
        defaults: DecodeDefaults,
        now_s: float = 0.0,
    ) -> None:
        if start.sample_rate_hz <= 0:
            raise AudioFormatError("stream sample rate must be positive")
        self.start = start
        self.options = decode_options(start, defaults)
        self.transcriber: StreamingTranscriber | None = None
        self.ended = False
        self.last_active_s = now_s
        self._recognizer = recognizer
        self._vad_factory = vad_factory
        self._config = config
        rate = start.sample_rate_hz
        self._resampler = None if rate == SAMPLE_RATE_HZ else Resampler(rate, SAMPLE_RATE_HZ)
        self._width = 2 if start.encoding == "l16" else 1
        self._next_ms = 0
        self._skipped_seen = 0

    def _pcm(self, payload: bytes) -> npt.NDArray[np.int16]:
        encoding = self.start.encoding
        if encoding == "pcmu":
            pcm = ulaw_decode(payload)
        elif encoding == "pcma":
            pcm = alaw_decode(payload)
        else:
            if len(payload) % 2:
                raise AudioFormatError("l16 payload has an odd number of bytes")
            pcm = np.frombuffer(payload, dtype="<i2").astype(np.int16)
        return self._to_16k(pcm)

    def _to_16k(self, pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        return pcm if self._resampler is None else self._resampler.process(pcm)

    def audio(self, chunk: AudioChunk) -> list[Event]:
        """Decode, resample and transcribe one chunk (phase 1 only); returns SpeechStarted events."""
        rate = self.start.sample_rate_hz
        if self.transcriber is None:
            vad = self._vad_factory()
            self.transcriber = StreamingTranscriber(
                CallId(chunk.call_id),
                chunk.leg,
                self._recognizer,
                vad,
                config=self._config,
                options=self.options,
                offset_ms=chunk.start_ms,
            )
            self._next_ms = chunk.start_ms
        events: list[Event] = []
        gap_ms = chunk.start_ms - self._next_ms
        if 0 < gap_ms <= MAX_GAP_MS:  # lost packets: keep the timeline by inserting silence
            events += self.transcriber.accept(self._to_16k(np.zeros(gap_ms * rate // 1000, dtype=np.int16)))
        self._next_ms = max(self._next_ms, chunk.start_ms) + len(chunk.payload) // self._width * 1000 // rate
        events += self.transcriber.accept(self._pcm(chunk.payload))
        return events

    def end(self) -> list[Event]:
        """The stream ended: flush the resampler and queue the final of the utterance in progress."""
        self.ended = True
        if self.transcriber is None:
            return []
        events = self.transcriber.accept(self._resampler.flush()) if self._resampler is not None else []
        self.transcriber.flush()
        return events

    def skipped_delta(self) -> int:
        """Partials skipped by the transcriber since the last call (for the worker's counter)."""
        if self.transcriber is None:
            return 0
        delta = self.transcriber.stats.partials_skipped - self._skipped_seen
        self._skipped_seen += delta
        return delta
