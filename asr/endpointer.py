"""Utterance endpointing over frame-level speech probabilities: pure, clock-free and deterministic.

An :class:`Endpointer` is fed one speech probability per VAD frame (:meth:`Endpointer.push`) and counts time in
samples only, so the same input always gives the same :class:`EndpointEvent` list. Rules:

* an utterance **starts** once a candidate spans ``min_speech_ms`` from its first speech frame
  (``prob >= threshold``) to the end of its latest voiced one (``prob >= silence_threshold``, the same hysteresis
  as inside an utterance). Silero's probability dips between words (and runs lower on telephone audio), so a
  candidate survives short gaps; ``start_gap_ms`` of silence drops it (a click, a breath).
  The utterance's audio begins ``pre_roll_ms`` before the first speech frame (never before the end of the
  previous utterance), so the first syllable is kept;
* it **ends** after ``endpoint_silence_ms`` of consecutive silence (``prob < silence_threshold``, a lower
  threshold for hysteresis); its audio ends ``post_roll_ms`` after the last speech frame;
* it is **force-ended** once its audio reaches ``max_utterance_ms``; if speech goes on, the next utterance
  starts right where the forced one ended (after ``min_speech_ms`` more speech).

Not thread-safe: one instance per stream, used by the thread that owns the stream (the speech worker's
inference thread).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from core.errors import InvalidInputError

EndpointKind = Literal["start", "continue", "end"]


@dataclass(frozen=True)
class EndpointConfig:
    """Endpointing thresholds; durations in ms, probabilities in [0, 1]."""

    threshold: float = 0.5
    """Probability at or above which a frame counts as speech when starting an utterance."""
    silence_threshold: float | None = None
    """Probability below which a frame inside an utterance counts as silence; ``None``: ``threshold - 0.15``
    (at least 0.01), as Silero recommends."""
    min_speech_ms: int = 250
    """Span of speech (first to last speech frame, short gaps included) needed to start an utterance."""
    start_gap_ms: int = 300
    """Silence that drops a candidate that has not reached ``min_speech_ms`` yet."""
    endpoint_silence_ms: int = 600
    """Consecutive silence that ends an utterance."""
    max_utterance_ms: int = 20_000
    """Audio length at which an utterance is force-ended even without a pause."""
    pre_roll_ms: int = 500
    """Audio kept before the first speech frame."""
    post_roll_ms: int = 300
    """Audio kept after the last speech frame (bounded by the audio seen)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise InvalidInputError("VAD threshold must be in (0, 1]", threshold=self.threshold)
        durations = (self.min_speech_ms, self.start_gap_ms, self.endpoint_silence_ms, self.pre_roll_ms)
        if min(*durations, self.post_roll_ms) < 0:
            raise InvalidInputError("endpointing durations must not be negative")
        if self.max_utterance_ms <= self.min_speech_ms + self.pre_roll_ms:
            raise InvalidInputError("max_utterance_ms must exceed min_speech_ms + pre_roll_ms")

    @property
    def negative_threshold(self) -> float:
        """The threshold in effect for silence inside an utterance."""
        if self.silence_threshold is not None:
            return self.silence_threshold
        return max(0.01, self.threshold - 0.15)


@dataclass(frozen=True)
class EndpointEvent:
    """What a pushed frame did. Offsets are in samples from the start of the stream.

    ``start``: an utterance began; ``continue``: the utterance goes on (one per frame after the start);
    ``end``: the utterance is over (``forced`` when ``max_utterance_ms`` cut it). ``audio_start``/``audio_end``
    bound the audio to recognise (with pre- and post-roll); ``speech_start``/``speech_end`` bound the frames
    judged as speech (for ``start``/``continue``, ``speech_end`` is the end of the last speech frame so far and
    ``audio_end`` the end of the audio seen so far).
    """

    kind: EndpointKind
    audio_start: int
    audio_end: int
    speech_start: int
    speech_end: int
    forced: bool = False


