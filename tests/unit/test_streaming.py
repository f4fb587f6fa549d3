"""Streaming transcription and the speech worker, with scripted recogniser and VAD (fast, deterministic)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import zmq
import zmq.asyncio

from asr.base import DecodeOptions, Transcription
from asr.endpointer import EndpointConfig
from asr.media_stream import MediaStream, decode_options
from asr.streaming import StreamingConfig, StreamingTranscriber
from asr.testing import RecognizerCall, ScriptedRecognizer, ScriptedVad
from asr.worker import DecodeDefaults, SpeechWorker, run_speech_worker
from core.audio import alaw_encode, ulaw_encode
from core.errors import AudioFormatError, InvalidInputError
from core.events import Event, FinalTranscript, PartialTranscript, SpeechStarted
from core.ids import CallId
from core.media import AudioChunk, Encoding, StreamEnd, StreamStart, encode_media
from core.testing import RecordingBus

pytestmark = pytest.mark.unit

CALL = CallId("call-1")
ENDPOINT = EndpointConfig(min_speech_ms=200, endpoint_silence_ms=400, max_utterance_ms=10_000, pre_roll_ms=300)
CONFIG = StreamingConfig(endpoint=ENDPOINT, partial_interval_ms=500, max_partial_lag_ms=1_000)


def by_length(call: RecognizerCall) -> str:
    return f"heard {call.audio_ms} ms"


def transcriber(
    speech: list[tuple[int, int]],
    recognizer: ScriptedRecognizer,
    *,
    offset_ms: int = 0,
    config: StreamingConfig = CONFIG,
) -> StreamingTranscriber:
    return StreamingTranscriber(
        CALL, "customer", recognizer, ScriptedVad(speech, frame_ms=20), config=config, offset_ms=offset_ms
    )


def feed_ms(tr: StreamingTranscriber, total_ms: int, chunk_ms: int = 20) -> list[Event]:
    events: list[Event] = []
    for _ in range(total_ms // chunk_ms):
        events += tr.feed(np.zeros(16 * chunk_ms, dtype=np.int16))
    return events


# --- StreamingTranscriber --------------------------------------------------------------------------------------


def test_times_are_ms_from_call_start() -> None:
    rec = ScriptedRecognizer(by_length)
    tr = transcriber(
        [(1_000, 2_500)], rec, offset_ms=5_000, config=StreamingConfig(endpoint=ENDPOINT, partial_interval_ms=0)
    )
    events = feed_ms(tr, 4_000)
    started, final = events
    assert isinstance(started, SpeechStarted) and started.start_ms == 6_000
    assert isinstance(final, FinalTranscript)
    assert (final.start_ms, final.end_ms) == (6_000, 7_500)
    assert final.call_id == CALL and final.leg == "customer" and final.lang == "en" and final.confidence == 0.9
    # recognised audio: 300 ms pre-roll + 1500 ms speech + 300 ms post-roll
    assert rec.calls[-1].audio_ms == 2_100
    assert final.text == "heard 2100 ms"


def test_chunk_size_does_not_change_the_result() -> None:
    def events_for(chunk_ms: int) -> list[tuple[str, int, int]]:
        tr = transcriber([(700, 2_100), (3_000, 3_900)], ScriptedRecognizer(by_length))
        out = feed_ms(tr, 6_000, chunk_ms) + tr.finish()
        kept = [e for e in out if not isinstance(e, PartialTranscript)]  # partials follow the chunking, by design
        return [(type(e).__name__, getattr(e, "start_ms", 0), getattr(e, "end_ms", 0)) for e in kept]

    assert len(events_for(20)) == 4
    assert events_for(20) == events_for(100) == events_for(60)


def test_partial_cadence_and_order() -> None:
    rec = ScriptedRecognizer(by_length)
    tr = transcriber([(1_000, 4_000)], rec)
    events = feed_ms(tr, 5_000)
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "SpeechStarted" and kinds[-1] == "FinalTranscript"
    partials = [e for e in events if isinstance(e, PartialTranscript)]
    assert all(isinstance(e, PartialTranscript) for e in events[1:-1])
    # the start is confirmed at 1200 ms (200 ms of speech); then a partial every 500 ms of audio while speaking,
    # each over the utterance so far from its audio start (700 ms: 300 ms pre-roll)
    ends = [p.end_ms for p in partials]
    assert ends == list(range(1_700, 4_400, 500))
    assert all(p.start_ms == 1_000 for p in partials)
    assert partials[0].text == "heard 1000 ms"
    # partials decode on a fitted encoder window (5 s at least), the final on the model's full window
    assert [c.options for c in rec.calls] == [DecodeOptions(beam_size=1, window_s=5.0)] * len(partials) + [
        DecodeOptions(beam_size=1, window_s=None)
    ]
    assert tr.stats.partials == len(partials) and tr.stats.finals == 1


def test_partials_are_greedy_while_finals_use_the_stream_beam() -> None:
    rec = ScriptedRecognizer(by_length)
    tr = transcriber([(1_000, 3_000)], rec)
    tr.options = DecodeOptions(lang="zh", beam_size=3)
    feed_ms(tr, 4_500)
    *partial_calls, final_call = rec.calls
    assert partial_calls and all(c.options.beam_size == 1 and c.options.window_s == 5.0 for c in partial_calls)
    assert final_call.options.beam_size == 3 and final_call.options.lang == "zh"


def test_duty_cycle_measures_recent_busy_time() -> None:
    from asr.worker_stats import DutyCycle

    duty = DutyCycle(window_s=2.0)
    assert duty.share(10.0) == 0.0
    duty.add(8.5, 9.0)  # 0.5 s busy inside the window
    duty.add(9.5, 10.5)  # running past "now": only the part before now counts
    assert duty.share(10.0) == pytest.approx(1.0 / 2.0)
    duty.add(9.0, 10.0)  # a second thread at the same time: the share can exceed 1 thread's worth
    assert duty.share(10.0) == pytest.approx(2.0 / 2.0)
    assert duty.share(13.0) == pytest.approx(0.0)  # all of it fell out of the window


def test_partial_interval_stretches_to_compute_time() -> None:
    rec = ScriptedRecognizer(by_length, compute_ms=900.0)
    tr = transcriber([(1_000, 5_000)], rec)
    partials = [e for e in feed_ms(tr, 6_000) if isinstance(e, PartialTranscript)]
    gaps = [b.end_ms - a.end_ms for a, b in itertools.pairwise(partials)]
    assert gaps and all(g >= 900 for g in gaps)


def test_partials_off() -> None:
    tr = transcriber(
        [(1_000, 4_000)],
        ScriptedRecognizer(by_length),
        config=StreamingConfig(endpoint=ENDPOINT, partial_interval_ms=0),
    )
    assert not any(isinstance(e, PartialTranscript) for e in feed_ms(tr, 5_000))


def test_backpressure_skips_partials_never_finals_and_reports_lag() -> None:
    rec = ScriptedRecognizer(by_length)
    tr = transcriber([(500, 1_500), (2_500, 4_000), (5_000, 5_600)], rec)
    tr.note_received(60_000)  # upstream is a minute ahead of us
    events = feed_ms(tr, 7_000)
    assert tr.lag_ms == 60_000 - 7_000
    assert not any(isinstance(e, PartialTranscript) for e in events)
    finals = [e for e in events if isinstance(e, FinalTranscript)]
    assert [(f.start_ms, f.end_ms) for f in finals] == [(500, 1_500), (2_500, 4_000), (5_000, 5_600)]
    assert tr.stats.partials_skipped > 0


def test_lag_counts_pending_finals_from_their_endpoint() -> None:
    tr = transcriber([(500, 1_500)], ScriptedRecognizer(by_length))
    for _ in range(150):  # 3 s, phase 1 only
        tr.accept(np.zeros(320, dtype=np.int16))
    assert tr.finals_pending == 1
    assert tr.lag_ms == 3_000 - 1_900  # endpoint decided at 1500 + 400 ms of silence
    final = tr.run_final()
    assert final is not None and tr.lag_ms == 0 and tr.finals_pending == 0
    assert tr.run_final() is None


def test_finish_flushes_the_open_utterance() -> None:
    tr = transcriber(
        [(500, 10_000)], ScriptedRecognizer(by_length), config=StreamingConfig(endpoint=ENDPOINT, partial_interval_ms=0)
    )
    events = feed_ms(tr, 2_000)
    assert [type(e) for e in events] == [SpeechStarted]
    (final,) = tr.finish()
    assert isinstance(final, FinalTranscript) and (final.start_ms, final.end_ms) == (500, 2_000)


def test_empty_text_final_is_still_emitted_and_empty_partials_are_not() -> None:
    tr = transcriber([(500, 2_000)], ScriptedRecognizer(default=""))
    events = feed_ms(tr, 3_000)
    assert [type(e) for e in events] == [SpeechStarted, FinalTranscript]
    assert isinstance(events[1], FinalTranscript) and events[1].text == ""


# --- speculative ("early") finals --------------------------------------------------------------------------------


class AudioKeepingRecognizer(ScriptedRecognizer):
    """A :class:`ScriptedRecognizer` (``by_length``) that also keeps a copy of the audio of every call."""

    def __init__(self) -> None:
        super().__init__(by_length)
        self.audio: list[npt.NDArray[np.int16]] = []

    def transcribe(self, pcm16k: npt.NDArray[np.int16], options: DecodeOptions) -> Transcription:
        self.audio.append(pcm16k.copy())
        return super().transcribe(pcm16k, options)


def feed_ramp(tr: StreamingTranscriber, total_ms: int, chunk_ms: int = 20) -> list[Event]:
    """:func:`feed_ms` with distinct samples (a ramp), so that audio cut at other bounds would differ."""
    events: list[Event] = []
    for i in range(total_ms // chunk_ms):
        start = i * 16 * chunk_ms
        events += tr.feed((np.arange(start, start + 16 * chunk_ms) % 20_000).astype(np.int16))
    return events


FINAL_OPTIONS = DecodeOptions(beam_size=1, window_s=None)


def without_time(events: list[Event]) -> list[dict[str, object]]:
    """The events as data, without their wall-clock ``at`` stamp."""
    return [e.model_dump(exclude={"at"}) for e in events]


@pytest.mark.parametrize("partial_interval_ms", [0, 500])
def test_early_final_gives_the_same_final_from_one_decode(partial_interval_ms: int) -> None:
    def run(early_final_ms: int | None) -> tuple[StreamingTranscriber, AudioKeepingRecognizer, list[Event]]:
        rec = AudioKeepingRecognizer()
        config = StreamingConfig(
            endpoint=ENDPOINT, partial_interval_ms=partial_interval_ms, early_final_ms=early_final_ms
        )
        tr = transcriber([(1_000, 2_500), (4_000, 5_000)], rec, config=config)
        return tr, rec, feed_ramp(tr, 6_000)

    plain_tr, plain_rec, plain = run(None)
    tr, rec, events = run(300)
    assert without_time(events) == without_time(plain)  # the same events (finals and partials), text and times
    finals = [e for e in events if isinstance(e, FinalTranscript)]
    assert [(f.text, f.start_ms, f.end_ms) for f in finals] == [
        ("heard 2100 ms", 1_000, 2_500),
        ("heard 1600 ms", 4_000, 5_000),
    ]
    final_calls = [i for i, c in enumerate(rec.calls) if c.options == FINAL_OPTIONS]
    plain_calls = [i for i, c in enumerate(plain_rec.calls) if c.options == FINAL_OPTIONS]
    assert len(final_calls) == len(plain_calls) == 2  # one decode per final: the speculation was used, not redone
    for mine, theirs in zip(final_calls, plain_calls, strict=True):
        assert np.array_equal(rec.audio[mine], plain_rec.audio[theirs])  # exactly the final's audio
    assert (tr.stats.early_finals, tr.stats.early_finals_used, tr.stats.early_finals_wasted) == (2, 2, 0)
    assert plain_tr.stats.early_finals == 0 and tr.stats.finals == plain_tr.stats.finals == 2


def test_early_final_runs_before_the_endpoint_and_the_final_reuses_it() -> None:
    rec = ScriptedRecognizer(by_length)
    tr = transcriber([(1_000, 2_500)], rec, config=StreamingConfig(endpoint=ENDPOINT, partial_interval_ms=0))
    chunk = np.zeros(320, dtype=np.int16)
    for _ in range(139):  # 2780 ms: 280 ms of silence after the last speech frame
        tr.accept(chunk)
    assert tr.silence_ms == 280 and not tr.early_final_due and not tr.run_early_final()
    tr.accept(chunk)  # 300 ms: the final's audio is decided
    assert tr.early_final_due and tr.finals_pending == 0
    assert tr.run_early_final() and len(rec.calls) == 1
    assert rec.calls[0].options == FINAL_OPTIONS and rec.calls[0].audio_ms == 2_100
    assert not tr.early_final_due and not tr.run_early_final()  # once per utterance as it stands
    for _ in range(5):  # 2900 ms: 400 ms of silence, the endpoint
        tr.accept(chunk)
    assert tr.finals_pending == 1
    final = tr.run_final()
    assert final is not None and final.text == "heard 2100 ms" and (final.start_ms, final.end_ms) == (1_000, 2_500)
    assert len(rec.calls) == 1 and tr.stats.early_finals_used == 1


def test_speech_resuming_wastes_the_speculation_and_the_final_covers_it_all() -> None:
    speech = [(1_000, 2_000), (2_360, 3_000)]  # a 360 ms pause: past the 300 ms speculation, short of the endpoint
    config = StreamingConfig(endpoint=ENDPOINT, partial_interval_ms=0)
    rec = ScriptedRecognizer(by_length)
    tr = transcriber(speech, rec, config=config)
    events = feed_ms(tr, 4_000)
    plain = feed_ms(transcriber(speech, ScriptedRecognizer(by_length), config=replace(config, early_final_ms=0)), 4_000)
    assert without_time(events) == without_time(plain)
    (final,) = [e for e in events if isinstance(e, FinalTranscript)]
    assert (final.start_ms, final.end_ms) == (1_000, 3_000) and final.text == "heard 2600 ms"
    # the speculation at 2300 ms (1600 ms of audio) was wasted; the one at 3300 ms became the final
    assert [c.audio_ms for c in rec.calls] == [1_600, 2_600]
    assert (tr.stats.early_finals, tr.stats.early_finals_used, tr.stats.early_finals_wasted) == (2, 1, 1)


def test_stream_end_after_the_speculation_reuses_it_and_forced_ends_do_not() -> None:
    rec = ScriptedRecognizer(by_length)
    tr = transcriber([(500, 1_500)], rec, config=StreamingConfig(endpoint=ENDPOINT, partial_interval_ms=0))
    feed_ms(tr, 1_860)  # 360 ms of silence: speculated, not endpointed
    (final,) = tr.finish()
    assert isinstance(final, FinalTranscript) and final.text == "heard 1600 ms" and len(rec.calls) == 1
    assert tr.stats.early_finals_used == 1

    # a pause of 320 ms, then speech on until max_utterance_ms (3000 ms) force-ends the utterance
    endpoint = replace(ENDPOINT, max_utterance_ms=3_000)
    rec = ScriptedRecognizer(by_length)
    tr = transcriber(
        [(500, 1_500), (1_820, 5_000)], rec, config=StreamingConfig(endpoint=endpoint, partial_interval_ms=0)
    )
    events = feed_ms(tr, 3_500)
    (final,) = [e for e in events if isinstance(e, FinalTranscript)]
    assert (final.start_ms, final.end_ms) == (500, 3_200)  # forced at 3000 ms of audio (from 200 ms)
    assert [c.audio_ms for c in rec.calls] == [1_600, 3_000]  # the forced final was decoded, not the speculation
    assert (tr.stats.early_finals_used, tr.stats.early_finals_wasted) == (0, 1)


def test_early_final_ms_must_cover_the_post_roll() -> None:
    with pytest.raises(InvalidInputError):
        StreamingConfig(endpoint=ENDPOINT, early_final_ms=200)  # the post-roll (300 ms) is not decided yet
    assert StreamingConfig(endpoint=replace(ENDPOINT, post_roll_ms=200), early_final_ms=200).early_final_ms == 200
    for off in (None, 0):
        tr = transcriber([(500, 1_500)], ScriptedRecognizer(by_length), config=StreamingConfig(early_final_ms=off))
        feed_ms(tr, 3_000)
        assert tr.stats.early_finals == 0 and tr.stats.finals == 1


def test_engine_final_waits_for_the_speculation_and_reuses_it() -> None:
    from asr.engine import SpeechEngine
    from asr.worker_stats import SpeechWorkerStats

    rec = ScriptedRecognizer(by_length, delay_s=0.2)  # a slow pass: the endpoint arrives while it runs
    emitted: list[Event] = []
    stats = SpeechWorkerStats()
    engine = SpeechEngine(
        recognizer=rec,
        vad_factory=lambda: ScriptedVad([(1_000, 2_000)], frame_ms=20),
        streaming=StreamingConfig(endpoint=ENDPOINT, partial_interval_ms=0),
        decode=DecodeDefaults(),
        stats=stats,
        emit=emitted.extend,
        received={},
        inference_threads=2,
    )
    silence = ulaw_encode(np.zeros(160, dtype=np.int16))
    audio = [AudioChunk("call-e", "customer", i, 20 * i, silence) for i in range(150)]
    engine.start()
    try:
        engine.put(StreamStart("call-e", "customer", "pcmu", 8_000))
        for chunk in audio[:117]:  # 2340 ms: 340 ms of silence, an early final is due
            engine.put(chunk)
        deadline = time.monotonic() + 10.0
        while not rec.calls and time.monotonic() < deadline:
            time.sleep(0.005)
        assert rec.calls, "no speculative final started"
        for chunk in audio[117:]:
            engine.put(chunk)
        engine.put(StreamEnd("call-e", "customer"))
    finally:
        engine.stop()
    assert [type(e) for e in emitted] == [SpeechStarted, FinalTranscript]
    final = emitted[1]
    assert isinstance(final, FinalTranscript) and (final.start_ms, final.end_ms) == (1_000, 2_000)
    assert final.text == "heard 1600 ms" and len(rec.calls) == 1
    assert (stats.early_finals, stats.early_finals_used, stats.early_finals_wasted, stats.finals) == (1, 1, 0, 1)
    assert len(stats.early_final_decode_ms) == 1 and not stats.final_decode_ms and stats.errors == 0


def test_scripted_vad_probabilities() -> None:
    vad = ScriptedVad(probabilities=[0.1, 0.7], frame_ms=10)
    frame = np.zeros(160, dtype=np.int16)
    assert [vad.is_speech(frame) for _ in range(3)] == [0.1, 0.7, 0.05]
    vad.reset()
    assert vad.is_speech(frame) == 0.1


# --- SpeechWorker (real ZeroMQ over ipc, scripted models) ------------------------------------------------------


def chunks(call_id: str, total_ms: int, start_ms: int = 0) -> list[list[bytes]]:
    silence = ulaw_encode(np.zeros(160, dtype=np.int16))  # 20 ms at 8 kHz
    return [encode_media(AudioChunk(call_id, "customer", i, start_ms + 20 * i, silence)) for i in range(total_ms // 20)]


async def wait_for(predicate: Callable[[], object], timeout_s: float = 10.0) -> None:
    """Poll ``predicate`` every 10 ms until it is true (the worker's counters have no event to wait on)."""
    async with asyncio.timeout(timeout_s):
        for _ in itertools.count():
            if predicate():
                return
            await asyncio.sleep(0.01)


async def push(endpoint: str, messages: list[list[bytes]], pace_s: float = 0.0) -> None:
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 2000)
    sock.connect(endpoint)
    for frames in messages:
        await sock.send_multipart(frames)
        if pace_s:
            await asyncio.sleep(pace_s)
    sock.close()
    ctx.term()


