"""The reactive scripted caller against the answering baresip peer (no Voxdesk in between): turns said mid-call
arrive at the far end when they were said, DTMF goes out as RFC 2833 events, and the caller hears the far end live.

Skips when baresip is not installed. Test audio is tone bursts made with numpy.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from core.audio import AudioClip, mix_to_mono, read_audio, write_audio
from core.errors import InvalidInputError
from telephony.peer_agent import BaresipAgent
from telephony.peer_scripted import ScriptedCaller
from telephony.peers import BaresipCaller, free_udp_port

pytestmark = [pytest.mark.integration, pytest.mark.sip, pytest.mark.slow]

if not BaresipCaller.available():
    pytest.skip("baresip is not installed (apt-get install baresip-core)", allow_module_level=True)

RATE = 8000
FRAME = 80  # 10 ms analysis frames: 100 Hz FFT bins, so 1 kHz is bin 10 and 2 kHz bin 20
LOUD_RMS = 1000.0


def tone_wav(path: Path, freq_hz: float, seconds: float) -> Path:
    """A ``freq_hz`` sine burst of ``seconds`` at 8 kHz, amplitude 8000 (about -12 dBFS)."""
    t = np.arange(int(seconds * RATE)) / RATE
    write_audio(path, AudioClip((np.sin(2 * np.pi * freq_hz * t) * 8000).astype(np.int16), RATE, 1))
    return path


def silence_wav(path: Path, seconds: float) -> Path:
    write_audio(path, AudioClip(np.zeros(int(seconds * RATE), np.int16), RATE, 1))
    return path


def samples(path: Path) -> npt.NDArray[np.float64]:
    clip = read_audio(path)
    assert clip.sample_rate == RATE
    return mix_to_mono(clip.samples).astype(np.float64)


def loud_frames(x: npt.NDArray[np.float64], freq_hz: float) -> npt.NDArray[np.int64]:
    """Indexes of the 10 ms frames of ``x`` that are loud and whose strongest frequency is ``freq_hz``."""
    frames = x[: len(x) // FRAME * FRAME].reshape(-1, FRAME)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    peak_hz = np.argmax(np.abs(np.fft.rfft(frames, axis=1)), axis=1) * RATE / FRAME
    return np.flatnonzero((rms > LOUD_RMS) & (peak_hz == freq_hz))


def test_turns_arrive_when_said(tmp_path: Path) -> None:
    low, high = tone_wav(tmp_path / "1k.wav", 1000, 0.5), tone_wav(tmp_path / "2k.wav", 2000, 0.5)
    with BaresipAgent(work_dir=tmp_path, hold_s=60) as agent:
        agent.start(silence_wav(tmp_path / "agent-silence.wav", 0.5))
        with ScriptedCaller(work_dir=tmp_path) as caller:
            assert caller.dial(agent.uri), caller.stop().log
            assert caller.answered and caller.in_call
            caller.prepare(low)  # conversion outside the timed turns
            caller.prepare(high)
            time.sleep(1.5)
            first = caller.say(low)
            time.sleep(3.0)
            second = caller.say(high)
            time.sleep(1.5)
            assert caller.hangup()
            result = caller.stop(record_to=tmp_path / "caller-heard.wav")
        assert agent.wait_ended(5.0)
        heard = agent.stop()
    assert result.answered and result.sip_code == 200 and result.reason == "hung up", result.log
    assert result.exit_status == 0, result.log
    assert [t.acked_at for t in result.turns] == [first, second]
    assert [t.source for t in result.turns] == [low, high]
    assert all(t.sent_at <= t.acked_at < t.sent_at + 1.0 for t in result.turns)
    assert all(abs(t.speech_s - 0.5) < 0.01 for t in result.turns)
    assert result.recorded_wav == tmp_path / "caller-heard.wav" and result.recorded_wav.is_file()
    assert result.answered_at is not None and result.answered_at < first
    assert heard.answered and heard.recorded_wav is not None, heard.log

    agent_heard = samples(heard.recorded_wav)
    low_frames, high_frames = loud_frames(agent_heard, 1000), loud_frames(agent_heard, 2000)
    assert low_frames.size and high_frames.size, "the agent did not hear both bursts"
    low_at, high_at = low_frames[0] * FRAME / RATE, high_frames[0] * FRAME / RATE
    assert low_at < high_at
    assert abs((high_at - low_at) - (second - first)) < 0.3, (low_at, high_at, second - first)
    # Each burst is heard whole (from its first sample: nothing is cut by the switch) and only once.
    assert 0.45 <= len(low_frames) * FRAME / RATE <= 0.52 and low_frames[-1] < high_frames[0]
    assert 0.45 <= len(high_frames) * FRAME / RATE <= 0.52
    # The agent's recording starts with the answer: the first burst comes when it was said.
    assert abs(low_at - (first - result.answered_at)) < 0.3, (low_at, first - result.answered_at)
    before = agent_heard[: low_frames[0] * FRAME]
    assert len(before) > RATE  # more than a second of silence was sent before the first turn
    assert np.sqrt(np.mean(before**2)) < 50 and np.max(np.abs(before)) < 500, "not silent before the first say"
    # The caller's own dump of what it sent holds both bursts too.
    assert result.sent_wav is not None
    sent = samples(result.sent_wav)
    assert loud_frames(sent, 1000).size and loud_frames(sent, 2000).size


def test_dtmf_and_hearing_the_far_end(tmp_path: Path) -> None:
    greeting = tone_wav(tmp_path / "greeting.wav", 600, 1.0)
    long_turn = tone_wav(tmp_path / "long.wav", 1500, 2.0)
    with BaresipAgent(work_dir=tmp_path, hold_s=60) as agent:
        agent.start(greeting)
        with ScriptedCaller(work_dir=tmp_path) as caller:
            with pytest.raises(RuntimeError, match="no call"):
                caller.say(greeting)
            assert caller.dial(agent.uri)
            # The agent's 1 s greeting, then silence: quiet within a little more than 1 s + quiet_s.
            started = time.monotonic()
            assert caller.wait_for_quiet(quiet_s=0.5, timeout_s=5.0, from_sample=0)
            assert 1.4 <= time.monotonic() - started < 2.5
            live = caller.heard()
            assert len(live) >= 1.4 * RATE and np.max(np.abs(live[: RATE // 2])) > 4000
            time.sleep(0.1)
            later = caller.heard()
            assert len(later) > len(live) and np.array_equal(later[: len(live)], live)
            # A turn cut short: 2 s of 1.5 kHz, silenced after about 0.5 s.
            begun = caller.say(long_turn)
            time.sleep(0.5)
            cut = caller.silence()
            with pytest.raises(InvalidInputError):
                caller.dtmf("12x")
            acked = caller.dtmf("19#*")
            assert acked <= time.time()
            time.sleep(1.5)
            assert not caller.wait_for_quiet(quiet_s=0.2, timeout_s=0.5)  # nothing new was said
            result = caller.stop()
        heard = agent.stop()
    assert result.answered and result.reason == "hung up", result.log
    received = [line for line in heard.log.splitlines() if line.startswith("received event:") and "end=1" in line]
    assert received == [f"received event: '{d}' (end=1)" for d in "19#*"], heard.log
    assert result.recorded_wav is not None
    assert loud_frames(samples(result.recorded_wav), 600).size * FRAME / RATE > 0.9
    assert heard.recorded_wav is not None
    cut_s = loud_frames(samples(heard.recorded_wav), 1500).size * FRAME / RATE
    assert abs(cut_s - (cut - begun)) < 0.1, (cut_s, cut - begun)


def test_unanswered_and_unstarted(tmp_path: Path) -> None:
    caller = ScriptedCaller(work_dir=tmp_path, answer_timeout_s=1.0)
    with pytest.raises(RuntimeError):
        caller.heard()
    with caller:
        assert not caller.dial(f"sip:nobody@127.0.0.1:{free_udp_port()}")
        assert not caller.in_call
        with pytest.raises(RuntimeError):
            caller.dial("sip:again@127.0.0.1")
        result = caller.stop()
    assert not result.answered and result.answered_at is None and result.talk_s == 0.0
    assert result.sip_code != 200 and result.reason, result.log
    assert result.turns == () and result.recorded_wav is None
