"""Entry point of a speech worker process: ``python -m voxdesk.speech_main --index N [--metrics-port P]``.

Started by the supervisor behind ``voxdesk serve`` (one child per ``asr.speech_workers``). Reads the settings
(``$VOXDESK_CONFIG`` and ``VOXDESK_*``), builds the event bus, the Whisper recogniser and the VAD chosen in
``[asr]``, and runs :func:`asr.worker.run_speech_worker` on the main thread's event loop until SIGTERM/SIGINT
(open streams are finalised first). With ``--metrics-port``, Prometheus metrics (lag, counters) are served on
``127.0.0.1:PORT``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from asr.base import DecodeOptions, Recognizer, Transcription, VoiceActivityDetector
from asr.endpointer import EndpointConfig
from asr.streaming import StreamingConfig
from asr.worker import DecodeDefaults, SpeechWorker, run_speech_worker
from core.logging import configure_logging, get_logger
from voxdesk.registry import build_bus
from voxdesk.settings import AsrSettings, Settings, load_settings
from voxdesk.stats_file import write_stats_file

if TYPE_CHECKING:
    from asr.models import WhisperName

log = get_logger(__name__)


class LanguageRoutedRecognizer:
    """A :class:`asr.base.Recognizer` that sends ``en`` streams to an English-only model (``asr.english_only_model``,
    e.g. the faster tiny.en) and everything else (``zh``, ``auto``) to the multilingual one. Same thread rules as
    the recognisers it wraps (the speech worker's inference thread)."""

    def __init__(self, multilingual: Recognizer, english: Recognizer) -> None:
        self.multilingual = multilingual
        self.english = english

    def transcribe(self, pcm16k: npt.NDArray[np.int16], options: DecodeOptions) -> Transcription:
        """Recognise with the model for ``options.lang``."""
        model = self.english if options.lang == "en" else self.multilingual
        return model.transcribe(pcm16k, options)


def build_recognizer(settings: Settings) -> Recognizer:
    """The live recogniser: faster-whisper on ``models.whisper_model`` (assembled on first use), greedy, no
    temperature fallback (latency matters more than rescuing a bad decode), ``asr.inference_threads`` passes at
    once; ``en`` lines use ``asr.english_only_model`` when it differs. Blocking (model load); raises
    ``ModelMissingError``."""
    from asr.backends.faster_whisper import FasterWhisperRecognizer
    from asr.models import whisper_model_path

    parallel = settings.asr.inference_threads

    def load(name: WhisperName) -> Recognizer:
        return FasterWhisperRecognizer(
            whisper_model_path(name, settings.models.cache_dir),
            compute_type=settings.models.compute_type,
            cpu_threads=max(1, settings.models.threads // parallel),
            num_workers=parallel,
            temperatures=(0.0,),
            zh_prompt=settings.asr.zh_prompt,
        )

    main = load(settings.models.whisper_model)
    if settings.asr.english_only_model == settings.models.whisper_model:
        return main
    return LanguageRoutedRecognizer(main, load(settings.asr.english_only_model))


def build_vad_factory(asr: AsrSettings) -> Callable[[], VoiceActivityDetector]:
    """A factory of per-stream detectors for ``asr.vad`` (``silero`` or ``webrtc``); checks it once now."""
    from asr.vad import SileroVad, WebRtcVad

    factory: Callable[[], VoiceActivityDetector] = SileroVad if asr.vad == "silero" else WebRtcVad
    factory()  # fail at start-up, not on the first call, when the model or package is missing
    return factory


def streaming_config(asr: AsrSettings) -> StreamingConfig:
    """Endpointing and partial settings from ``[asr]``."""
    endpoint = EndpointConfig(
        threshold=asr.vad_threshold,
        min_speech_ms=asr.min_speech_ms,
        endpoint_silence_ms=asr.endpoint_silence_ms,
        max_utterance_ms=asr.max_utterance_ms,
    )
    return StreamingConfig(
        endpoint=endpoint,
        partial_interval_ms=asr.partial_interval_ms,
        partial_budget=asr.partial_budget,
        partial_window_s=asr.live_partial_window_s,
        final_window_s=asr.live_final_window_s,
        early_final_ms=asr.early_final_ms,
    )


def dialog_streaming_config(asr: AsrSettings) -> StreamingConfig:
    """The config of dialog streams (legs talking to the voice bot, ``StreamStart.dialog``): the conversation config
    with the ``asr.dialog_*`` endpointing values (endpoint silence, minimum speech, post-roll, early final; ms) and
    the dialog encoder window (``asr.dialog_final_window_s``).
    Raises ``InvalidInputError`` (through :class:`~asr.streaming.StreamingConfig`'s checks) when
    ``dialog_early_final_ms`` is set and below ``dialog_post_roll_ms``, as for the conversation config."""
    conversation = streaming_config(asr)
    endpoint = dataclasses.replace(
        conversation.endpoint,
        endpoint_silence_ms=asr.dialog_endpoint_silence_ms,
        min_speech_ms=asr.dialog_min_speech_ms,
        post_roll_ms=asr.dialog_post_roll_ms,
    )
    return dataclasses.replace(
        conversation,
        endpoint=endpoint,
        early_final_ms=asr.dialog_early_final_ms,
        final_window_s=asr.dialog_final_window_s,
    )


def decode_defaults(asr: AsrSettings) -> DecodeDefaults:
    """Beam, hot words and the Mandarin prompt for live decoding."""
    return DecodeDefaults(beam_size=asr.live_beam_size, hotwords=tuple(asr.hotwords), zh_prompt=asr.zh_prompt)


def _register_metrics(worker: SpeechWorker, port: int) -> None:
    from prometheus_client import Gauge, start_http_server

    labels = {"worker": str(worker.index)}
    Gauge("voxdesk_speech_lag_ms", "Audio received but not yet processed (ms), worst stream", ["worker"]).labels(
        **labels
    ).set_function(lambda: worker.lag_ms)
    counters = Gauge("voxdesk_speech_worker_total", "Speech worker counters since start", ["worker", "counter"])

    def reader(name: str) -> Callable[[], float]:
        return lambda: float(getattr(worker.stats, name))

    names = ("messages", "malformed", "finals", "partials", "partials_skipped", "errors", "publish_errors")
    for name in (*names, "early_finals", "early_finals_used", "early_finals_wasted"):
        counters.labels(worker=labels["worker"], counter=name).set_function(reader(name))
    start_http_server(port, addr="127.0.0.1")


async def serve(
    settings: Settings, index: int, *, metrics_port: int | None = None, stats_file: Path | None = None
) -> None:
    """Run speech worker ``index`` until SIGTERM/SIGINT (event loop of the main thread). With ``stats_file``, the
    worker's counters are written there as JSON at exit (for ``voxdesk bench calls``). Bad endpointing settings
    raise ``InvalidInputError`` before any model is loaded."""
    streaming, dialog_streaming = streaming_config(settings.asr), dialog_streaming_config(settings.asr)
    recognizer = await asyncio.to_thread(build_recognizer, settings)
    vad_factory = build_vad_factory(settings.asr)
    bus = build_bus(settings.bus)
    await bus.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    def started(worker: SpeechWorker) -> None:
        if metrics_port is not None:
            _register_metrics(worker, metrics_port)

    try:
        stats = await run_speech_worker(
            index,
            endpoint_template=settings.asr.speech_endpoint_template,
            bus=bus,
            recognizer=recognizer,
            vad_factory=vad_factory,
            streaming=streaming,
            dialog_streaming=dialog_streaming,
            decode=decode_defaults(settings.asr),
            stop=stop,
            on_started=started,
            inference_threads=settings.asr.inference_threads,
        )
        log.info("speech worker exiting", worker=index, finals=stats.finals, malformed=stats.malformed)
        if stats_file is not None:
            await asyncio.to_thread(write_stats_file, stats_file, {"index": index, **dataclasses.asdict(stats)})
    finally:
        await bus.aclose()


def main(argv: Sequence[str] | None = None) -> None:
    """Parse ``--index`` / ``--metrics-port`` and serve."""
    parser = argparse.ArgumentParser(prog="voxdesk.speech_main", description="Voxdesk speech worker")
    parser.add_argument("--index", type=int, default=0, help="worker index (selects the PULL endpoint)")
    parser.add_argument("--metrics-port", type=int, default=None, help="serve Prometheus metrics on 127.0.0.1:PORT")
    parser.add_argument("--stats-file", type=Path, default=None, help="write the worker's counters here at exit")
    args = parser.parse_args(argv)
    settings = load_settings()
    configure_logging(settings.logging.level, settings.logging.json_logs, settings.logging.mask_pii)
    asyncio.run(serve(settings, args.index, metrics_port=args.metrics_port, stats_file=args.stats_file))


if __name__ == "__main__":
    main()