def worker(
    tmp_path: Path, bus: RecordingBus, rec: ScriptedRecognizer, speech: list[tuple[int, int]], idle_s: float = 60.0
) -> SpeechWorker:
    return SpeechWorker(
        f"ipc://{tmp_path}/run/speech-0.sock",
        bus=bus,
        recognizer=rec,
        vad_factory=lambda: ScriptedVad(speech, frame_ms=20),
        streaming=CONFIG,
        decode=DecodeDefaults(hotwords=("信用卡",), zh_prompt="以下是普通话的句子。"),
        stream_idle_timeout_s=idle_s,
    )


async def test_worker_transcribes_streams_and_survives_malformed_messages(tmp_path: Path) -> None:
    bus = RecordingBus()
    rec = ScriptedRecognizer(by_length)
    w = worker(tmp_path, bus, rec, [(1_000, 2_000)])
    await w.start()
    try:
        start = StreamStart("call-9", "customer", "pcmu", 8_000, lang="zh", started_at_ms=1)
        messages = [[b"X", b"junk"], [b"A", b"\x01"], encode_media(start)]
        messages += chunks("call-9", 3_000, start_ms=40_000)
        messages += [encode_media(StreamEnd("call-9", "customer"))]
        await push(w.endpoint, messages, pace_s=0.004)  # 5x real time: the worker keeps up, partials flow
        await wait_for(lambda: bus.events("speech.final"))
    finally:
        await w.aclose()
    kinds = bus.kinds()
    assert kinds[0] == "speech.started" and kinds[-1] == "speech.final" and "speech.partial" in kinds
    (started,) = bus.events("speech.started")
    (final,) = bus.events("speech.final")
    assert isinstance(started, SpeechStarted) and started.start_ms == 41_000
    assert isinstance(final, FinalTranscript) and (final.start_ms, final.end_ms) == (41_000, 42_000)
    assert w.stats.malformed == 2 and w.stats.finals == 1 and w.stats.errors == 0
    # zh stream without its own prompt: the worker's zh prompt and hot words, beam 1
    assert rec.calls[-1].options == DecodeOptions(
        lang="zh", prompt="以下是普通话的句子。", beam_size=1, hotwords=("信用卡",), timestamps=False,
        max_tokens_per_s=15.0,
    )  # fmt: skip


