"""The threads of a speech worker: an intake thread that listens, an inference thread that recognises.

::

    intake thread    ── inbox → per stream: G.711 → PCM16, 8 → 16 kHz (Resampler), VAD + endpointing
                        → SpeechStarted at once; endpointed utterances queued as pending finals; partials marked due
    inference threads ── each: a final of the stream whose oldest pending final waits longest, else a speculative
                        final (the due stream silent longest), else one partial (the most lagging due stream) while
                        partials stay within ``streaming.partial_budget`` of the recent recognition time; a stream
                        is claimed by one thread at a time, so its events keep their order

Splitting them keeps endpointing on time: an utterance's end is detected while the recogniser is busy with another
stream, so a final waits only for the pass in progress, not for the audio backlog behind it. CTranslate2 and ONNX
Runtime release the GIL while they compute, so the two threads overlap on two cores. A speculative final
(``streaming.early_final_ms`` of silence into an utterance, see :mod:`asr.streaming`) decodes the final's audio
before the endpoint; the stream stays claimed meanwhile, so its real final, endpointed later, waits for the
speculation and reuses it.

Streams are keyed by (call_id, leg). The intake thread creates and ends them; an ended stream is forgotten as soon
as no inference thread holds it and its finals are done (by whichever thread sees that first). ``_lock`` guards
the stream tables; each :class:`asr.streaming.StreamingTranscriber` guards its own state. Events go to ``emit``
(thread-safe, in order per thread). Every step is a task root: a failure is logged and counted, never fatal.

A stream whose ``StreamStart.dialog`` is set (a leg talking to the voice bot) is transcribed with
``dialog_streaming`` (in production: a shorter endpoint silence and minimum speech, ``asr.dialog_*``), any other
with ``streaming``; the engine-wide ``partial_budget`` is always ``streaming``'s.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from asr.base import Recognizer, VoiceActivityDetector
from asr.engine_parts import Signal, early_counts, early_final_ready, partial_ready
from asr.media_stream import DecodeDefaults, MediaStream
from asr.streaming import StreamingConfig, StreamingTranscriber
from asr.worker_stats import DutyCycle, SpeechWorkerStats, keep_timing
from core.events import Event
from core.logging import get_logger
from core.media import AudioChunk, StreamEnd, StreamStart

__all__ = ["SpeechEngine", "StreamKey"]

log = get_logger(__name__)

StreamKey = tuple[str, str]
_STOP = object()


class SpeechEngine:
    """Streams, their intake and inference threads (see the module docstring).

    ``put()`` takes media messages from any thread; ``processed`` (call ms done per stream) is read by the owner for
    the lag. ``dialog_streaming`` (default: ``streaming``) is the config of dialog streams (``StreamStart.dialog``).
    ``start()`` starts both threads; ``stop()`` (blocking) ends every open stream, runs its finals and joins the
    threads.
    """

    def __init__(
        self,
        *,
        recognizer: Recognizer,
        vad_factory: Callable[[], VoiceActivityDetector],
        streaming: StreamingConfig,
        dialog_streaming: StreamingConfig | None = None,
        decode: DecodeDefaults,
        stats: SpeechWorkerStats,
        emit: Callable[[list[Event]], None],
        received: dict[StreamKey, int],
        index: int = 0,
        idle_timeout_s: float = 60.0,
        inference_threads: int = 1,
    ) -> None:
        self.stats = stats
        self.index = index
        self.processed: dict[StreamKey, int] = {}
        """Call ms up to which each stream is processed (VAD'd and its finals recognised)."""
        self._recognizer = recognizer
        self._vad_factory = vad_factory
        self._streaming = streaming
        self._dialog_streaming = dialog_streaming if dialog_streaming is not None else streaming
        self._decode = decode
        self._emit = emit
        self._received = received
        self._idle_timeout_s = idle_timeout_s
        self._inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._streams: dict[StreamKey, MediaStream] = {}
        self._final_queued: dict[StreamKey, list[float]] = {}  # monotonic s at which each pending final was endpointed
        self._stamped: dict[StreamKey, int] = {}  # finals endpointed and stamped so far, per stream
        self._partial_duty = DutyCycle()
        self._busy: set[StreamKey] = set()  # streams an inference thread is recognising now
        self._inference_threads = max(1, inference_threads)
        self._signal = Signal()  # bumped by the intake thread when there may be something to recognise
        self._intake_done = threading.Event()
        self._threads: list[threading.Thread] = []

    # --- lifecycle (owner thread) ---------------------------------------------------------------------------

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._intake_main, name=f"speech-intake-{self.index}", daemon=True),
            *(
                threading.Thread(
                    target=self._inference_main,
                    args=(i > 0 or self._inference_threads == 1,),
                    name=f"speech-inference-{self.index}-{i}",
                    daemon=True,
                )
                for i in range(self._inference_threads)
            ),
        ]
        for thread in self._threads:
            thread.start()

    def put(self, message: object) -> None:
        """Queue one decoded media message (any thread, never blocks)."""
        self._inbox.put(message)

    def stop(self) -> None:
        """End every open stream, recognise its pending finals, join both threads (blocking)."""
        self._inbox.put(_STOP)
        for thread in self._threads:
            thread.join()
        self._threads = []

    # --- intake thread --------------------------------------------------------------------------------------

    def _intake_main(self) -> None:
        while True:
            try:
                item = self._inbox.get(timeout=min(1.0, self._idle_timeout_s))
            except queue.Empty:
                self._expire_idle_streams()
                continue
            if item is _STOP:
                with self._lock:
                    keys = tuple(self._streams)
                for key in keys:
                    self._guard(self._end_stream, key)
                self._intake_done.set()
                self._signal.bump()
                return
            self._step(item)
            if self._inbox.empty():
                self._expire_idle_streams()
            self._signal.bump()

    def _expire_idle_streams(self) -> None:
        now = time.monotonic()
        with self._lock:
            idle = [k for k, s in self._streams.items() if not s.ended and now - s.last_active_s > self._idle_timeout_s]
        for key in idle:
            self.stats.streams_expired += 1
            log.warning("speech stream ended after inactivity", worker=self.index, call_id=key[0], leg=key[1])
            self._guard(self._end_stream, key)

    def _guard(self, fn: Callable[..., None], *args: object) -> None:
        """Task root of one step: log and count any failure, never die."""
        try:
            fn(*args)
        except Exception:  # both threads must survive bad audio and recogniser failures
            self.stats.errors += 1
            log.exception("speech worker step failed", worker=self.index)

    def _step(self, item: object) -> None:
        if isinstance(item, StreamStart):
            self._guard(self._start_stream, item)
        elif isinstance(item, AudioChunk):
            self._guard(self._audio, item)
        elif isinstance(item, StreamEnd):
            self._guard(self._end_stream, (item.call_id, item.leg))

    def _start_stream(self, start: StreamStart) -> None:
        key = (start.call_id, start.leg)
        with self._lock:
            restarted = key in self._streams
        if restarted:
            self._end_stream(key)
        stream = MediaStream(
            start,
            recognizer=self._recognizer,
            vad_factory=self._vad_factory,
            config=self._dialog_streaming if start.dialog else self._streaming,
            defaults=self._decode,
            now_s=time.monotonic(),
        )
        with self._lock:
            old = self._streams.get(key)
            if old is not None:  # the old one's finals still run: keep them (and their time stamps) apart
                alias = (key[0], f"{key[1]}#{id(old)}")
                self._streams[alias] = old
                self._final_queued[alias] = self._final_queued.get(key, [])
                self._stamped[alias] = self._stamped.get(key, 0)
            self._streams[key] = stream
            self._final_queued[key] = []
            self._stamped[key] = 0
        self.stats.streams_started += 1

    def _audio(self, chunk: AudioChunk) -> None:
        key = (chunk.call_id, chunk.leg)
        with self._lock:
            stream = self._streams.get(key)
        if stream is None or stream.ended:
            self.stats.orphan_chunks += 1
            return
        stream.last_active_s = time.monotonic()
        events = stream.audio(chunk)
        self._count_skipped(stream)
        self._emit(events)
        self._note_progress(key, stream)

    def _end_stream(self, key: StreamKey) -> None:
        with self._lock:
            stream = self._streams.get(key)
        if stream is None or stream.ended:
            return
        self._emit(stream.end())
        self._count_skipped(stream)
        self._note_progress(key, stream)
        with self._lock:
            self._forget_if_done(key)

    def _count_skipped(self, stream: MediaStream) -> None:
        with self._lock:  # both threads count
            self.stats.partials_skipped += stream.skipped_delta()

    def _note_progress(self, key: StreamKey, stream: MediaStream) -> None:
        """Processed time for the lag, and a time stamp for every final endpointed since the last look."""
        transcriber = stream.transcriber
        if transcriber is None:
            return
        self.processed[key] = transcriber.processed_ms
        now = time.monotonic()
        with self._lock:
            endpointed = transcriber.finals_endpointed
            fresh = endpointed - self._stamped.get(key, 0)
            self._stamped[key] = endpointed
            self._final_queued.setdefault(key, []).extend([now] * fresh)

    # --- inference threads ----------------------------------------------------------------------------------

    def _inference_main(self, partials: bool) -> None:
        """One inference thread: finals first, then speculative finals; partials too when ``partials`` (with
        several threads, the first one keeps to finals, so that an utterance that ends never waits for a partial
        pass to finish). The intake thread bumps ``_signal`` after every message, which wakes an idle thread when
        a final, an early final or a partial may have become due; while one is due but not taken (its stream was
        busy, or partials are over budget), the thread looks again after 50 ms."""
        seen = self._signal.generation
        while True:
            if self._run_one_final():
                continue
            if self._intake_done.is_set():
                with self._lock:
                    pending = any(s.transcriber and s.transcriber.finals_pending for s in self._streams.values())
                if not pending:
                    return
                seen = self._signal.wait(seen, 0.05)
                continue
            if self._run_one_early_final():
                continue
            if partials and self._run_one_partial():
                continue
            soon = self._waiting(early_final_ready) or (partials and self._waiting(partial_ready))
            seen = self._signal.wait(seen, 0.05 if soon else 0.5)

    def _oldest_stamp(self, key: StreamKey, stream: MediaStream) -> float:
        """Monotonic time at which the stream's oldest pending final was endpointed (caller holds the lock)."""
        stamps = self._final_queued.get(key)
        return stamps[0] if stamps else 0.0

    def _claim(
        self,
        wanted: Callable[[MediaStream], bool],
        order: Callable[[StreamKey, MediaStream], float],
    ) -> StreamKey | None:
        """Mark the first (by ``order``) idle stream that ``wanted`` accepts as busy; its key, or ``None``."""
        with self._lock:
            idle = [(order(k, s), k) for k, s in self._streams.items() if k not in self._busy and wanted(s)]
            if not idle:
                return None
            key = min(idle)[1]
            self._busy.add(key)
            return key

    def _release(self, key: StreamKey) -> None:
        """Un-claim ``key``; forget it when it ended and has nothing left to recognise."""
        with self._lock:
            self._busy.discard(key)
            self._forget_if_done(key)

    def _forget_if_done(self, key: StreamKey) -> None:
        """Drop an ended stream that no thread holds and that has no final left (caller holds the lock)."""
        stream = self._streams.get(key)
        if stream is None or not stream.ended or key in self._busy:
            return
        if stream.transcriber is not None and stream.transcriber.finals_pending:
            return
        del self._streams[key]
        self._final_queued.pop(key, None)
        self._stamped.pop(key, None)
        self._received.pop(key, None)
        self.processed.pop(key, None)

    def _run_one_final(self) -> bool:
        """Recognise one pending final of the stream whose oldest one waits longest; whether one ran."""
        key = self._claim(lambda s: bool(s.transcriber and s.transcriber.finals_pending), self._oldest_stamp)
        if key is None:
            return False
        try:
            with self._lock:
                stream = self._streams[key]
                stamps = self._final_queued.get(key)
                queued_at = stamps.pop(0) if stamps else None
            transcriber = stream.transcriber
            assert transcriber is not None
            started = time.monotonic()
            if queued_at is not None:
                keep_timing(self.stats.final_wait_ms, 1000.0 * (started - queued_at))
            before = early_counts(transcriber)
            try:
                final = transcriber.run_final()
            except Exception:  # task root: a failed final is logged, the stream goes on
                self.stats.errors += 1
                log.exception("final transcription failed", worker=self.index, call_id=key[0], leg=key[1])
                final = None
            if not self._add_early_counts(before, transcriber):  # a reused speculation decoded nothing
                keep_timing(self.stats.final_decode_ms, 1000.0 * (time.monotonic() - started))
            if final is not None:
                self.stats.finals += 1
                self._emit([final])
            self.processed[key] = transcriber.processed_ms
        finally:
            self._release(key)
        return True

    def _add_early_counts(self, before: tuple[int, int], transcriber: StreamingTranscriber) -> bool:
        """Add the stream's speculation outcomes since ``before`` to the worker's; whether one was used."""
        used, wasted = early_counts(transcriber)
        with self._lock:  # several inference threads count
            self.stats.early_finals_used += used - before[0]
            self.stats.early_finals_wasted += wasted - before[1]
        return used > before[0]

    def _run_one_early_final(self) -> bool:
        """A speculative final for the due stream silent longest; whether one was tried."""
        key = self._claim(early_final_ready, lambda _, s: -float(s.transcriber.silence_ms) if s.transcriber else 0.0)
        if key is None:
            return False
        try:
            with self._lock:
                stream = self._streams[key]
            transcriber = stream.transcriber
            assert transcriber is not None
            transcriber.note_received(self._received.get(key, 0))
            before = early_counts(transcriber)
            started = time.monotonic()
            try:
                ran = transcriber.run_early_final()
            except Exception:  # task root: the final will be decoded as usual
                self.stats.errors += 1
                log.exception("early final transcription failed", worker=self.index, call_id=key[0], leg=key[1])
                ran = True
            if ran:
                with self._lock:
                    self.stats.early_finals += 1
                keep_timing(self.stats.early_final_decode_ms, 1000.0 * (time.monotonic() - started))
            self._add_early_counts(before, transcriber)
        finally:
            self._release(key)
        return True

    def _partial_allowed(self) -> bool:
        """Whether partial passes are within ``streaming.partial_budget`` of the recent recognition capacity."""
        with self._lock:
            share = self._partial_duty.share(time.monotonic())
        return share < self._streaming.partial_budget * max(1, self._inference_threads - 1)

    def _waiting(self, ready: Callable[[MediaStream], bool]) -> bool:
        """Whether any stream is ``ready`` (a partial or an early final due), busy or not."""
        with self._lock:
            streams = tuple(self._streams.values())
        return any(ready(s) for s in streams)

    def _run_one_partial(self) -> bool:
        """One partial pass for the most lagging due stream, within the partial budget; whether one ran."""
        if not self._partial_allowed():
            return False
        key = self._claim(partial_ready, lambda _, s: -float(s.transcriber.lag_ms) if s.transcriber else 0.0)
        if key is None:
            return False
        try:
            with self._lock:
                stream = self._streams[key]
            transcriber = stream.transcriber
            assert transcriber is not None
            transcriber.note_received(self._received.get(key, 0))
            started = time.monotonic()
            passes = transcriber.stats.partial_passes
            try:
                partial = transcriber.run_partial()
            except Exception:  # task root: partials are best effort
                self.stats.errors += 1
                log.exception("partial transcription failed", worker=self.index, call_id=key[0], leg=key[1])
                return True
            finally:
                self._count_skipped(stream)
            if transcriber.stats.partial_passes > passes:
                ended = time.monotonic()
                with self._lock:
                    self._partial_duty.add(started, ended)
                keep_timing(self.stats.partial_decode_ms, 1000.0 * (ended - started))
            if partial is not None:
                self.stats.partials += 1
                self._emit([partial])
        finally:
            self._release(key)
        return True
