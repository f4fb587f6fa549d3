"""Dialog endpointing: streams talking to the voice bot (``StreamStart.dialog``) use their own StreamingConfig.

The engine tests feed 16 kHz L16 (no resampler), so the scripted VAD's frames line up with call time exactly.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zmq
import zmq.asyncio

from asr.engine import SpeechEngine
from asr.media_stream import DecodeDefaults
from asr.streaming import StreamingConfig
from asr.testing import RecognizerCall, ScriptedRecognizer, ScriptedVad
from asr.worker import SpeechWorker, run_speech_worker
from asr.worker_stats import SpeechWorkerStats
from core.errors import InvalidInputError
from core.events import Event, FinalTranscript, SpeechStarted
from core.media import AudioChunk, StreamEnd, StreamStart, encode_media
from core.testing import RecordingBus
from voxdesk.settings import AsrSettings, Settings
from voxdesk.speech_main import dialog_streaming_config, serve, streaming_config

pytestmark = pytest.mark.unit

SETTINGS = AsrSettings(partial_interval_ms=0)  # no partials: only SpeechStarted and finals come out
CONVERSATION = streaming_config(SETTINGS)
DIALOG = dialog_streaming_config(SETTINGS)
BOT_CALL, PEOPLE_CALL = "call-bot", "call-people"
SILENCE_20MS = np.zeros(320, dtype="<i2").tobytes()  # 20 ms of L16 at 16 kHz


def by_length(call: RecognizerCall) -> str:
    return f"heard {call.audio_ms} ms"


def wait_until(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll ``predicate`` every 5 ms (the engine's threads have no event to wait on)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


class TwoStreams:
    """One engine, a dialog stream (``BOT_CALL``) and a conversation stream (``PEOPLE_CALL``) with the same VAD
    timeline, fed in step 20 ms at a time."""

    def __init__(self, speech: list[tuple[int, int]]) -> None:
        self.emitted: list[Event] = []
        self.stats = SpeechWorkerStats()
        self.engine = SpeechEngine(
            recognizer=ScriptedRecognizer(by_length),
            vad_factory=lambda: ScriptedVad(speech, frame_ms=20),
            streaming=CONVERSATION,
            dialog_streaming=DIALOG,
            decode=DecodeDefaults(),
            stats=self.stats,
            emit=self.emitted.extend,
            received={},
        )
        self.fed_ms = 0

    def __enter__(self) -> TwoStreams:
        self.engine.start()
        self.engine.put(StreamStart(BOT_CALL, "customer", "l16", 16_000, dialog=True))
        self.engine.put(StreamStart(PEOPLE_CALL, "customer", "l16", 16_000))
        return self

    def __exit__(self, *exc: object) -> None:
        self.engine.stop()

    def feed_to(self, end_ms: int) -> None:
        """Feed both streams up to call time ``end_ms`` (ms) and wait until the engine has processed all of it."""
        for i in range(self.fed_ms // 20, end_ms // 20):
            for call_id in (BOT_CALL, PEOPLE_CALL):
                self.engine.put(AudioChunk(call_id, "customer", i, 20 * i, SILENCE_20MS))
        self.fed_ms = end_ms
        processed = self.engine.processed  # VAD'd, and every endpointed final up to there recognised
        wait_until(lambda: all(processed.get((c, "customer"), 0) >= end_ms for c in (BOT_CALL, PEOPLE_CALL)))

    def end(self) -> None:
        for call_id in (BOT_CALL, PEOPLE_CALL):
            self.engine.put(StreamEnd(call_id, "customer"))

    def events(self, call_id: str, kind: type[Event]) -> list[Event]:
        return [e for e in tuple(self.emitted) if isinstance(e, kind) and getattr(e, "call_id", None) == call_id]


def test_settings_defaults_give_a_shorter_dialog_endpoint() -> None:
    assert (CONVERSATION.endpoint.endpoint_silence_ms, CONVERSATION.endpoint.min_speech_ms) == (600, 250)
    assert (DIALOG.endpoint.endpoint_silence_ms, DIALOG.endpoint.min_speech_ms) == (400, 80)


def test_dialog_stream_ends_its_utterance_after_the_dialog_silence_conversation_waits_600_ms() -> None:
    with TwoStreams([(1_000, 2_000)]) as streams:  # speech ends at 2000 ms
        streams.feed_to(2_380)  # 380 ms of silence: nobody has ended yet
        assert not streams.events(BOT_CALL, FinalTranscript) and not streams.events(PEOPLE_CALL, FinalTranscript)
        streams.feed_to(2_400)  # 400 ms: the dialog endpoint
        wait_until(lambda: bool(streams.events(BOT_CALL, FinalTranscript)))
        streams.feed_to(2_580)  # 580 ms: the conversation stream still waits
        time.sleep(0.05)  # a final, were one endpointed, would be emitted by now (the recogniser takes no time)
        assert not streams.events(PEOPLE_CALL, FinalTranscript)
        streams.feed_to(2_600)  # 600 ms: the conversation endpoint, no StreamEnd needed
        wait_until(lambda: bool(streams.events(PEOPLE_CALL, FinalTranscript)))
        streams.end()
    for call_id in (BOT_CALL, PEOPLE_CALL):
        assert [type(e) for e in streams.emitted if getattr(e, "call_id", None) == call_id] == [
            SpeechStarted,
            FinalTranscript,
        ]
    (bot,) = streams.events(BOT_CALL, FinalTranscript)
    (people,) = streams.events(PEOPLE_CALL, FinalTranscript)
    assert isinstance(bot, FinalTranscript) and isinstance(people, FinalTranscript)
    assert (bot.start_ms, bot.end_ms) == (people.start_ms, people.end_ms) == (1_000, 2_000)
    # 500 ms pre-roll + 1000 ms of speech + the post-roll: 200 ms on the dialog leg, 300 ms on the other
    assert (bot.text, people.text) == ("heard 1700 ms", "heard 1800 ms")
    assert streams.stats.errors == 0


def test_a_150_ms_burst_starts_an_utterance_only_on_the_dialog_stream() -> None:
    with TwoStreams([(1_000, 1_150)]) as streams:  # a short "wait" / barge-in: 140 ms of speech frames
        streams.feed_to(1_200)
        wait_until(lambda: bool(streams.events(BOT_CALL, SpeechStarted)))
        streams.feed_to(2_500)
        streams.end()
    (started,) = streams.events(BOT_CALL, SpeechStarted)
    assert isinstance(started, SpeechStarted) and started.start_ms == 1_000
    assert len(streams.events(BOT_CALL, FinalTranscript)) == 1
    assert not [e for e in streams.emitted if getattr(e, "call_id", None) == PEOPLE_CALL]


def test_without_a_dialog_config_dialog_streams_use_the_conversation_one() -> None:
    emitted: list[Event] = []
    engine = SpeechEngine(
        recognizer=ScriptedRecognizer(by_length),
        vad_factory=lambda: ScriptedVad([(1_000, 1_150)], frame_ms=20),
        streaming=CONVERSATION,
        decode=DecodeDefaults(),
        stats=SpeechWorkerStats(),
        emit=emitted.extend,
        received={},
    )
    engine.start()
    try:
        engine.put(StreamStart(BOT_CALL, "customer", "l16", 16_000, dialog=True))
        for i in range(100):
            engine.put(AudioChunk(BOT_CALL, "customer", i, 20 * i, SILENCE_20MS))
        engine.put(StreamEnd(BOT_CALL, "customer"))
    finally:
        engine.stop()
    assert emitted == []  # 140 ms is below the conversation's 250 ms minimum speech


# --- the speech worker over ZeroMQ: StreamStart.dialog crosses the wire ---------------------------------------


async def wait_for(predicate: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Poll ``predicate`` every 10 ms until it is true, for at most ``timeout_s`` (s)."""
    async with asyncio.timeout(timeout_s):
        for _ in itertools.count():
            if predicate():
                return
            await asyncio.sleep(0.01)