async def test_worker_under_backpressure_keeps_every_final(tmp_path: Path) -> None:
    bus = RecordingBus()
    speech = [(500, 1_500), (2_500, 3_500), (4_500, 5_500), (6_500, 8_500)]
    rec = ScriptedRecognizer(by_length, delay_s=0.15)  # slow model; 10 s of audio arrives in a burst
    w = worker(tmp_path, bus, rec, speech)
    await w.start()
    lags: list[int] = []
    try:
        messages = [encode_media(StreamStart("call-b", "customer", "pcmu", 8_000, lang="en"))]
        messages += chunks("call-b", 10_000)
        await push(w.endpoint, messages)
        await wait_for(lambda: w.stats.messages == len(messages))
        lags.append(w.lag_ms)
        await push(w.endpoint, [encode_media(StreamEnd("call-b", "customer"))])
        await wait_for(lambda: len(bus.events("speech.final")) == 4)
    finally:
        await w.aclose()
    finals = [e for e in bus.events("speech.final") if isinstance(e, FinalTranscript)]
    assert [(f.start_ms, f.end_ms) for f in finals] == speech
    assert max(lags) > 1_000
    assert w.stats.partials_skipped > 0
    assert w.lag_ms == 0


async def test_worker_recognition_failure_is_logged_and_survived(tmp_path: Path) -> None:
    bus = RecordingBus()
    rec = ScriptedRecognizer(by_length, fail_on=range(0, 100))
    w = worker(tmp_path, bus, rec, [(500, 1_000), (2_000, 2_500)])
    await w.start()
    try:
        messages = [encode_media(StreamStart("call-f", "customer", "pcmu", 8_000))]
        messages += [*chunks("call-f", 3500), encode_media(StreamEnd("call-f", "customer"))]
        await push(w.endpoint, messages)
        await wait_for(lambda: w.stats.errors >= 2)
        rec.fail_on = frozenset()
        await push(w.endpoint, [encode_media(StreamStart("call-g", "customer", "pcmu", 8000)), *chunks("call-g", 1500)])
        await wait_for(lambda: bus.events("speech.final"))
    finally:
        await w.aclose()
    assert w.stats.errors >= 2


