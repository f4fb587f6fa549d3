"""Live transcription of one audio stream (one leg of one call): VAD → endpointing → partials and finals.

A :class:`StreamingTranscriber` is synchronous. Work is split in two phases, which a speech worker runs on two
threads (its intake thread and its inference thread; in tests, both on the test's thread):

1. :meth:`StreamingTranscriber.accept` — cheap: runs the VAD and the :class:`~asr.endpointer.Endpointer` over new
   16 kHz PCM, returns :class:`~core.events.SpeechStarted` at once, queues a pending final for every utterance that
   ended and notes when a partial is due;
2. :meth:`~StreamingTranscriber.run_final` / :meth:`~StreamingTranscriber.run_partial` — expensive: one recogniser
   pass each. Finals are never dropped; a partial is skipped (and counted) while the stream lags by more than
   ``max_partial_lag_ms``, and one whose text is a repetition loop (a Whisper hallucination) is not emitted.

**Speculative ("early") finals.** Once ``early_final_ms`` of silence follows the last speech frame (at least the
endpoint's ``post_roll_ms``), the audio of the utterance's final is decided — if it does end.
:meth:`~StreamingTranscriber.run_early_final` decodes exactly that audio with exactly the final's options, before the
endpoint (``endpoint_silence_ms``) is reached; when the final is then queued with the same bounds,
:meth:`~StreamingTranscriber.run_final` returns the kept result instead of decoding again, so the final comes out a
decode earlier and is the same. When speech resumes, the speculation is wasted (counted) and the final is decoded
as usual.

**Lag** (:attr:`StreamingTranscriber.lag_ms`) is audio time received upstream (:meth:`note_received`) but not yet
processed: not yet through the VAD, or inside an utterance whose final has been endpointed and not yet recognised
(counted from where the endpoint was detected). Times in events are ms from the call's start: ``offset_ms`` is the
call time of the stream's first sample.
"""

from __future__ import annotations

import threading
import zlib
from collections import deque
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from asr.base import SAMPLE_RATE_HZ, DecodeOptions, Recognizer, VoiceActivityDetector
from asr.endpointer import EndpointConfig, Endpointer
from asr.stream_buffer import EMPTY_PCM, AudioBuffer, FinalSpeculation, PendingFinal
from core.errors import AudioFormatError, InvalidInputError
from core.events import Event, FinalTranscript, Leg, PartialTranscript, SpeechStarted
from core.ids import CallId

_PAUSE = SAMPLE_RATE_HZ // 10
"""100 ms of silence (samples): the speaker has paused."""


@dataclass(frozen=True)
class StreamingConfig:
    """Live transcription settings (ms)."""

    endpoint: EndpointConfig = field(default_factory=EndpointConfig)
    partial_interval_ms: int = 500
    """Re-decode the utterance in progress about this often (audio time, the first one this long after the start is
    confirmed); 0 turns partials off. The interval stretches to the last partial's compute time, so one stream's
    partials never ask for more decoding than real time."""
    max_partial_lag_ms: int = 1_000
    """Partials are skipped while the stream lags by more than this."""
    partial_window_s: float | None = 5.0
    """Encoder window of partial passes (:attr:`asr.base.DecodeOptions.window_s`): fitted to the audio, at least
    this long (s); ``None`` uses the model's full window. Partials are provisional, so speed wins."""
    final_window_s: float | None = None
    """Encoder window of final passes; ``None`` (the model's full 30 s window) is the most accurate. The speech
    worker's setting (``asr.live_final_window_s``) fits it to the utterance (at least 10 s) for speed."""
    partial_budget: float = 0.5
    """Largest share (0-1) of a speech worker's recent time that partial passes may take; beyond it partials wait,
    so that with many streams finals do not queue behind partials (used by :class:`asr.engine.SpeechEngine`)."""
    early_final_ms: int | None = 300
    """Silence (ms) after the last speech frame from which the final is decoded speculatively, before the endpoint
    (``endpoint.endpoint_silence_ms``) decides it; ``None`` or 0 turns speculation off. It must be at least
    ``endpoint.post_roll_ms`` (before that, the final's audio is not decided yet); at or above
    ``endpoint_silence_ms`` it never fires. A speculation costs one final pass, wasted when speech resumes."""

    def __post_init__(self) -> None:
        if self.partial_interval_ms < 0 or self.max_partial_lag_ms < 0:
            raise InvalidInputError("partial_interval_ms and max_partial_lag_ms must not be negative")
        early, post_roll = self.early_final_ms, self.endpoint.post_roll_ms
        if early is not None and early != 0 and early < post_roll:
            raise InvalidInputError(
                "early_final_ms must be 0/None or at least endpoint.post_roll_ms", early_final_ms=early
            )
        if not 0.0 <= self.partial_budget <= 1.0:
            raise InvalidInputError("partial_budget must be within [0, 1]", partial_budget=self.partial_budget)