class Endpointer:
    """Turns per-frame speech probabilities into utterance start/continue/end events (see the module doc)."""

    def __init__(self, config: EndpointConfig, sample_rate_hz: int = 16_000) -> None:
        if sample_rate_hz <= 0:
            raise InvalidInputError("sample rate must be positive", sample_rate_hz=sample_rate_hz)
        self.config = config
        self.sample_rate_hz = sample_rate_hz
        self._min_speech = self._samples(config.min_speech_ms)
        self._start_gap = self._samples(config.start_gap_ms)
        self._endpoint_silence = self._samples(config.endpoint_silence_ms)
        self._max_utterance = self._samples(config.max_utterance_ms)
        self._pre_roll = self._samples(config.pre_roll_ms)
        self._post_roll = self._samples(config.post_roll_ms)
        self.reset()

    def _samples(self, ms: int) -> int:
        return ms * self.sample_rate_hz // 1000

    def reset(self) -> None:
        """Forget everything: position 0, no utterance (a new stream)."""
        self._position = 0
        self._run_start: int | None = None  # first speech sample of the start candidate (idle only)
        self._run_end = 0  # end of the candidate's latest speech frame
        self._last_end = 0  # audio end of the previous utterance: the next pre-roll never reaches before it
        self._in_utterance = False
        self._audio_start = 0
        self._speech_start = 0
        self._speech_end = 0

    @property
    def position(self) -> int:
        """Samples pushed so far."""
        return self._position

    @property
    def in_utterance(self) -> bool:
        """Whether an utterance has started and not ended."""
        return self._in_utterance

    @property
    def speech_start(self) -> int:
        """First speech frame of the utterance in progress (or of the last one), in samples."""
        return self._speech_start

    @property
    def audio_start(self) -> int:
        """First sample of the audio of the utterance in progress (or of the last one), pre-roll included."""
        return self._audio_start

    @property
    def speech_end(self) -> int:
        """End (sample) of the latest speech frame of the utterance in progress (or of the last one)."""
        return self._speech_end

    @property
    def final_end(self) -> int:
        """Where the audio of the utterance in progress would end (sample, exclusive) if silence ended it now:
        ``min(position, speech_end + post_roll)``, the bound of an endpoint and of :meth:`flush`. Once
        ``post_roll_ms`` of silence has passed it no longer moves until speech resumes, so the audio of the final
        is already decided (what speculative finals rely on)."""
        return min(self._position, self._speech_end + self._post_roll)

    @property
    def keep_from(self) -> int:
        """Earliest sample a caller must still keep to cut future utterances (pre-roll included)."""
        if self._in_utterance:
            return self._audio_start
        anchor = self._position if self._run_start is None else self._run_start
        return max(self._last_end, anchor - self._pre_roll)

    def push(self, prob: float, frame_samples: int) -> list[EndpointEvent]:
        """Account for one VAD frame of ``frame_samples`` samples whose speech probability is ``prob``.

        Returns zero or one event: ``start`` on the frame that completes ``min_speech_ms``, then ``continue``
        for every frame inside the utterance, ``end`` on the frame that completes the endpoint silence or reaches
        ``max_utterance_ms``.
        """
        if frame_samples <= 0:
            raise InvalidInputError("frame length must be positive", frame_samples=frame_samples)
        frame_start = self._position
        self._position += frame_samples
        if not self._in_utterance:
            return self._push_idle(prob, frame_start)
        if prob >= self.config.negative_threshold:
            self._speech_end = self._position
        if self._position - self._audio_start >= self._max_utterance:
            return [self._end(forced=True)]
        if self._position - self._speech_end >= self._endpoint_silence:
            return [self._end(forced=False)]
        return [self._event("continue", audio_end=self._position)]

    def _push_idle(self, prob: float, frame_start: int) -> list[EndpointEvent]:
        if self._run_start is None:
            if prob < self.config.threshold:
                return []
            self._run_start = frame_start
        if prob >= self.config.negative_threshold:  # hysteresis, as inside an utterance
            self._run_end = self._position
        elif self._position - self._run_end >= self._start_gap:
            self._run_start = None
            return []
        if self._run_end - self._run_start < self._min_speech:
            return []
        self._in_utterance = True
        self._speech_start = self._run_start
        self._speech_end = self._run_end
        self._audio_start = max(self._last_end, self._run_start - self._pre_roll)
        self._run_start = None
        return [self._event("start", audio_end=self._position)]

    def flush(self) -> list[EndpointEvent]:
        """The stream ended: end the utterance in progress (if any) at the audio seen so far."""
        if not self._in_utterance:
            return []
        return [self._end(forced=False)]

    def _end(self, *, forced: bool) -> EndpointEvent:
        audio_end = self._position if forced else self.final_end
        event = self._event("end", audio_end=audio_end, forced=forced)
        self._in_utterance = False
        self._last_end = audio_end
        self._run_start = None
        return event

    def _event(self, kind: EndpointKind, *, audio_end: int, forced: bool = False) -> EndpointEvent:
        return EndpointEvent(kind, self._audio_start, audio_end, self._speech_start, self._speech_end, forced)