async def test_run_speech_worker_finishes_open_streams_on_stop(tmp_path: Path) -> None:
    bus = RecordingBus()
    stop = asyncio.Event()
    started: list[SpeechWorker] = []
    task = asyncio.create_task(
        run_speech_worker(
            3,
            endpoint_template=f"ipc://{tmp_path}/speech-{{index}}.sock",
            bus=bus,
            recognizer=ScriptedRecognizer(by_length),
            vad_factory=lambda: ScriptedVad([(200, 5_000)], frame_ms=20),
            streaming=CONFIG,
            stop=stop,
            on_started=started.append,
        )
    )
    await wait_for(lambda: started)
    assert started[0].endpoint.endswith("speech-3.sock")
    messages = [encode_media(StreamStart("call-s", "customer", "pcmu", 8000)), *chunks("call-s", 1000)]
    await push(started[0].endpoint, messages)
    await wait_for(lambda: started[0].stats.messages == len(messages) and bus.events("speech.started"))
    stop.set()
    stats = await task
    (final,) = bus.events("speech.final")
    assert isinstance(final, FinalTranscript) and final.start_ms == 200
    assert stats.finals == 1


async def test_worker_ends_streams_whose_media_went_silent(tmp_path: Path) -> None:
    bus = RecordingBus()
    w = worker(tmp_path, bus, ScriptedRecognizer(by_length), [(200, 5_000)], idle_s=0.3)
    await w.start()
    try:  # no StreamEnd: the media worker died mid-utterance
        await push(
            w.endpoint, [encode_media(StreamStart("call-x", "customer", "pcmu", 8_000)), *chunks("call-x", 1_000)]
        )
        await wait_for(lambda: bus.events("speech.final"))
    finally:
        await w.aclose()
    (final,) = bus.events("speech.final")
    assert isinstance(final, FinalTranscript) and (final.start_ms, final.end_ms) == (200, 1_000)
    assert w.stats.streams_expired == 1 and w.lag_ms == 0


