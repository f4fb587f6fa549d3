"""The speech worker: media messages in (ZeroMQ PULL), speech events out (event bus).

Threads of one worker process::

    event loop  ── receive task: PULL socket → decode_media → inbox (SimpleQueue)     never computes, never stalls
                └─ publish task: outbox (asyncio.Queue) → bus.publish                  in order
    inference thread ── inbox → per stream: G.711 → PCM16, 8 → 16 kHz (Resampler), VAD + endpointing
                        → finals of every stream first, then at most one partial, when the inbox is empty
                        → events → loop.call_soon_threadsafe(outbox.put_nowait)

Streams are keyed by (call_id, leg) and owned by the inference thread (resamplers and VADs are single-thread).
Lag: per stream, call time of the audio received by the receive task minus what the inference thread has processed
(:attr:`SpeechWorker.lag_ms`, the maximum over streams, for a Prometheus gauge). Partials are skipped while a stream
lags; finals never are. A malformed message is counted, logged with a static message and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio

from asr.base import Recognizer, VoiceActivityDetector
from asr.media_stream import DecodeDefaults, MediaStream, bytes_per_ms
from asr.streaming import StreamingConfig
from asr.worker_stats import DutyCycle, SpeechWorkerStats, keep_timing
from core.bus.base import EventBus
from core.errors import InvalidInputError
from core.events import Event
from core.logging import get_logger
from core.media import AudioChunk, MediaMessage, StreamEnd, StreamStart, decode_media

__all__ = ["DecodeDefaults", "SpeechWorker", "SpeechWorkerStats", "run_speech_worker"]

log = get_logger(__name__)

StreamKey = tuple[str, str]
_STOP = object()


def _prepare_endpoint(endpoint: str) -> None:
    if endpoint.startswith("ipc://") and not endpoint.startswith("ipc://@"):
        Path(endpoint.removeprefix("ipc://")).parent.mkdir(parents=True, exist_ok=True)


class SpeechWorker:
    """One speech worker: binds ``endpoint`` (PULL), transcribes every stream it receives, publishes on ``bus``.

    ``vad_factory`` makes a fresh detector per stream. ``start()``/``aclose()`` run on the event loop; the
    recogniser runs only on the worker's inference thread. The bus must be started by the caller.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        bus: EventBus,
        recognizer: Recognizer,
        vad_factory: Callable[[], VoiceActivityDetector],
        streaming: StreamingConfig | None = None,
        decode: DecodeDefaults | None = None,
        index: int = 0,
        rcvhwm: int = 100_000,
        stream_idle_timeout_s: float = 60.0,
    ) -> None:
        self.endpoint = endpoint
        """The endpoint to bind; after :meth:`start`, the bound one (``tcp://…:*`` resolved)."""
        self.index = index
        self.stats = SpeechWorkerStats()
        self._bus = bus
        self._recognizer = recognizer
        self._vad_factory = vad_factory
        self._streaming = streaming if streaming is not None else StreamingConfig()
        self._decode = decode if decode is not None else DecodeDefaults()
        self._rcvhwm = rcvhwm
        self._idle_timeout_s = stream_idle_timeout_s
        self._inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._outbox: asyncio.Queue[Event] = asyncio.Queue()
        self._received: dict[StreamKey, int] = {}  # call ms of the end of audio received (event loop writes)
        self._processed: dict[StreamKey, int] = {}  # call ms processed (inference thread writes)
        self._formats: dict[StreamKey, float] = {}  # bytes per ms (event loop; the thread forgets ended streams)
        self._streams: dict[StreamKey, MediaStream] = {}  # inference thread only
        self._final_queued: dict[StreamKey, list[float]] = {}  # monotonic s each pending final was endpointed
        self._partial_duty = DutyCycle()  # inference thread only
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._socket: Any = None
        self._context: Any = None

    # --- lifecycle (event loop) -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the PULL socket and start the receive, publish and inference loops."""
        self._loop = asyncio.get_running_loop()
        _prepare_endpoint(self.endpoint)
        context = zmq.asyncio.Context()
        sock = context.socket(zmq.PULL)
        sock.setsockopt(zmq.RCVHWM, self._rcvhwm)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.bind(self.endpoint)
        except zmq.ZMQError as exc:
            sock.close()
            context.term()
            raise InvalidInputError("speech worker cannot bind its endpoint", endpoint=self.endpoint) from exc
        self.endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self._socket, self._context = sock, context
        self._thread = threading.Thread(target=self._inference_main, name=f"speech-inference-{self.index}", daemon=True)
        self._thread.start()
        self._tasks = [asyncio.create_task(self._receive(sock)), asyncio.create_task(self._publish())]
        log.info("speech worker listening", worker=self.index, endpoint=self.endpoint)

    async def aclose(self) -> None:
        """Stop receiving, finish the finals of every open stream, publish them, release the socket. Idempotent."""
        if self._thread is None:
            return
        receive, publish = self._tasks
        receive.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receive
        self._inbox.put(_STOP)
        await asyncio.to_thread(self._thread.join)
        self._thread = None
        await self._outbox.join()
        publish.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await publish
        self._socket.close()
        self._context.term()
        log.info("speech worker stopped", worker=self.index)

    @property
    def lag_ms(self) -> int:
        """The largest lag (ms) of any open stream: audio received but not yet processed."""
        lags = [end - self._processed.get(key, end) for key, end in tuple(self._received.items())]
        return max([0, *lags])

    # --- event loop tasks -----------------------------------------------------------------------------------

    async def _receive(self, sock: Any) -> None:
        while True:
            frames = await sock.recv_multipart()
            self.stats.messages += 1
            try:
                message = decode_media(frames)
            except InvalidInputError:
                self.stats.malformed += 1
                if self.stats.malformed <= 10 or self.stats.malformed % 1000 == 0:  # no log flood from a bad peer
                    log.warning("malformed media message dropped", worker=self.index, malformed=self.stats.malformed)
                continue
            self._track(message)
            self._inbox.put(message)

    def _track(self, message: MediaMessage) -> None:
        key = (message.call_id, message.leg)
        if isinstance(message, StreamStart):
            self._formats[key] = bytes_per_ms(message)
        elif isinstance(message, AudioChunk):
            per_ms = self._formats.get(key)
            if per_ms is not None:
                processed = self._processed.setdefault(key, message.start_ms)
                received = self._received[key] = message.start_ms + int(len(message.payload) / per_ms)
                self.stats.max_lag_ms = max(self.stats.max_lag_ms, received - processed)
        else:
            self._formats.pop(key, None)

    async def _publish(self) -> None:
        while True:
            event = await self._outbox.get()
            try:
                await self._bus.publish(event)
            except Exception:  # task root: a bus failure loses this event, never the worker
                self.stats.publish_errors += 1
                log.exception("speech event not published", worker=self.index)
            finally:
                self._outbox.task_done()

    def _emit(self, events: list[Event]) -> None:
        """Inference thread → event loop, in order."""
        loop = self._loop
        assert loop is not None
        for event in events:
            loop.call_soon_threadsafe(self._outbox.put_nowait, event)

    # --- inference thread -----------------------------------------------------------------------------------

    def _partial_allowed(self) -> bool:
        """Whether partial passes are within ``streaming.partial_budget`` of the recent inference time."""
        return self._partial_duty.share(time.monotonic()) < self._streaming.partial_budget

    def _inference_main(self) -> None:
        stopping = False
        while True:
            due = any(s.transcriber is not None and s.transcriber.partial_due for s in self._streams.values())
            # a due partial that the budget allows: do not wait for audio; one it holds back: look again soon;
            # idle: wake up now and then to end streams whose media worker went silent
            if due and self._partial_allowed():
                timeout: float | None = None
            else:
                timeout = 0.05 if due else min(1.0, self._idle_timeout_s)
            try:
                item = self._inbox.get_nowait() if timeout is None else self._inbox.get(timeout=timeout)
            except queue.Empty:
                item = None
            while item is not None:
                if item is _STOP:
                    stopping = True
                else:
                    self._step(item)
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    item = None
            if stopping:
                for key in tuple(self._streams):
                    self._guard(self._end_stream, key)
            else:
                self._expire_idle_streams()
            self._run_finals()
            if stopping:
                return
            self._run_one_partial()

    def _expire_idle_streams(self) -> None:
        now = time.monotonic()
        for key, stream in tuple(self._streams.items()):
            if not stream.ended and now - stream.last_active_s > self._idle_timeout_s:
                self.stats.streams_expired += 1
                log.warning("speech stream ended after inactivity", worker=self.index, call_id=key[0], leg=key[1])
                self._guard(self._end_stream, key)

    def _guard(self, fn: Callable[..., None], *args: object) -> None:
        """Task root of one inference step: log and count any failure, never die."""
        try:
            fn(*args)
        except Exception:  # the inference thread must survive bad audio and recogniser failures
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
        if key in self._streams:
            self._end_stream(key)
        self._streams[key] = MediaStream(
            start,
            recognizer=self._recognizer,
            vad_factory=self._vad_factory,
            config=self._streaming,
            defaults=self._decode,
            now_s=time.monotonic(),
        )
        self.stats.streams_started += 1

    def _audio(self, chunk: AudioChunk) -> None:
        key = (chunk.call_id, chunk.leg)
        stream = self._streams.get(key)
        if stream is None or stream.ended:
            self.stats.orphan_chunks += 1
            return
        stream.last_active_s = time.monotonic()
        events = stream.audio(chunk)
        self.stats.partials_skipped += stream.skipped_delta()
        self._emit(events)
        if stream.transcriber is not None:
            self._processed[key] = stream.transcriber.processed_ms
            self._note_finals(key, stream)

    def _note_finals(self, key: StreamKey, stream: MediaStream) -> None:
        """Stamp finals endpointed since the last look (for ``stats.final_wait_ms``)."""
        queued = self._final_queued.setdefault(key, [])
        pending = stream.transcriber.finals_pending if stream.transcriber is not None else 0
        now = time.monotonic()
        queued.extend([now] * (pending - len(queued)))

    def _end_stream(self, key: StreamKey) -> None:
        stream = self._streams.get(key)
        if stream is None or stream.ended:
            return
        self._emit(stream.end())
        self.stats.partials_skipped += stream.skipped_delta()
        if stream.transcriber is not None:
            self._processed[key] = stream.transcriber.processed_ms
            self._note_finals(key, stream)

    def _run_finals(self) -> None:
        """Every pending final of every stream (before any partial); then forget ended streams."""
        while True:
            pending = [
                key for key, s in self._streams.items() if s.transcriber is not None and s.transcriber.finals_pending
            ]
            if not pending:
                break
            key = pending[0]
            transcriber = self._streams[key].transcriber
            assert transcriber is not None
            queued = self._final_queued.get(key)
            started = time.monotonic()
            if queued:
                keep_timing(self.stats.final_wait_ms, 1000.0 * (started - queued.pop(0)))
            try:
                final = transcriber.run_final()
            except Exception:  # task root: a failed final is logged, the stream goes on
                self.stats.errors += 1
                log.exception("final transcription failed", worker=self.index, call_id=key[0], leg=key[1])
                final = None
            keep_timing(self.stats.final_decode_ms, 1000.0 * (time.monotonic() - started))
            if final is not None:
                self.stats.finals += 1
                self._emit([final])
            self._processed[key] = transcriber.processed_ms
        for key in [k for k, s in self._streams.items() if s.ended]:
            del self._streams[key]
            self._final_queued.pop(key, None)
            self._received.pop(key, None)
            self._processed.pop(key, None)
            self._formats.pop(key, None)

    def _run_one_partial(self) -> None:
        """At most one partial, only when no new audio is waiting; the first due stream (by lag) that yields text.

        A stream's partial stops being due once run, so streams take turns."""
        if not self._inbox.empty() or not self._partial_allowed():
            return
        due = [
            (s.transcriber.lag_ms, key)
            for key, s in self._streams.items()
            if s.transcriber is not None and not s.ended and s.transcriber.partial_due
        ]
        for _, key in sorted(due, reverse=True):
            stream = self._streams[key]
            transcriber = stream.transcriber
            assert transcriber is not None
            transcriber.note_received(self._received.get(key, 0))
            started = time.monotonic()
            ran = transcriber.stats.partial_passes
            try:
                partial = transcriber.run_partial()
            except Exception:  # task root: partials are best effort
                self.stats.errors += 1
                log.exception("partial transcription failed", worker=self.index, call_id=key[0], leg=key[1])
                return
            finally:
                self.stats.partials_skipped += stream.skipped_delta()
            if transcriber.stats.partial_passes > ran:
                ended = time.monotonic()
                self._partial_duty.add(started, ended)
                keep_timing(self.stats.partial_decode_ms, 1000.0 * (ended - started))
            if partial is not None:
                self.stats.partials += 1
                self._emit([partial])
                return


async def run_speech_worker(
    index: int,
    *,
    endpoint_template: str,
    bus: EventBus,
    recognizer: Recognizer,
    vad_factory: Callable[[], VoiceActivityDetector],
    streaming: StreamingConfig | None = None,
    decode: DecodeDefaults | None = None,
    stop: asyncio.Event,
    on_started: Callable[[SpeechWorker], None] | None = None,
) -> SpeechWorkerStats:
    """Run speech worker ``index`` on ``endpoint_template.format(index=index)`` until ``stop`` is set.

    The caller owns ``bus`` (started before, closed after). ``on_started`` gets the worker once it listens (e.g.
    to register metrics). Returns the worker's counters. Event-loop coroutine; inference runs on its own thread.
    """
    worker = SpeechWorker(
        endpoint_template.format(index=index),
        bus=bus,
        recognizer=recognizer,
        vad_factory=vad_factory,
        streaming=streaming,
        decode=decode,
        index=index,
    )
    await worker.start()
    try:
        if on_started is not None:
            on_started(worker)
        await stop.wait()
    finally:
        await worker.aclose()
    return worker.stats
