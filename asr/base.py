"""What a speech recogniser is, for batch and live use.

Audio given to a recogniser is always mono PCM16 at 16 kHz (``numpy.int16``); callers convert codecs and rates
with :mod:`core.audio` first. Recognisers are synchronous and CPU-bound: call them from a speech worker process
or ``asyncio.to_thread``, never on an event loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

SAMPLE_RATE_HZ = 16_000
LangChoice = Literal["zh", "en", "auto"]


@dataclass(frozen=True)
class Segment:
    """A piece of recognised text with offsets from the start of the audio given (ms)."""

    text: str
    start_ms: int
    end_ms: int
    avg_logprob: float | None = None
    no_speech_prob: float | None = None


@dataclass(frozen=True)
class Transcription:
    """The result of one recognition pass."""

    text: str
    """Normalised text (Simplified Chinese for ``zh``)."""
    lang: Literal["zh", "en"]
    confidence: float | None = None
    """Mean token probability in [0, 1], when known."""
    segments: tuple[Segment, ...] = field(default_factory=tuple)
    audio_ms: int = 0
    """Length of the audio recognised (ms)."""
    compute_ms: float = 0.0
    """Wall time spent recognising (ms)."""


@dataclass(frozen=True)
class DecodeOptions:
    """Per-call decoding choices."""

    lang: LangChoice = "auto"
    prompt: str | None = None
    """Initial prompt: for ``zh`` a Simplified-Chinese sentence plus bank vocabulary (hot words)."""
    beam_size: int = 1
    """1 = greedy (live use); 5 for batch quality."""
    hotwords: tuple[str, ...] = ()
    window_s: float | None = None
    """Encoder window (s). ``None``: the model's own (Whisper: 30 s, however short the audio). A number: the
    window is fitted to the audio plus 1 s, but never shorter than this. Whisper's encoder cost grows steeply with
    its window (base, int8, 2 threads: ~350 ms for 30 s, ~40 ms for 10 s), so a fitted window makes live
    re-decoding several times cheaper, at a small accuracy cost on telephone audio."""
    max_tokens_per_s: float | None = None
    """Cap on the tokens decoded per second of audio (plus 16): a decoding loop (Whisper repeating a phrase until
    its 448-token limit, seen on this CPU) then stops after a bounded time instead of taking seconds. Speech is
    at most ~8 tokens/s in Mandarin; ``None`` = no cap (batch)."""
    timestamps: bool = True
    """Predict segment timestamps. Live passes turn them off (the VAD gives the times; it is faster and it avoids
    timestamp-driven repetition on short windows)."""


class Recognizer(Protocol):
    """Transcribes a whole utterance or file (batch) — also used for live partials and finals."""

    def transcribe(self, pcm16k: npt.NDArray[np.int16], options: DecodeOptions) -> Transcription:
        """Recognise mono 16 kHz PCM16; raises :class:`core.errors.AudioFormatError` for unusable audio."""
        ...


class VoiceActivityDetector(Protocol):
    """Frame-level speech/non-speech decisions on 16 kHz PCM16."""

    frame_ms: int
    """Length of the frames :meth:`is_speech` takes (ms)."""

    def is_speech(self, frame: npt.NDArray[np.int16]) -> float:
        """Probability in [0, 1] that ``frame`` (``frame_ms`` long) holds speech. Keeps state across calls."""
        ...

    def reset(self) -> None:
        """Forget state (a new stream)."""
        ...