# --- MediaStream: codecs, rates, lost packets ------------------------------------------------------------------


def media_stream(start: StreamStart, speech: list[tuple[int, int]], rec: ScriptedRecognizer) -> MediaStream:
    return MediaStream(
        start,
        recognizer=rec,
        vad_factory=lambda: ScriptedVad(speech, frame_ms=20),
        config=StreamingConfig(endpoint=ENDPOINT, partial_interval_ms=0),
        defaults=DecodeDefaults(),
    )


def run_media(stream: MediaStream, chunks_: list[AudioChunk]) -> list[Event]:
    events: list[Event] = []
    for chunk in chunks_:
        events += stream.audio(chunk)
    events += stream.end()
    assert stream.transcriber is not None
    while stream.transcriber.finals_pending:
        final = stream.transcriber.run_final()
        assert final is not None
        events.append(final)
    return events


@pytest.mark.parametrize(
    ("encoding", "rate", "silence"),
    [
        ("pcmu", 8_000, ulaw_encode(np.zeros(160, dtype=np.int16))),
        ("pcma", 8_000, alaw_encode(np.zeros(160, dtype=np.int16))),
        ("l16", 16_000, np.zeros(320, dtype="<i2").tobytes()),
        ("l16", 8_000, np.zeros(160, dtype="<i2").tobytes()),
    ],
)
def test_media_stream_codecs_and_rates(encoding: Encoding, rate: int, silence: bytes) -> None:
    rec = ScriptedRecognizer(by_length)
    stream = media_stream(StreamStart("c", "agent", encoding, rate, lang="en"), [(500, 1_500)], rec)
    events = run_media(stream, [AudioChunk("c", "agent", i, 2_000 + 20 * i, silence) for i in range(150)])
    final = events[-1]
    assert isinstance(final, FinalTranscript) and final.leg == "agent"
    assert (final.start_ms, final.end_ms) == (2_500, 3_500)
    assert rec.calls[-1].audio_ms == 1_600  # 300 ms pre-roll + 1000 ms + 300 ms post-roll, all at 16 kHz


