"""Answering-machine detection: the rules on scripted speech patterns, and WebRTC VAD on real synthesised speech."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from telephony.amd import AmdDecision, AmdSettings, AnsweringMachineDetector, frame_level_dbfs

SPEECH, SILENCE = b"S" * 320, b"\x00" * 320


def _run(pattern: list[tuple[bool, int]], settings: AmdSettings | None = None) -> list[AmdDecision]:
    """Feed ``(speech?, ms)`` stretches to a detector whose classifier reads the marker bytes."""
    detector = AnsweringMachineDetector(8000, settings, is_speech=lambda frame: frame == SPEECH)
    out = []
    for speech, ms in pattern:
        for _ in range(ms // 20):
            decision = detector.feed(SPEECH if speech else SILENCE)
            if decision is not None:
                out.append(decision)
    return out


def test_short_hello_then_silence_is_a_person() -> None:
    [decision] = _run([(False, 600), (True, 500), (False, 3000)])
    assert (decision.verdict, decision.reason) == ("human", "short_greeting")
    assert decision.greeting_ms == 500
    assert decision.decided_ms == 600 + 500 + 800


def test_long_greeting_is_a_machine_and_its_end_is_reported() -> None:
    words = [(True, 400), (False, 120)] * 8  # continuous speech with short pauses, 4.2 s
    decisions = _run([(False, 400), *words, (True, 300), (False, 2000)], AmdSettings(max_words=99))
    assert [(d.verdict, d.reason, d.greeting_ended) for d in decisions] == [
        ("machine", "long_greeting", False),
        ("machine", "greeting_ended", True),
    ]
    assert decisions[0].decided_ms < 400 + 2600 + 200
    assert decisions[1].greeting_ms == 8 * 520 + 300 - 120 + 120


def test_many_separate_words_are_a_machine() -> None:
    decisions = _run([(False, 200), *[(True, 200), (False, 300)] * 6, (False, 5000)])
    assert (decisions[0].verdict, decisions[0].reason) == ("machine", "many_words")


def test_clicks_are_not_words() -> None:
    decisions = _run([(False, 200), *[(True, 40), (False, 300)] * 10, (False, 4000)])
    assert decisions[0].reason != "many_words"


def test_silence_gives_unknown() -> None:
    [decision] = _run([(False, 6000)])
    assert (decision.verdict, decision.reason, decision.decided_ms) == ("unknown", "silence", 3500)


def test_endless_greeting_starts_the_message_at_the_cap() -> None:
    settings = AmdSettings(max_greeting_ms=8000)
    decisions = _run([(True, 12_000)], settings)
    assert decisions[-1].greeting_ended and decisions[-1].reason == "greeting_too_long"
    assert decisions[-1].decided_ms == 8000


def test_level_of_frames() -> None:
    assert frame_level_dbfs(SILENCE) == float("-inf")
    full = np.full(160, 32767, dtype="<i2").tobytes()
    assert frame_level_dbfs(full) == pytest.approx(0.0, abs=0.01)


def _espeak(tmp_path: Path, voice: str, text: str) -> np.ndarray:
    raw, wav = tmp_path / "raw.wav", tmp_path / "8k.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True, capture_output=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(wav)], check=True, capture_output=True)
    import soundfile as sf

    audio, _ = sf.read(str(wav), dtype="int16")
    return np.concatenate([np.zeros(4000, np.int16), audio, np.zeros(48_000, np.int16)])


@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")), reason="needs espeak-ng and sox")
@pytest.mark.parametrize(
    ("voice", "text", "verdict"),
    [
        ("en-us", "Hello?", "human"),
        ("cmn-latn-pinyin", "wei2, ni3 hao3", "human"),
        ("en-us", "Hi, you have reached John. I cannot take your call right now, please leave a message.", "machine"),
        ("cmn-latn-pinyin", "nin2 hao3, wo3 xian4 zai4 bu4 fang1 bian4 jie1 ting1, qing3 zai4 di1 sheng1 hou4 liu2 yan2",
         "machine"),
    ],
)  # fmt: skip
def test_real_speech_with_webrtc_vad(tmp_path: Path, voice: str, text: str, verdict: str) -> None:
    audio = _espeak(tmp_path, voice, text)
    detector = AnsweringMachineDetector(8000)
    decisions = [d for i in range(0, len(audio) - 160, 160) if (d := detector.feed(audio[i : i + 160].tobytes()))]
    assert decisions[0].verdict == verdict
    assert detector.done
    if verdict == "machine":
        assert decisions[-1].greeting_ended