async def push(endpoint: str, messages: list[list[bytes]]) -> None:
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 2000)
    sock.connect(endpoint)
    for frames in messages:
        await sock.send_multipart(frames)
    sock.close()
    ctx.term()


async def test_run_speech_worker_passes_the_dialog_config_to_its_engine(tmp_path: Path) -> None:
    bus = RecordingBus()
    stop = asyncio.Event()
    started: list[SpeechWorker] = []
    task = asyncio.create_task(
        run_speech_worker(
            0,
            endpoint_template=f"ipc://{tmp_path}/speech-{{index}}.sock",
            bus=bus,
            recognizer=ScriptedRecognizer(by_length),
            vad_factory=lambda: ScriptedVad([(1_000, 1_150)], frame_ms=20),
            streaming=CONVERSATION,
            dialog_streaming=DIALOG,
            stop=stop,
            on_started=started.append,
        )
    )
    await wait_for(lambda: bool(started))
    endpoint = started[0].endpoint
    messages: list[list[bytes]] = []
    for call_id, dialog in ((BOT_CALL, True), (PEOPLE_CALL, False)):
        messages.append(encode_media(StreamStart(call_id, "customer", "l16", 16_000, dialog=dialog)))
        messages += [encode_media(AudioChunk(call_id, "customer", i, 20 * i, SILENCE_20MS)) for i in range(100)]
        messages.append(encode_media(StreamEnd(call_id, "customer")))
    await push(endpoint, messages)
    await wait_for(lambda: bool(bus.events("speech.final")))
    stop.set()
    stats = await task
    assert [getattr(e, "call_id", None) for e in bus.events("speech.started")] == [BOT_CALL]
    assert stats.streams_started == 2 and stats.finals == 1