def test_media_stream_fills_lost_packets_with_silence() -> None:
    rec = ScriptedRecognizer(by_length)
    stream = media_stream(StreamStart("c", "customer", "pcmu", 8_000), [(1_000, 2_000)], rec)
    silence = ulaw_encode(np.zeros(160, dtype=np.int16))
    kept = [AudioChunk("c", "customer", i, 20 * i, silence) for i in range(150) if not 20 <= i < 30]  # 200 ms lost
    events = run_media(stream, kept)
    final = events[-1]
    assert isinstance(final, FinalTranscript) and (final.start_ms, final.end_ms) == (1_000, 2_000)
    assert stream.transcriber is not None and stream.transcriber.accepted_ms == 3_000


def test_media_stream_zh_prompt_and_odd_l16_payload() -> None:
    defaults = DecodeDefaults(beam_size=1, hotwords=("理财",), zh_prompt="以下是普通话的句子。")
    assert (
        decode_options(StreamStart("c", "customer", "pcmu", 8_000, lang="zh"), defaults).prompt
        == "以下是普通话的句子。"
    )
    own = StreamStart("c", "customer", "pcmu", 8_000, lang="zh", prompt="信用卡")
    assert decode_options(own, defaults) == DecodeOptions(
        lang="zh", prompt="信用卡", beam_size=1, hotwords=("理财",), timestamps=False, max_tokens_per_s=15.0
    )
    assert decode_options(StreamStart("c", "customer", "pcmu", 8_000, lang="en"), defaults).prompt is None
    stream = media_stream(StreamStart("c", "customer", "l16", 16_000), [], ScriptedRecognizer())
    with pytest.raises(AudioFormatError):
        stream.audio(AudioChunk("c", "customer", 0, 0, b"\x00\x01\x02"))


