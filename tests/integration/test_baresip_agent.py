"""The answering baresip peer, peer to peer with BaresipCaller (no Voxdesk in between): answer, two-way audio,
hangup from either side, and a clear error when the port is taken.

Skips when baresip is not installed. Test speech comes from espeak-ng when it is there, else from chirps.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from core.audio import AudioClip, mix_to_mono, read_audio, resample, write_audio
from telephony.peer_agent import BaresipAgent
from telephony.peers import BaresipCaller
from tests.conftest import ncc_peak

pytestmark = [pytest.mark.integration, pytest.mark.sip]

if not BaresipCaller.available():
    pytest.skip("baresip is not installed (apt-get install baresip-core)", allow_module_level=True)

ESPEAK = shutil.which("espeak-ng")


def speech(path: Path, text: str, voice: str, chirp: tuple[float, float]) -> Path:
    """``text`` spoken by espeak-ng ``voice``, or (without espeak-ng) a 2.5 s linear chirp between ``chirp`` Hz."""
    if ESPEAK:
        subprocess.run([ESPEAK, "-v", voice, "-w", str(path), text], check=True, capture_output=True, timeout=30)
    else:
        t = np.arange(int(2.5 * 8000)) / 8000
        f0, f1 = chirp
        phase = 2 * np.pi * (f0 * t + (f1 - f0) / (2 * 2.5) * t**2)
        write_audio(path, AudioClip((np.sin(phase) * 8000).astype(np.int16), 8000, 1))
    return path


def to_8k(path: Path) -> npt.NDArray[np.float64]:
    clip = read_audio(path)
    mono = mix_to_mono(clip.samples)
    return (resample(mono, clip.sample_rate, 8000) if clip.sample_rate != 8000 else mono).astype(np.float64)


@pytest.fixture(scope="module")
def voices(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(what the caller says, what the agent says)."""
    folder = tmp_path_factory.mktemp("voices")
    caller = speech(folder / "caller.wav", "Hello, this is the caller. I lost my credit card.", "en-us", (300, 3000))
    agent = speech(folder / "agent.wav", "Thank you for calling, this is the agent speaking.", "en-gb+f3", (3000, 300))
    return caller, agent


def test_caller_and_agent_hear_each_other(tmp_path: Path, voices: tuple[Path, Path]) -> None:
    caller_wav, agent_wav = voices
    with BaresipAgent(work_dir=tmp_path, user="agent101", hold_s=20) as agent:
        agent.start(agent_wav)
        assert agent.uri == f"sip:agent101@127.0.0.1:{agent.port}"
        heard_by_caller = tmp_path / "caller-heard.wav"
        called = BaresipCaller(work_dir=tmp_path).call(agent.uri, caller_wav, record_to=heard_by_caller)
        assert called.answered and called.sip_code == 200, called.log
        assert agent.wait_answered(1.0)
        assert agent.wait_ended(5.0), agent.stop().log  # the caller hung up at the end of its WAV
        answered = agent.stop()
    assert answered is agent.stop()  # idempotent
    assert answered.answered and answered.sip_code == 200 and answered.reason == "hung up", answered.log
    assert answered.exit_status == 0, answered.log
    assert abs(answered.talk_s - called.talk_s) < 1.0
    assert answered.recorded_wav is not None and answered.sent_wav is not None

    caller_voice, agent_voice = to_8k(caller_wav), to_8k(agent_wav)
    agent_heard, caller_heard = to_8k(answered.recorded_wav), to_8k(heard_by_caller)
    assert ncc_peak(agent_heard, caller_voice) > 0.6, "the agent did not hear the caller"
    assert ncc_peak(caller_heard, agent_voice) > 0.6, "the caller did not hear the agent"
    # Each recording is the other side, not an echo of its own voice.
    assert ncc_peak(agent_heard, agent_voice) < 0.4
    assert ncc_peak(caller_heard, caller_voice) < 0.4
    # The agent's own dump of what it sent starts with its WAV.
    assert ncc_peak(to_8k(answered.sent_wav), agent_voice) > 0.9


def test_agent_hangs_up_after_its_hold_time(tmp_path: Path, voices: tuple[Path, Path]) -> None:
    caller_wav, _ = voices
    long_caller = tmp_path / "long.wav"
    write_audio(long_caller, AudioClip(np.tile(to_8k(caller_wav).astype(np.int16), 4), 8000, 1))
    silence = tmp_path / "silence.wav"
    write_audio(silence, AudioClip(np.zeros(4000, dtype=np.int16), 8000, 1))  # 0.5 s
    with BaresipAgent(work_dir=tmp_path, user="desk7", hold_s=1.0) as agent:
        agent.start(silence)
        called = BaresipCaller(work_dir=tmp_path).call(agent.uri, long_caller)
        outcome = agent.stop()
    assert called.answered and outcome.answered, outcome.log
    assert outcome.reason == "hung up"
    assert 1.0 <= called.talk_s < 4.0, called.log  # the agent's 1.5 s of audio, not the caller's long WAV


def test_stop_without_a_call(tmp_path: Path, voices: tuple[Path, Path]) -> None:
    agent = BaresipAgent(work_dir=tmp_path)
    with pytest.raises(RuntimeError):
        agent.wait_answered(0.1)
    agent.start(voices[1])
    with pytest.raises(RuntimeError):
        agent.start(voices[1])
    assert not agent.wait_answered(0.2)
    outcome = agent.stop()
    assert not outcome.answered and outcome.sip_code is None and outcome.reason == "no call"
    assert outcome.exit_status == 0 and outcome.recorded_wav is None


def test_taken_port_fails_clearly(tmp_path: Path, voices: tuple[Path, Path]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        agent = BaresipAgent(work_dir=tmp_path, port=holder.getsockname()[1])
        with pytest.raises(OSError, match="Address already in use"):
            agent.start(voices[1])
