"""Test doubles of ``asr``: a recogniser that answers from a script and a VAD driven by a timeline.

Both are deterministic and fast, for unit tests of streaming and speech-worker logic. Thread-safe enough for the
worker's single inference thread; :attr:`ScriptedRecognizer.calls` is appended under a lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from asr.base import SAMPLE_RATE_HZ, DecodeOptions, Transcription
from core.errors import AudioFormatError, InvalidInputError


@dataclass(frozen=True)
class RecognizerCall:
    """One call of :meth:`ScriptedRecognizer.transcribe`: its index (0-based), audio length (ms) and options."""

    index: int
    audio_ms: int
    options: DecodeOptions
    samples: int


Script = Sequence[str] | Callable[[RecognizerCall], str]


class ScriptedRecognizer:
    """A :class:`asr.base.Recognizer` that returns scripted texts.

    ``script`` is either a sequence (call ``i`` gets ``script[i]``, and ``default`` once it runs out) or a function
    of the :class:`RecognizerCall`. ``delay_s`` (a number, or a function of the call) is slept through ``sleep``
    (default ``time.sleep``) to simulate a slow model; ``compute_ms`` reported is ``compute_ms`` if given, else the
    delay. ``fail_on`` lists call indexes that raise :class:`AudioFormatError`.
    """

    def __init__(
        self,
        script: Script = (),
        *,
        default: str = "",
        lang: Literal["zh", "en"] = "en",
        confidence: float | None = 0.9,
        delay_s: float | Callable[[RecognizerCall], float] = 0.0,
        compute_ms: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        fail_on: Sequence[int] = (),
    ) -> None:
        self.script = script
        self.default = default
        self.lang: Literal["zh", "en"] = lang
        self.confidence = confidence
        self.delay_s = delay_s
        self.compute_ms = compute_ms
        self.sleep = sleep
        self.fail_on = frozenset(fail_on)
        self.calls: list[RecognizerCall] = []
        """Every call so far, in order."""
        self._lock = threading.Lock()

    def transcribe(self, pcm16k: npt.NDArray[np.int16], options: DecodeOptions) -> Transcription:
        """The scripted text for this call (after the scripted delay)."""
        if pcm16k.dtype != np.int16 or pcm16k.ndim != 1:
            raise AudioFormatError("PCM must be mono int16 at 16 kHz.")
        with self._lock:
            call = RecognizerCall(len(self.calls), len(pcm16k) * 1000 // SAMPLE_RATE_HZ, options, len(pcm16k))
            self.calls.append(call)
        if call.index in self.fail_on:
            raise AudioFormatError("scripted recognition failure")
        delay = self.delay_s(call) if callable(self.delay_s) else self.delay_s
        if delay > 0:
            self.sleep(delay)
        if callable(self.script):
            text = self.script(call)
        else:
            text = self.script[call.index] if call.index < len(self.script) else self.default
        compute_ms = self.compute_ms if self.compute_ms is not None else delay * 1000.0
        return Transcription(text, self.lang, self.confidence, (), call.audio_ms, compute_ms)


class ScriptedVad:
    """A :class:`asr.base.VoiceActivityDetector` whose answers come from a timeline, not from the audio.

    ``speech`` lists ``(start_ms, end_ms)`` intervals of the stream (from its first sample) that are speech: a frame
    whose middle falls inside one gets ``speech_prob``, any other ``silence_prob``. Or give ``probabilities``, one
    per frame (frames past the end get ``silence_prob``). The position advances ``frame_ms`` per call.
    """

    def __init__(
        self,
        speech: Sequence[tuple[int, int]] = (),
        *,
        frame_ms: int = 20,
        probabilities: Sequence[float] | None = None,
        speech_prob: float = 0.9,
        silence_prob: float = 0.05,
    ) -> None:
        if frame_ms <= 0:
            raise InvalidInputError("frame_ms must be positive", frame_ms=frame_ms)
        self.frame_ms = frame_ms
        self.speech = tuple(speech)
        self.probabilities = tuple(probabilities) if probabilities is not None else None
        self.speech_prob = speech_prob
        self.silence_prob = silence_prob
        self.frames_seen = 0
        """Frames judged since the last :meth:`reset`."""

    def is_speech(self, frame: npt.NDArray[np.int16]) -> float:
        """The scripted probability of the next frame (the samples are only checked for length)."""
        if len(frame) != SAMPLE_RATE_HZ * self.frame_ms // 1000:
            raise AudioFormatError("VAD frame has the wrong length.")
        index = self.frames_seen
        self.frames_seen += 1
        if self.probabilities is not None:
            return self.probabilities[index] if index < len(self.probabilities) else self.silence_prob
        middle_ms = index * self.frame_ms + self.frame_ms / 2
        inside = any(start <= middle_ms < end for start, end in self.speech)
        return self.speech_prob if inside else self.silence_prob

    def reset(self) -> None:
        """Back to the start of the timeline."""
        self.frames_seen = 0
