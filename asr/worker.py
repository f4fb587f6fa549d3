"""The speech worker: media messages in (ZeroMQ PULL), speech events out (event bus).

Threads of one worker process::

    event loop  ── receive task: PULL socket → decode_media → engine inbox              never computes, never stalls
                └─ publish task: outbox (asyncio.Queue) → bus.publish                  in order
    intake + inference threads (:class:`asr.engine.SpeechEngine`): VAD and endpointing on one, recognition on the
                other → events → loop.call_soon_threadsafe(outbox.put_nowait)

Lag: per stream, call time of the audio received by the receive task minus what the engine has processed
(:attr:`SpeechWorker.lag_ms`, the maximum over streams, for a Prometheus gauge). Partials are skipped while a stream
lags or while they would take more than ``streaming.partial_budget`` of the recogniser's time; finals never are. A
malformed message is counted, logged with a static message and dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio

from asr.base import Recognizer, VoiceActivityDetector
from asr.engine import SpeechEngine, StreamKey
from asr.media_stream import DecodeDefaults, bytes_per_ms
from asr.streaming import StreamingConfig
from asr.worker_stats import SpeechWorkerStats
from core.bus.base import EventBus
from core.errors import InvalidInputError
from core.events import Event
from core.logging import get_logger
from core.media import AudioChunk, MediaMessage, StreamStart, decode_media

__all__ = ["DecodeDefaults", "SpeechWorker", "SpeechWorkerStats", "run_speech_worker"]

log = get_logger(__name__)


def _prepare_endpoint(endpoint: str) -> None:
    if endpoint.startswith("ipc://") and not endpoint.startswith("ipc://@"):
        Path(endpoint.removeprefix("ipc://")).parent.mkdir(parents=True, exist_ok=True)


class SpeechWorker:
    """One speech worker: binds ``endpoint`` (PULL), transcribes every stream it receives, publishes on ``bus``.

    ``vad_factory`` makes a fresh detector per stream. ``streaming`` configures conversation streams,
    ``dialog_streaming`` (default: ``streaming``) the streams whose ``StreamStart.dialog`` is set (legs talking to the
    voice bot, endpointed sooner). ``start()``/``aclose()`` run on the event loop; the recogniser runs only on the
    worker's inference threads. The bus must be started by the caller.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        bus: EventBus,
        recognizer: Recognizer,
        vad_factory: Callable[[], VoiceActivityDetector],
        streaming: StreamingConfig | None = None,
        dialog_streaming: StreamingConfig | None = None,
        decode: DecodeDefaults | None = None,
        index: int = 0,
        rcvhwm: int = 100_000,
        stream_idle_timeout_s: float = 60.0,
        inference_threads: int = 1,
    ) -> None:
        self.endpoint = endpoint
        """The endpoint to bind; after :meth:`start`, the bound one (``tcp://…:*`` resolved)."""
        self.index = index
        self.stats = SpeechWorkerStats()
        self._bus = bus
        self._recognizer = recognizer
        self._vad_factory = vad_factory
        self._streaming = streaming if streaming is not None else StreamingConfig()
        self._dialog_streaming = dialog_streaming if dialog_streaming is not None else self._streaming
        self._decode = decode if decode is not None else DecodeDefaults()
        self._rcvhwm = rcvhwm
        self._idle_timeout_s = stream_idle_timeout_s
        self._outbox: asyncio.Queue[Event] = asyncio.Queue()
        self._received: dict[StreamKey, int] = {}  # call ms of the end of audio received (event loop writes)
        self._formats: dict[StreamKey, float] = {}  # bytes per ms (event loop)
        self._engine = SpeechEngine(
            recognizer=recognizer,
            vad_factory=vad_factory,
            streaming=self._streaming,
            dialog_streaming=self._dialog_streaming,
            decode=self._decode,
            stats=self.stats,
            emit=self._emit,
            received=self._received,
            index=index,
            idle_timeout_s=stream_idle_timeout_s,
            inference_threads=inference_threads,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running = False
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
        self._engine.start()
        self._running = True
        self._tasks = [asyncio.create_task(self._receive(sock)), asyncio.create_task(self._publish())]
        log.info("speech worker listening", worker=self.index, endpoint=self.endpoint)

    async def aclose(self) -> None:
        """Stop receiving, finish the finals of every open stream, publish them, release the socket. Idempotent."""
        if not self._running:
            return
        self._running = False
        receive, publish = self._tasks
        receive.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await receive
        await asyncio.to_thread(self._engine.stop)
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
        processed = self._engine.processed
        lags = [end - processed.get(key, end) for key, end in tuple(self._received.items())]
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
            self._engine.put(message)

    def _track(self, message: MediaMessage) -> None:
        key = (message.call_id, message.leg)
        if isinstance(message, StreamStart):
            self._formats[key] = bytes_per_ms(message)
        elif isinstance(message, AudioChunk):
            per_ms = self._formats.get(key)
            if per_ms is not None:
                processed = self._engine.processed.setdefault(key, message.start_ms)
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
        """Engine threads → event loop, in order per thread."""
        loop = self._loop
        assert loop is not None
        for event in events:
            loop.call_soon_threadsafe(self._outbox.put_nowait, event)


async def run_speech_worker(
    index: int,
    *,
    endpoint_template: str,
    bus: EventBus,
    recognizer: Recognizer,
    vad_factory: Callable[[], VoiceActivityDetector],
    streaming: StreamingConfig | None = None,
    dialog_streaming: StreamingConfig | None = None,
    decode: DecodeDefaults | None = None,
    stop: asyncio.Event,
    on_started: Callable[[SpeechWorker], None] | None = None,
    inference_threads: int = 1,
) -> SpeechWorkerStats:
    """Run speech worker ``index`` on ``endpoint_template.format(index=index)`` until ``stop`` is set.

    The caller owns ``bus`` (started before, closed after). ``on_started`` gets the worker once it listens (e.g.
    to register metrics). ``dialog_streaming`` (default: ``streaming``) configures dialog streams (legs talking to
    the voice bot, ``StreamStart.dialog``). Returns the worker's counters. Event-loop coroutine; inference runs on
    its own threads.
    """
    worker = SpeechWorker(
        endpoint_template.format(index=index),
        bus=bus,
        recognizer=recognizer,
        vad_factory=vad_factory,
        streaming=streaming,
        dialog_streaming=dialog_streaming,
        decode=decode,
        index=index,
        inference_threads=inference_threads,
    )
    await worker.start()
    try:
        if on_started is not None:
            on_started(worker)
        await stop.wait()
    finally:
        await worker.aclose()
    return worker.stats
