"""Answering-machine detection from the first seconds of an answered outbound call's audio.

:class:`AnsweringMachineDetector` is fed the callee's 20 ms frames (L16 mono) from the answer on and decides, the
way a person on the line would, from the length of the first greeting and its speech pattern:

* a **short greeting followed by silence** ("喂？", "Hello?" — then waiting for the caller) is a person
  (``short_greeting``);
* a **long greeting** (continuous speech past ``machine_greeting_ms``) or **many words** in a row (a recorded
  "you have reached…, please leave a message after the tone") is a machine (``long_greeting``, ``many_words``);
* **no speech** within ``initial_silence_ms`` gives ``unknown`` (``silence``): the campaign dialog then speaks as
  to a person and ends the call when nobody answers;
* still undecided after ``max_analysis_ms``: a machine while speech goes on, else ``unknown`` (``timeout``).

After a ``machine`` verdict, :meth:`feed` goes on to report the end of the greeting (the beep and the silence after
it, ``greeting_end_silence_ms``, or ``max_greeting_ms`` at the latest), which is when a voicemail message must
start so that it is recorded whole.

A frame is speech when it is loud enough (``min_level_dbfs``) and WebRTC's VAD says so; ``is_speech`` replaces
that classifier (tests). Pure computation, no I/O: about 30 µs a frame, run on the media sender thread for the
first seconds of each outbound call only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import ModelMissingError
from core.events_dialer import AmdVerdict

__all__ = ["AmdDecision", "AmdSettings", "AnsweringMachineDetector", "frame_level_dbfs"]


@dataclass(frozen=True)
class AmdSettings:
    """Thresholds of the detector (all ms, except the level in dBFS and the word count)."""

    initial_silence_ms: int = 3500
    """No speech this long after the answer: ``unknown``."""
    after_greeting_silence_ms: int = 800
    """Silence this long after the first speech ends the greeting."""
    human_greeting_max_ms: int = 2000
    """A greeting up to this long, then silence: a person."""
    machine_greeting_ms: int = 2600
    """A greeting longer than this: a machine."""
    word_gap_ms: int = 200
    """Silence at least this long separates two words."""
    min_word_ms: int = 100
    """Speech shorter than this is a click or a breath, not a word."""
    max_words: int = 5
    """This many words in one greeting: a machine."""
    max_analysis_ms: int = 5000
    """Decide by then at the latest."""
    greeting_end_silence_ms: int = 1200
    """After a machine verdict: silence this long means the greeting (and its beep) is over."""
    max_greeting_ms: int = 20_000
    """After a machine verdict: start the message by then even if the greeting goes on."""
    min_level_dbfs: float = -45.0
    """Frames quieter than this are silence whatever the VAD says."""
    vad_mode: int = 2
    """WebRTC VAD aggressiveness, 0 (least) to 3 (most)."""


@dataclass(frozen=True)
class AmdDecision:
    """A verdict (or, with ``greeting_ended``, the end of a machine's greeting) at ``decided_ms`` after the
    answer; ``greeting_ms`` is the length of the first greeting so far (ms)."""

    verdict: AmdVerdict
    reason: str
    greeting_ms: int
    decided_ms: int
    greeting_ended: bool = False


def frame_level_dbfs(payload: bytes) -> float:
    """RMS level of a little-endian int16 frame in dB relative to full scale (``-inf`` for digital silence)."""
    samples = np.frombuffer(payload, dtype="<i2").astype(np.float32)
    if samples.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(samples * samples)))
    return 20.0 * math.log10(rms / 32768.0) if rms > 0 else -math.inf


class _WebrtcSpeech:
    """Level gate plus WebRTC VAD on 10/20/30 ms frames at 8, 16, 32 or 48 kHz."""

    def __init__(self, sample_rate_hz: int, settings: AmdSettings) -> None:
        try:
            import webrtcvad
        except ImportError as exc:
            raise ModelMissingError(
                "webrtcvad-wheels is not installed", remedy="make setup (pip install webrtcvad-wheels)"
            ) from exc
        self._vad: Any = webrtcvad.Vad(settings.vad_mode)
        self._rate = sample_rate_hz
        self._min_level = settings.min_level_dbfs

    def __call__(self, payload: bytes) -> bool:
        if frame_level_dbfs(payload) < self._min_level:
            return False
        return bool(self._vad.is_speech(payload, self._rate))


class AnsweringMachineDetector:
    """Feeds on one call's frames and returns a decision once (then, for a machine, the greeting's end).

    ``frame_ms`` is the frame length (ms) and ``sample_rate_hz`` the rate of the L16 frames. One detector per
    call, used from one thread.
    """

    def __init__(
        self,
        sample_rate_hz: int = 8000,
        settings: AmdSettings | None = None,
        *,
        frame_ms: int = 20,
        is_speech: Callable[[bytes], bool] | None = None,
    ) -> None:
        self.settings = settings or AmdSettings()
        self.frame_ms = frame_ms
        self._is_speech = is_speech or _WebrtcSpeech(sample_rate_hz, self.settings)
        self.elapsed_ms = 0
        self._first_speech_ms: int | None = None
        self._last_speech_ms = 0
        self._speech_run_ms = 0
        self._silence_run_ms = 10**9  # the answer is preceded by silence: the first speech starts a word
        self._words = 0
        self._word_counted = False
        self.decision: AmdDecision | None = None
        """The verdict, once reached."""
        self.done = False
        """Nothing more to report: a person or no telling, or a machine whose greeting ended."""

    def _greeting_ms(self) -> int:
        if self._first_speech_ms is None:
            return 0
        return self._last_speech_ms - self._first_speech_ms

    def feed(self, payload: bytes) -> AmdDecision | None:
        """Take one frame; returns the verdict on the frame that reaches it, and for a machine later the decision
        with ``greeting_ended`` set; ``None`` otherwise."""
        if self.done:
            return None
        self.elapsed_ms += self.frame_ms
        speech = bool(payload) and self._is_speech(payload)
        self._track(speech)
        if self.decision is None:
            self.decision = self._decide()
            if self.decision is not None and self.decision.verdict != "machine":
                self.done = True
            return self.decision
        return self._greeting_end()

    def _track(self, speech: bool) -> None:
        s = self.settings
        if not speech:
            self._silence_run_ms += self.frame_ms
            return
        if self._first_speech_ms is None:
            self._first_speech_ms = self.elapsed_ms - self.frame_ms
        if self._silence_run_ms >= s.word_gap_ms:  # a new word begins
            self._speech_run_ms = 0
            self._word_counted = False
        self._speech_run_ms += self.frame_ms
        if not self._word_counted and self._speech_run_ms >= s.min_word_ms:
            self._words += 1
            self._word_counted = True
        self._silence_run_ms = 0
        self._last_speech_ms = self.elapsed_ms

    def _decision(self, verdict: AmdVerdict, reason: str) -> AmdDecision:
        return AmdDecision(verdict, reason, self._greeting_ms(), self.elapsed_ms)

    def _decide(self) -> AmdDecision | None:
        s = self.settings
        if self._first_speech_ms is None:
            if self.elapsed_ms >= s.initial_silence_ms:
                return self._decision("unknown", "silence")
            return None
        greeting = self._greeting_ms()
        if greeting > s.machine_greeting_ms:
            return self._decision("machine", "long_greeting")
        if self._words >= s.max_words:
            return self._decision("machine", "many_words")
        if self._silence_run_ms >= s.after_greeting_silence_ms:
            if greeting <= s.human_greeting_max_ms:
                return self._decision("human", "short_greeting")
            return self._decision("human", "greeting_then_silence")
        if self.elapsed_ms >= s.max_analysis_ms:
            return self._decision("machine" if self._silence_run_ms == 0 else "unknown", "timeout")
        return None

    def _greeting_end(self) -> AmdDecision | None:
        s = self.settings
        ended = self._silence_run_ms >= s.greeting_end_silence_ms
        if not ended and self.elapsed_ms < s.max_greeting_ms:
            return None
        self.done = True
        reason = "greeting_ended" if ended else "greeting_too_long"
        return AmdDecision("machine", reason, self._greeting_ms(), self.elapsed_ms, greeting_ended=True)