# --- voxdesk.speech_main wiring (no models) --------------------------------------------------------------------


def test_speech_main_settings_mapping_and_language_routing() -> None:
    from voxdesk.settings import AsrSettings
    from voxdesk.speech_main import LanguageRoutedRecognizer, build_vad_factory, decode_defaults, streaming_config

    asr = AsrSettings(vad_threshold=0.4, endpoint_silence_ms=700, min_speech_ms=200, partial_interval_ms=0)
    config = streaming_config(asr)
    assert (config.endpoint.threshold, config.endpoint.endpoint_silence_ms, config.endpoint.min_speech_ms) == (
        0.4,
        700,
        200,
    )
    assert config.partial_interval_ms == 0 and config.endpoint.max_utterance_ms == asr.max_utterance_ms
    assert (config.partial_budget, config.partial_window_s, config.final_window_s) == (0.5, 5.0, 10.0)
    assert config.early_final_ms == asr.early_final_ms == 300
    assert streaming_config(AsrSettings(early_final_ms=None)).early_final_ms is None
    defaults = decode_defaults(asr)
    assert (
        defaults.beam_size == asr.live_beam_size == 3
        and defaults.zh_prompt == asr.zh_prompt
        and "信用卡" in defaults.hotwords
    )
    assert build_vad_factory(AsrSettings(vad="webrtc"))().frame_ms == 20

    multi, english = ScriptedRecognizer(default="多"), ScriptedRecognizer(default="en")
    routed = LanguageRoutedRecognizer(multi, english)
    audio = np.zeros(1_600, dtype=np.int16)
    assert routed.transcribe(audio, DecodeOptions(lang="en")).text == "en"
    assert routed.transcribe(audio, DecodeOptions(lang="zh")).text == "多"
    assert routed.transcribe(audio, DecodeOptions(lang="auto")).text == "多"


