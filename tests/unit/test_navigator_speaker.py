"""The navigator's speaker (cached fixed prompts, sentence streaming off the event loop, the pre-recorded fallback,
warming) and the ZeroMQ play sink, with the tone synthesizer and a local socket."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import zmq

import agent.navigator.speaker as speaker_module
from agent.navigator import load_flows, shipped_flow_paths
from agent.navigator.handoff import BUILTIN_PROMPTS
from agent.navigator.play_client import ZmqPlaySink
from agent.navigator.speaker import NavigatorSpeaker, playable_scripts
from agent.navigator.testing import InlineExecutor, demo_questions
from agent.testing import ToneSynthesizer, answer_scripts
from agent.tts.cache import PromptCache
from agent.tts.voices import LanguageVoice, PrerecordedPrompts, VoiceSet
from core.audio import AudioClip, write_audio
from core.media import PlayAudio, PlayControl, decode_play

pytestmark = pytest.mark.unit

PROMPT = "Welcome to Voxdesk Bank. This call is recorded."


class GatedSynthesizer(ToneSynthesizer):
    """A tone voice whose second sentence waits until :attr:`gate` is set (inference still running)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def synthesize_sentences(self, text: str) -> Iterator[AudioClip]:
        for i, clip in enumerate(super().synthesize_sentences(text)):
            yield clip
            if i == 0:
                assert self.gate.wait(5)


def _speaker(tmp_path: Path, synth: ToneSynthesizer, **kwargs: object) -> NavigatorSpeaker:
    voices = VoiceSet({"en": LanguageVoice("en", synth, "tone", None)})
    cache = PromptCache(synth, "tone-en", tmp_path / "cache")
    return NavigatorSpeaker(voices, {"en": cache}, **kwargs)  # type: ignore[arg-type]


async def _all(speaker: NavigatorSpeaker, text: str, **kwargs: object) -> list[bytes]:
    return [chunk async for chunk in speaker.chunks("en", text, **kwargs)]  # type: ignore[arg-type]


async def test_fixed_prompt_is_rendered_once_then_read_from_the_cache(tmp_path: Path) -> None:
    synth = ToneSynthesizer()
    speaker = _speaker(tmp_path, synth, executor=InlineExecutor(), chunk_ms=200)
    first = await _all(speaker, PROMPT, fixed=True)
    second = await _all(speaker, PROMPT, fixed=True)
    assert first == second and synth.calls == [PROMPT]  # the second render was a cache hit
    assert speaker.caches["en"].renders == 1 and PROMPT in speaker.caches["en"]
    assert all(len(c) == 10 * 320 for c in first[:-1]) and len(first[-1]) % 320 == 0  # 200 ms chunks, 8 kHz L16
    assert speaker.source("en", fixed=True, audio_key="greeting") == "cache"
    assert speaker.source("en", fixed=False, audio_key=None) == "stream"


async def test_first_sentence_is_sent_before_the_second_is_synthesised(tmp_path: Path) -> None:
    synth = GatedSynthesizer()
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        speaker = _speaker(tmp_path, synth, executor=pool)
        chunks = speaker.chunks("en", "Your balance is 1,234 yuan. Anything else today?")
        first = await asyncio.wait_for(anext(chunks), 5)  # the loop is free while the pool synthesises
        assert synth.sentences == ["Your balance is 1,234 yuan."] and len(first) % 320 == 0
        synth.gate.set()
        rest = [chunk async for chunk in chunks]
        assert synth.sentences[-1] == "Anything else today?" and rest
        assert not speaker.caches["en"].renders  # a dynamic text is never cached
    finally:
        pool.shutdown(wait=True)


class LogRecorder:
    """Stands in for a module's structlog logger: keeps ``(level, message, fields)``."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, object]]] = []

    def __getattr__(self, level: str) -> Callable[..., None]:
        def record(message: str, **fields: object) -> None:
            self.records.append((level, message, fields))

        return record


async def test_language_without_voice_uses_its_recording_or_logs_and_skips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged = LogRecorder()
    monkeypatch.setattr(speaker_module, "log", logged)
    folder = tmp_path / "zh-prompts"
    folder.mkdir()
    write_audio(folder / "disclosure.wav", AudioClip(np.full(16_000, 300, dtype=np.int16), 16_000, 1))
    voices = VoiceSet({"zh": LanguageVoice("zh", None, None, PrerecordedPrompts(folder))})
    speaker = NavigatorSpeaker(voices, executor=InlineExecutor())
    recorded = [c async for c in speaker.chunks("zh", "您好，本次通话将被录音。", fixed=True, audio_key="disclosure")]
    assert sum(len(c) for c in recorded) == 8_000 * 2  # one second at the 8 kHz call rate
    secret = "您尾号4321的卡片已挂失成功"
    assert [c async for c in speaker.chunks("zh", secret)] == []
    assert [c async for c in speaker.chunks("en", "Hello there.")] == []  # no voice, no recordings at all
    assert speaker.unspeakable == 2
    assert [(level, fields["lang"]) for level, message, fields in logged.records if "cannot be spoken" in message] == [
        ("warning", "zh"),
        ("warning", "en"),
    ]
    assert "4321" not in repr(logged.records) and "Hello there" not in repr(logged.records)  # never the text


def test_warm_renders_every_fixed_prompt_and_playable_answer(tmp_path: Path) -> None:
    flows = load_flows(shipped_flow_paths())
    questions = demo_questions()
    assert playable_scripts(flows, questions) == ["ans.activate"]
    synth = ToneSynthesizer(base_ms=20.0, ms_per_char=0.5)
    speaker = _speaker(tmp_path, synth, executor=InlineExecutor())
    fixed = speaker.fixed_texts(flows, "en")
    assert BUILTIN_PROMPTS["no_agent_free"].en in fixed and all("{" not in t for t in fixed)
    assert flows.prompts["disclosure"].en in fixed and flows.prompts["confirm_intent"].en not in fixed
    rendered = speaker.warm(flows, questions=questions, scripts=answer_scripts(questions.values()))
    assert rendered == {"en": len(fixed) + 1}  # the prompts and the activation answer
    assert "Answer: How do I activate my card?" in speaker.caches["en"]
    assert speaker.warm(flows, questions=questions, scripts=answer_scripts(questions.values())) == {"en": 0}


def test_zmq_play_sink_sends_to_the_workers_endpoint_and_counts_drops(tmp_path: Path) -> None:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    pull = context.socket(zmq.PULL)
    template = f"ipc://{tmp_path}/play-{{index}}.sock"
    pull.bind(template.format(index=1))
    sink = ZmqPlaySink(template, workers=2, context=context)
    try:
        sink.send(1, PlayAudio("c1", 3, b"\x01\x00" * 160, 8000, interruptible=False, last=True))
        sink.send(1, PlayControl("c1", "stop"))
        sink.send(5, PlayControl("c1", "stop"))  # no such worker
        assert pull.poll(2000)
        assert decode_play(pull.recv_multipart()) == PlayAudio("c1", 3, b"\x01\x00" * 160, 8000, False, True)
        assert pull.poll(2000)
        assert decode_play(pull.recv_multipart()) == PlayControl("c1", "stop")
        assert (sink.sent, sink.dropped) == (2, 1)
    finally:
        sink.close(linger_ms=0)
        pull.close(linger=0)
        context.term()