# --- voxdesk.speech_main -----------------------------------------------------------------------------------------


def test_dialog_config_carries_the_dialog_settings_and_keeps_the_rest() -> None:
    asr = AsrSettings(
        vad_threshold=0.45,
        endpoint_silence_ms=700,
        min_speech_ms=300,
        partial_interval_ms=300,
        dialog_endpoint_silence_ms=450,
        dialog_min_speech_ms=100,
        dialog_post_roll_ms=250,
        dialog_early_final_ms=260,
    )
    conversation, dialog = streaming_config(asr), dialog_streaming_config(asr)
    ep = dialog.endpoint
    assert (ep.endpoint_silence_ms, ep.min_speech_ms, ep.post_roll_ms, dialog.early_final_ms) == (450, 100, 250, 260)
    assert (conversation.endpoint.endpoint_silence_ms, conversation.endpoint.min_speech_ms) == (700, 300)
    assert (conversation.endpoint.post_roll_ms, conversation.early_final_ms) == (300, 300)
    assert (ep.threshold, ep.max_utterance_ms, ep.pre_roll_ms, ep.start_gap_ms) == (
        conversation.endpoint.threshold,
        conversation.endpoint.max_utterance_ms,
        conversation.endpoint.pre_roll_ms,
        conversation.endpoint.start_gap_ms,
    )
    assert ep.threshold == 0.45
    for name in ("partial_interval_ms", "max_partial_lag_ms", "partial_window_s", "partial_budget"):
        assert getattr(dialog, name) == getattr(conversation, name), name
    assert (dialog.final_window_s, conversation.final_window_s) == (5.0, asr.live_final_window_s)
    assert dialog_streaming_config(AsrSettings(dialog_early_final_ms=None)).early_final_ms is None
    assert dialog_streaming_config(AsrSettings(dialog_early_final_ms=0)).early_final_ms == 0


def test_a_dialog_early_final_below_its_post_roll_is_refused() -> None:
    bad = AsrSettings(dialog_post_roll_ms=300, dialog_early_final_ms=200)
    assert streaming_config(bad).early_final_ms == 300  # the conversation config is fine
    with pytest.raises(InvalidInputError):
        dialog_streaming_config(bad)
    assert isinstance(
        dialog_streaming_config(AsrSettings(dialog_post_roll_ms=200, dialog_early_final_ms=200)), StreamingConfig
    )


def test_speech_worker_refuses_to_start_with_a_bad_dialog_config(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_model(settings: Settings) -> None:
        raise AssertionError("the model must not be loaded when the settings are refused")

    monkeypatch.setattr("voxdesk.speech_main.build_recognizer", no_model)
    settings = Settings(asr=AsrSettings(dialog_post_roll_ms=300, dialog_early_final_ms=200))
    with pytest.raises(InvalidInputError):
        asyncio.run(serve(settings, 0))