def test_partials_that_loop_are_not_emitted() -> None:
    rec = ScriptedRecognizer(lambda call: "账单" * 30 if call.audio_ms < 2_000 else "我想查一下账单")
    tr = transcriber([(1_000, 4_000)], rec)
    events = feed_ms(tr, 5_000)
    texts = [e.text for e in events if isinstance(e, PartialTranscript | FinalTranscript)]
    assert texts and all(t == "我想查一下账单" for t in texts)


def test_no_partial_in_a_pause_that_would_delay_the_speculative_final() -> None:
    """After 100 ms of silence, a partial whose pass (its last compute time) would still run when the speculative
    final is due (300 ms of silence) is not started; with speculation off, the same pause gets partials."""

    def pause_passes(early_final_ms: int | None) -> int:
        config = replace(CONFIG, partial_interval_ms=200, early_final_ms=early_final_ms)
        tr = transcriber([(1_000, 3_000)], ScriptedRecognizer(by_length, compute_ms=250.0), config=config)
        feed_ms(tr, 3_100)  # speech, then 100 ms of silence
        assert tr.stats.partial_passes > 0
        before = tr.stats.partial_passes
        feed_ms(tr, 200)  # silence 100-300 ms: the speculative final is due at its end
        return tr.stats.partial_passes - before

    assert pause_passes(300) == 0
    assert pause_passes(None) >= 1


def test_live_token_cap_bounds_a_decoding_loop() -> None:
    from asr.backends.faster_whisper import _token_cap

    assert _token_cap(16_000 * 4, None) is None  # batch: no cap
    assert _token_cap(16_000 * 4, 15.0) == 16 + 60  # 4 s of audio: at most 76 tokens
    assert _token_cap(16_000 * 60, 15.0) == 220  # never beyond what fits after Whisper's prompt