@dataclass
class StreamStats:
    """Counters of one stream."""

    utterances: int = 0
    finals: int = 0
    partials: int = 0
    """Partials emitted (passes that gave text)."""
    partial_passes: int = 0
    """Partial recognition passes run (with or without text)."""
    partials_skipped: int = 0
    early_finals: int = 0
    """Speculative final passes run (:meth:`StreamingTranscriber.run_early_final`)."""
    early_finals_used: int = 0
    """Finals that took a speculative result instead of decoding."""
    early_finals_wasted: int = 0
    """Speculative passes not used (speech resumed, a forced end, a failed pass); counted when found unusable: at
    the utterance's final or at the next speculation."""


def _looks_like_loop(text: str) -> bool:
    """Whisper's hallucination test: text that compresses more than 2.4× is a repetition loop (``账单账单…``)."""
    data = text.encode()
    return len(data) >= 24 and len(data) / len(zlib.compress(data)) > 2.4


class StreamingTranscriber:
    """Partials and finals for one (call_id, leg) stream of 16 kHz mono PCM16; see the module doc.

    ``vad`` belongs to this stream (it carries state). ``options`` are used for every pass (beam 1 for live).
    Threads: one thread may :meth:`accept`/:meth:`flush` (phase 1) while another runs :meth:`run_final` and
    :meth:`run_partial` and :meth:`run_early_final` (phase 2, one at a time); a lock guards the state, and no lock is
    held while recognising. Recogniser errors propagate from ``run_*`` (the pending item is consumed all the same,
    so a failing utterance is not retried forever).
    """

    def __init__(
        self,
        call_id: CallId,
        leg: Leg,
        recognizer: Recognizer,
        vad: VoiceActivityDetector,
        *,
        config: StreamingConfig | None = None,
        options: DecodeOptions | None = None,
        offset_ms: int = 0,
    ) -> None:
        self.call_id = call_id
        self.leg: Leg = leg
        self.config = config if config is not None else StreamingConfig()
        self.options = options if options is not None else DecodeOptions(beam_size=1)
        self.offset_ms = offset_ms
        self.stats = StreamStats()
        self._recognizer = recognizer
        self._vad = vad
        self._frame = SAMPLE_RATE_HZ * vad.frame_ms // 1000
        if self._frame <= 0:
            raise InvalidInputError("VAD frame length must be positive", frame_ms=vad.frame_ms)
        self._endpointer = Endpointer(self.config.endpoint, SAMPLE_RATE_HZ)
        self._buffer = AudioBuffer()
        self._vad_rest = EMPTY_PCM
        self._finals: deque[PendingFinal] = deque()
        self._last_partial = 0  # sample position of the last partial decision
        self._partial_cost_samples = 0
        self._received_ms = offset_ms
        self._finals_queued = 0  # utterances endpointed so far (a partial decoded across an endpoint is stale)
        self._early_delay = (self.config.early_final_ms or 0) * SAMPLE_RATE_HZ // 1000  # samples; 0: off
        self._spec = FinalSpeculation()
        self._lock = threading.RLock()

    # --- time -----------------------------------------------------------------------------------------------

    def _ms(self, samples: int) -> int:
        return self.offset_ms + samples * 1000 // SAMPLE_RATE_HZ

    @property
    def accepted_ms(self) -> int:
        """Call time (ms) of the end of the audio accepted so far."""
        return self._ms(self._buffer.end)

    @property
    def processed_ms(self) -> int:
        """Call time (ms) up to which everything is done: VAD'd, and every endpointed final recognised."""
        with self._lock:
            vad_done = self._ms(self._endpointer.position)
            return min(vad_done, self._finals[0].detected_ms) if self._finals else vad_done

    def note_received(self, end_ms: int) -> None:
        """Upstream has received audio up to call time ``end_ms`` (ms) for this stream (maybe not accepted yet)."""
        self._received_ms = max(self._received_ms, end_ms)

    @property
    def lag_ms(self) -> int:
        """Audio time received but not yet processed (ms, ≥ 0)."""
        return max(0, max(self._received_ms, self.accepted_ms) - self.processed_ms)

    # --- phase 1: cheap -------------------------------------------------------------------------------------

    def accept(self, pcm16k: npt.NDArray[np.int16]) -> list[Event]:
        """Take the next 16 kHz mono int16 samples; returns :class:`SpeechStarted` events (possibly none)."""
        if pcm16k.dtype != np.int16 or pcm16k.ndim != 1:
            raise AudioFormatError("Streaming audio must be mono int16 at 16 kHz.")
        with self._lock:
            return self._accept(pcm16k)

    def _accept(self, pcm16k: npt.NDArray[np.int16]) -> list[Event]:
        self._buffer.append(pcm16k)
        data = np.concatenate([self._vad_rest, pcm16k]) if len(self._vad_rest) else pcm16k
        usable = len(data) - len(data) % self._frame
        out: list[Event] = []
        for begin in range(0, usable, self._frame):
            prob = self._vad.is_speech(data[begin : begin + self._frame])
            for ev in self._endpointer.push(prob, self._frame):
                if ev.kind == "start":
                    self.stats.utterances += 1
                    self._last_partial = ev.audio_end  # first partial one interval after the start is confirmed
                    self._partial_cost_samples = 0
                    out.append(SpeechStarted(call_id=self.call_id, leg=self.leg, start_ms=self._ms(ev.speech_start)))
                elif ev.kind == "end":
                    self._count_missed_partials(ev.audio_end)
                    self._queue_final(ev.audio_start, ev.audio_end, ev.speech_start, ev.speech_end)
        self._vad_rest = data[usable:].copy()
        if not self._endpointer.in_utterance:
            self._buffer.trim(self._endpointer.keep_from)
        return out

    def _queue_final(self, audio_start: int, audio_end: int, speech_start: int, speech_end: int) -> None:
        audio = self._buffer.cut(audio_start, audio_end)
        detected_ms = self._ms(self._endpointer.position)
        bounds = (audio_start, audio_end, len(audio))
        final = PendingFinal(audio, self._ms(speech_start), self._ms(speech_end), detected_ms, bounds)
        self._finals.append(final)
        self._finals_queued += 1

    def flush(self) -> None:
        """The stream ended: queue the final of the utterance in progress, if any (run it with :meth:`run_final`)."""
        with self._lock:
            for ev in self._endpointer.flush():
                self._count_missed_partials(ev.audio_end)
                self._queue_final(ev.audio_start, ev.audio_end, ev.speech_start, ev.speech_end)
            self._vad_rest = EMPTY_PCM

    # --- phase 2: expensive ---------------------------------------------------------------------------------

    @property
    def finals_endpointed(self) -> int:
        """Utterances endpointed so far on this stream (pending or done)."""
        return self._finals_queued

    @property
    def finals_pending(self) -> int:
        """Endpointed utterances waiting for :meth:`run_final`."""
        return len(self._finals)

    @property
    def oldest_final_ms(self) -> int | None:
        """Call time (ms) at which the oldest pending final was endpointed, if any (for scheduling)."""
        return self._finals[0].detected_ms if self._finals else None

    def _final_options(self) -> DecodeOptions:
        """The options of every final pass, speculative or not (the stream's own, on the final window)."""
        return replace(self.options, window_s=self.config.final_window_s)

    def run_final(self) -> FinalTranscript | None:
        """Recognise the oldest pending utterance; ``None`` when none is pending. Text may be empty (noise). When a
        speculative final (:meth:`run_early_final`) decoded the same audio, its result is used instead."""
        with self._lock:
            if not self._finals:
                return None
            final = self._finals[0]
            result, wasted = self._spec.take(final.bounds)
            self.stats.early_finals_used += result is not None
            self.stats.early_finals_wasted += wasted
        try:
            if result is None:
                result = self._recognizer.transcribe(final.audio, self._final_options())
        finally:
            with self._lock:  # consumed even when recognition fails, so a bad utterance is not retried forever
                self._finals.popleft()
        self.stats.finals += 1
        return FinalTranscript(
            call_id=self.call_id,
            leg=self.leg,
            text=result.text.strip(),
            start_ms=final.start_ms,
            end_ms=final.end_ms,
            lang=result.lang,
            confidence=result.confidence,
        )

    def _speculated(self) -> bool:
        """Whether the utterance in progress, as it stands, has been speculated on (caller holds the lock)."""
        return self._spec.covers(self._endpointer.audio_start, self._endpointer.final_end)

    @property
    def silence_ms(self) -> int:
        """Audio time (ms) since the last speech frame of the utterance in progress; 0 outside an utterance."""
        with self._lock:
            ep = self._endpointer
            return (ep.position - ep.speech_end) * 1000 // SAMPLE_RATE_HZ if ep.in_utterance else 0

    @property
    def early_final_due(self) -> bool:
        """Whether a speculative final is due: an utterance is in progress with no final pending, ``early_final_ms``
        of silence has followed its last speech frame, its audio as it stands has not been speculated on yet, and
        the stream lags by no more than ``max_partial_lag_ms`` (beyond that, its endpoint is probably already
        waiting upstream, and a worker that falls behind should not spend passes that may be wasted)."""
        with self._lock:
            ep = self._endpointer
            if not self._early_delay or not ep.in_utterance or self._finals or self._speculated():
                return False
            if ep.position - ep.speech_end < self._early_delay:
                return False
            return self.lag_ms <= self.config.max_partial_lag_ms

    def run_early_final(self) -> bool:
        """Speculatively recognise the utterance in progress, when :attr:`early_final_due`: exactly the audio and
        the options its final would get if silence ended it now. Emits nothing; :meth:`run_final` uses the result
        when the final's bounds match. Returns whether a pass ran. Phase 2 (never at the same time as
        :meth:`run_final`: a speech worker holds the stream while speculating)."""
        with self._lock:
            if not self.early_final_due:
                return False
            ep = self._endpointer
            audio = self._buffer.cut(ep.audio_start, ep.final_end)
            bounds = (ep.audio_start, ep.final_end, len(audio))
            self.stats.early_finals_wasted += self._spec.begin(bounds)  # superseded: speech resumed since
            self._last_partial = max(self._last_partial, ep.position)  # a partial slot taken by a final-quality pass
            self.stats.early_finals += 1
        result = self._recognizer.transcribe(audio, self._final_options())  # no lock held: audio may keep arriving
        with self._lock:
            self._spec.finish(bounds, result)
        return True

    @property
    def partial_due(self) -> bool:
        """Whether an utterance is in progress and a partial is due (by audio time since the last one). Not while a
        speculative final covers the utterance as it stands (its audio is decided and the final follows), nor when
        the speaker has paused (100 ms) and the silence so far plus the last partial's compute time reaches the
        early-final delay: that pass would still hold the stream when the speculative final becomes due."""
        with self._lock:
            interval = self._partial_interval()
            ep = self._endpointer
            if not interval or not ep.in_utterance or self._speculated():
                return False
            silence = ep.position - ep.speech_end
            if self._early_delay and silence >= _PAUSE and silence + self._partial_cost_samples >= self._early_delay:
                return False
            return ep.position - self._last_partial >= interval

    def _partial_interval(self) -> int:
        """Current partial interval in samples (0: partials off)."""
        interval_ms = self.config.partial_interval_ms
        if interval_ms <= 0:
            return 0
        return max(interval_ms * SAMPLE_RATE_HZ // 1000, self._partial_cost_samples)

    def _count_missed_partials(self, position: int) -> None:
        """Partial slots between the last partial and ``position`` that were never run count as skipped."""
        interval = self._partial_interval()
        if interval:
            self.stats.partials_skipped += max(0, (position - self._last_partial) // interval)
            self._last_partial = max(self._last_partial, position)

    def run_partial(self) -> PartialTranscript | None:
        """Re-decode the utterance so far, when due. Returns ``None`` when not due, when skipped because the stream
        lags by more than ``max_partial_lag_ms``, or when nothing was recognised yet. Partial slots that pass
        without a partial (skipped for lag, or not run in time by the worker) are counted in
        ``stats.partials_skipped``."""
        with self._lock:
            if not self.partial_due:
                return None
            position = self._endpointer.position
            interval = self._partial_interval()
            self.stats.partials_skipped += (position - self._last_partial) // interval - 1
            self._last_partial = position
            if self.lag_ms > self.config.max_partial_lag_ms:
                self.stats.partials_skipped += 1
                return None
            audio = self._buffer.cut(self._endpointer.keep_from, position)
            speech_start, endpointed = self._endpointer.speech_start, self._finals_queued
        options = replace(self.options, window_s=self.config.partial_window_s, beam_size=1)  # provisional: greedy
        result = self._recognizer.transcribe(audio, options)  # no lock held: audio may keep arriving meanwhile
        with self._lock:
            self.stats.partial_passes += 1
            self._partial_cost_samples = int(result.compute_ms * SAMPLE_RATE_HZ / 1000)
            if self._finals_queued != endpointed:  # the utterance ended while decoding: its final says it all
                return None
        text = result.text.strip()
        if not text or _looks_like_loop(text):
            return None
        self.stats.partials += 1
        return PartialTranscript(
            call_id=self.call_id,
            leg=self.leg,
            text=text,
            start_ms=self._ms(speech_start),
            end_ms=self._ms(position),
            lang=result.lang,
        )

    # --- both phases ----------------------------------------------------------------------------------------

    def feed(self, pcm16k: npt.NDArray[np.int16]) -> list[Event]:
        """:meth:`accept`, then every pending final, a speculative final if due, then a partial if due: the events
        in order (single-thread use, the order of a speech worker)."""
        events = self.accept(pcm16k)
        while self._finals:
            final = self.run_final()
            if final is not None:
                events.append(final)
        self.run_early_final()
        partial = self.run_partial()
        if partial is not None:
            events.append(partial)
        return events

    def finish(self) -> list[Event]:
        """:meth:`flush`, then every pending final (end of stream, single-thread use)."""
        self.flush()
        events: list[Event] = []
        while self._finals:
            final = self.run_final()
            if final is not None:
                events.append(final)
        return events
