"""The SIP media worker process with real SIP peers: sipp places G.711 calls with RTP and RFC 2833 DTMF.

Each test starts ``python -m voxdesk.media_main --index 0`` with its own ports and var folders, a ZeroMQ bus
proxy (ipc sockets in ``tmp_path``) whose events a raw SUB socket records, and a PULL socket that stands in for
the speech worker and captures the media messages. Skips when sipp or its pcaps are not installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import zmq

from core.bus.zmq_bus import ZmqBusProxy
from core.events import CallEnded, Event, event_from_json, event_kind
from core.media import AudioChunk, MediaMessage, StreamEnd, StreamStart, decode_media
from telephony.peers import free_udp_ports

pytestmark = [pytest.mark.integration, pytest.mark.sip]

ROOT = Path(__file__).resolve().parents[2]
SIPP = shutil.which("sipp") or ""
PCAPS = Path("/usr/share/sip-tester")
G711A = PCAPS / "g711a.pcap"

if not SIPP or not G711A.is_file():
    pytest.skip("sipp with its pcaps is not installed (apt-get install sip-tester)", allow_module_level=True)
pytest.importorskip("pjsua2", reason="pjsua2-python is not installed (the telephony extra)")

_INVITE = """
  <send retrans="500"><![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:+8613800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[local_ip_type] [local_ip]
      t=0 0
      m=audio [auto_media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-11,16
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
"""
_ACK = """
  <send><![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:+8613800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
  ]]></send>
"""
_BYE = """
  <send retrans="500"><![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: sipp <sip:+8613800138000@[local_ip]:[local_port]>;tag=[pid]SIPpTag09[call_number]
      To: [service] <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: sip:sipp@[local_ip]:[local_port]
      Max-Forwards: 70
      Content-Length: 0
  ]]></send>
  <recv response="200" crlf="true"/>
"""


def _play(pcap: Path, pause_ms: int) -> str:
    return f'  <nop><action><exec play_pcap_audio="{pcap}"/></action></nop>\n  <pause milliseconds="{pause_ms}"/>\n'


def scenario_call(digits: tuple[str, ...] = (), hold_ms: int = 0) -> str:
    """Answered call: 8 s of G.711 A-law speech, then RFC 2833 ``digits``, an optional hold, then BYE."""
    body = _play(G711A, 8000)
    for digit in digits:
        name = {"#": "pound", "*": "star"}.get(digit, digit)
        body += _play(PCAPS / f"dtmf_2833_{name}.pcap", 600)
    if hold_ms:
        body += f'  <pause milliseconds="{hold_ms}"/>\n'
    answered = '  <recv response="200" rtd="true" crlf="true"/>\n'
    return f'<?xml version="1.0"?>\n<scenario name="call">{_INVITE}{answered}{_ACK}{body}{_BYE}</scenario>\n'


def scenario_echo_call(hold_ms: int) -> str:
    """Answered call that sends no audio of its own: run with -rtp_echo so it returns what it hears."""
    invite = _INVITE.replace("[auto_media_port]", "[media_port]")
    answered = '  <recv response="200" rtd="true" crlf="true"/>\n'
    pause = f'  <pause milliseconds="{hold_ms}"/>\n'
    return f'<?xml version="1.0"?>\n<scenario name="echo">{invite}{answered}{_ACK}{pause}{_BYE}</scenario>\n'


def scenario_busy() -> str:
    """A call that must be refused with 486 Busy Here (sipp fails on anything else)."""
    refused = '  <recv response="486"/>\n'
    ack = _ACK.replace("[peer_tag_param]", "[peer_tag_param]")
    return f'<?xml version="1.0"?>\n<scenario name="busy">{_INVITE}{refused}{ack}</scenario>\n'


@dataclass
class Harness:
    """A running media worker process with its bus proxy, event recorder and fake speech worker."""

    tmp: Path
    sip_port: int
    process: subprocess.Popen[str]
    events: list[Event] = field(default_factory=list)
    media: list[MediaMessage] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    others: list[subprocess.Popen[str]] = field(default_factory=list)
    """Worker processes of index 1, 2, … (SIP port ``sip_port + index``)."""

    def sipp(
        self,
        scenario: str,
        name: str,
        *,
        target: int | None = None,
        calls: int = 1,
        rate: int = 1,
        wait: bool = True,
        service: str = "95500",
        echo: bool = False,
    ) -> subprocess.Popen[str]:
        path = self.tmp / f"{name}.xml"
        path.write_text(scenario)
        sip_port, media_port = free_udp_ports(2, step=1000)
        argv = [
            SIPP, "-sf", str(path), "-s", service, f"127.0.0.1:{target or self.sip_port}", "-i", "127.0.0.1",
            "-p", str(sip_port), "-mp", str(media_port), "-m", str(calls), "-l", str(calls), "-r", str(rate),
            "-timeout", "60", "-nostdin", "-nr", "-trace_err", "-error_file", str(self.tmp / f"{name}.err"),
        ]  # fmt: skip
        if echo:
            argv.append("-rtp_echo")
        proc = subprocess.Popen(argv, cwd=self.tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if wait:
            out, _ = proc.communicate(timeout=90)
            assert proc.returncode == 0, f"sipp {name} failed ({proc.returncode}):\n{out[-3000:]}\n{self.log_tail()}"
        return proc

    def wait_events(self, predicate: object, timeout_s: float = 15.0) -> list[Event]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if predicate(self.events):  # type: ignore[operator]
                return list(self.events)
            time.sleep(0.05)
        raise AssertionError(f"events not seen in time: {[event_kind(e) for e in self.events]}\n{self.log_tail()}")

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if event_kind(e) == kind]

    def log_tail(self) -> str:
        return "\n".join(self.stderr[-40:])


def _reader(sock: zmq.Socket[bytes], sink: list[object], decode: object, stop: threading.Event) -> None:
    while not stop.is_set():
        if sock.poll(50):
            sink.append(decode(sock.recv_multipart()))  # type: ignore[operator]


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator[object]:
    """Starts media worker processes (``factory(lines=None)``) and tears everything down afterwards."""
    ctx = zmq.Context()
    proxy = ZmqBusProxy(f"ipc://{tmp_path}/bus-in.sock", f"ipc://{tmp_path}/bus-out.sock")
    proxy.start()
    stop = threading.Event()
    threads: list[threading.Thread] = []
    harnesses: list[Harness] = []

    def factory(
        lines: list[dict[str, object]] | None = None, max_calls: int = 4, ring_timeout_s: float = 30, workers: int = 1
    ) -> Harness:
        sip_port, rtp_port = free_udp_ports(2, step=1000)
        speech = f"ipc://{tmp_path}/speech-{{index}}.sock"
        pull = ctx.socket(zmq.PULL)
        pull.setsockopt(zmq.RCVHWM, 100_000)
        pull.bind(speech.format(index=0))
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"call.")
        sub.connect(proxy.backend)
        env = {k: v for k, v in os.environ.items() if not k.startswith("VOXDESK_")}
        env.update(
            PYTHONPATH=str(ROOT),
            VOXDESK_VAR_DIR=str(tmp_path / "var"),
            VOXDESK_DATABASE_URL=f"sqlite:///{tmp_path}/voxdesk.db",
            VOXDESK_BUS_BACKEND="zmq",
            VOXDESK_BUS_ZMQ_FRONTEND=proxy.frontend,
            VOXDESK_BUS_ZMQ_BACKEND=proxy.backend,
            VOXDESK_ASR_SPEECH_WORKERS="1",
            VOXDESK_ASR_SPEECH_ENDPOINT_TEMPLATE=speech,
            VOXDESK_TELEPHONY_PLAY_ENDPOINT_TEMPLATE=f"ipc://{tmp_path}/play-{{index}}.sock",
            VOXDESK_TELEPHONY_SIP_PORT=str(sip_port),
            VOXDESK_TELEPHONY_RTP_PORT_START=str(rtp_port),
            VOXDESK_TELEPHONY_MAX_CALLS_PER_WORKER=str(max_calls),
            VOXDESK_TELEPHONY_RING_TIMEOUT_S=str(ring_timeout_s),
            VOXDESK_RECORDING_DIRECTORY=str(tmp_path / "recordings"),
            VOXDESK_LOGGING_JSON_LOGS="true",
        )
        if lines is not None:
            env["VOXDESK_TELEPHONY_LINES"] = json.dumps(lines)
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "voxdesk.media_main", "--index", str(index)],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for index in range(workers)
        ]
        h = Harness(tmp_path, sip_port, processes[0], others=processes[1:])
        harnesses.append(h)
        listening = threading.Semaphore(0)

        def drain_stderr(process: subprocess.Popen[str]) -> None:
            assert process.stderr is not None
            for line in process.stderr:
                h.stderr.append(line.rstrip())
                if "sip media worker listening" in line:
                    listening.release()

        readers = [(drain_stderr, (p,)) for p in processes] + [
            (_reader, (sub, h.events, lambda frames: event_from_json(frames[1]), stop)),
            (_reader, (pull, h.media, decode_media, stop)),
        ]
        for target, args in readers:
            t = threading.Thread(target=target, args=args, daemon=True)
            t.start()
            threads.append(t)
        for _ in processes:
            if not listening.acquire(timeout=20):
                for p in processes:
                    p.kill()
                pytest.fail(f"media worker did not start:\n{h.log_tail()}")
        return h

    yield factory
    for process in [p for h in harnesses for p in (h.process, *h.others)]:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    stop.set()
    for t in threads:
        t.join(timeout=5)
    ctx.destroy(linger=0)
    proxy.close()


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0.0


def test_call_is_answered_streamed_recorded_and_reports_dtmf(worker_factory: object, tmp_path: Path) -> None:
    prompt = tmp_path / "disclosure.wav"
    t = np.arange(16000) / 16000  # 1 s tone at 16 kHz: the worker resamples it to the 8 kHz bridge
    sf.write(prompt, (0.3 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16), 16000, subtype="PCM_16")
    lines = [{"name": "navigator", "kind": "navigator", "number": "95500", "lang": "zh", "disclosure_wav": str(prompt)}]
    h: Harness = worker_factory(lines)  # type: ignore[operator]

    h.sipp(scenario_call(digits=("1", "5", "#")), "call")
    h.wait_events(lambda ev: any(isinstance(e, CallEnded) for e in ev))

    kinds = [event_kind(e) for e in h.events]
    assert kinds[:3] == ["call.started", "call.answered", "call.leg"] or kinds[:3] == [
        "call.started", "call.leg", "call.answered",
    ], kinds  # fmt: skip
    started = h.of("call.started")[0]
    assert started.line == "navigator" and started.direction == "inbound"  # type: ignore[attr-defined]
    assert started.caller == "+8613800138000"  # type: ignore[attr-defined]
    call_id = started.call_id  # type: ignore[attr-defined]
    assert [e.digit for e in h.of("call.dtmf")] == ["1", "5", "#"]  # type: ignore[attr-defined]
    ended = h.of("call.ended")[0]
    assert isinstance(ended, CallEnded)
    assert ended.call_id == call_id and ended.reason == "normal" and ended.sip_code == 200
    assert 9_000 <= ended.duration_ms <= 20_000, ended.duration_ms

    time.sleep(0.3)
    starts = [m for m in h.media if isinstance(m, StreamStart)]
    chunks = [m for m in h.media if isinstance(m, AudioChunk)]
    ends = [m for m in h.media if isinstance(m, StreamEnd)]
    assert len(starts) == 1 and len(ends) == 1, [type(m).__name__ for m in h.media[:3]]
    assert (starts[0].call_id, starts[0].leg, starts[0].encoding, starts[0].sample_rate_hz) == (
        call_id, "customer", "l16", 8000,
    )  # fmt: skip
    assert starts[0].line == "navigator" and starts[0].lang == "zh"
    assert ends[0].reason == "hangup"
    assert len(chunks) >= 400, len(chunks)  # ≥ 8 s of 20 ms frames
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    assert all(len(c.payload) == 320 for c in chunks)
    assert chunks[1].start_ms - chunks[0].start_ms == 20
    speech = np.frombuffer(b"".join(c.payload for c in chunks), dtype="<i2")
    assert _rms(speech) > 300

    assert ended.recording_path is not None
    path = Path(ended.recording_path)
    data, rate = sf.read(path, dtype="int16", always_2d=True)
    assert rate == 8000 and data.shape[1] == 2
    assert abs(len(data) - len(speech)) <= 8000 * 0.5
    assert _rms(data[:, 0]) > 300, "customer (left) channel is silent"
    first_s = data[:8000, 1]
    assert _rms(first_s) > 3000, "disclosure prompt is missing from the right channel"
    assert _rms(data[16000:, 1]) == 0.0, "the right channel should be silent after the prompt"
    sidecar = json.loads(path.with_name(path.name + ".json").read_text())
    assert sidecar["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert sidecar["call_id"] == call_id and abs(sidecar["duration_ms"] - len(data) / 8) <= 1
    saved = h.of("call.recording")
    assert len(saved) == 1 and kinds.index("call.recording") < kinds.index("call.ended")
    assert saved[0].sha256 == sidecar["sha256"] and saved[0].path == str(path)  # type: ignore[attr-defined]
    assert saved[0].duration_ms == sidecar["duration_ms"]  # type: ignore[attr-defined]


def test_fifth_concurrent_call_gets_busy_here(worker_factory: object) -> None:
    h: Harness = worker_factory()  # type: ignore[operator]
    holding = h.sipp(scenario_call(hold_ms=2000), "hold", calls=4, rate=20, wait=False)
    try:
        h.wait_events(lambda ev: sum(e.kind == "call.answered" for e in ev) == 4, timeout_s=10)
        h.sipp(scenario_busy(), "busy")
        h.wait_events(lambda ev: any(isinstance(e, CallEnded) and e.sip_code == 486 for e in ev))
        out, _ = holding.communicate(timeout=60)
        assert holding.returncode == 0, out[-3000:]
    finally:
        if holding.poll() is None:
            holding.kill()
    h.wait_events(lambda ev: sum(isinstance(e, CallEnded) for e in ev) == 5)
    busy = [e for e in h.of("call.ended") if e.sip_code == 486]  # type: ignore[attr-defined]
    assert len(busy) == 1 and busy[0].reason == "busy"  # type: ignore[attr-defined]
    normal = [e for e in h.of("call.ended") if e.reason == "normal"]  # type: ignore[attr-defined]
    assert len(normal) == 4 and all(e.recording_path for e in normal)  # type: ignore[attr-defined]
    streams = {m.call_id for m in h.media if isinstance(m, StreamStart)}
    assert len(streams) == 4


def test_unknown_number_gets_not_found(worker_factory: object) -> None:
    h: Harness = worker_factory()  # type: ignore[operator]
    scenario = scenario_busy().replace('response="486"', 'response="404"')
    path = h.tmp / "nf.xml"
    path.write_text(scenario)
    sip_port, media_port = free_udp_ports(2, step=1000)
    out = subprocess.run(
        [SIPP, "-sf", str(path), "-s", "12345", f"127.0.0.1:{h.sip_port}", "-i", "127.0.0.1", "-p", str(sip_port),
         "-mp", str(media_port), "-m", "1", "-timeout", "30", "-nostdin", "-nr"],
        cwd=h.tmp, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:]
    h.wait_events(lambda ev: any(isinstance(e, CallEnded) for e in ev))
    ended = h.of("call.ended")[0]
    assert ended.sip_code == 404 and ended.reason == "failed"  # type: ignore[attr-defined]


def test_sigterm_hangs_up_closes_recording_and_exits_zero(worker_factory: object) -> None:
    psutil = pytest.importorskip("psutil")
    h: Harness = worker_factory()  # type: ignore[operator]
    caller = h.sipp(scenario_call(hold_ms=20_000), "long", wait=False)
    try:
        h.wait_events(lambda ev: any(e.kind == "call.answered" for e in ev))
        time.sleep(2.0)
        parent = psutil.Process(h.process.pid)
        assert parent.children(recursive=True) == []
        h.process.send_signal(signal.SIGTERM)
        assert h.process.wait(timeout=20) == 0, h.log_tail()
    finally:
        caller.kill()
        caller.wait()
    assert not psutil.pid_exists(h.process.pid) or psutil.Process(h.process.pid).status() != psutil.STATUS_ZOMBIE
    h.wait_events(lambda ev: any(isinstance(e, CallEnded) for e in ev), timeout_s=5)
    ended = h.of("call.ended")[0]
    assert ended.reason == "shutdown"  # type: ignore[attr-defined]
    time.sleep(0.3)
    assert [m.reason for m in h.media if isinstance(m, StreamEnd)] == ["shutdown"]
    data, rate = sf.read(ended.recording_path, dtype="int16", always_2d=True)  # type: ignore[attr-defined]
    assert rate == 8000 and len(data) >= 8000 and _rms(data[:, 0]) > 300


def test_recording_survives_a_worker_crash(worker_factory: object) -> None:
    h: Harness = worker_factory()  # type: ignore[operator]
    caller = h.sipp(scenario_call(hold_ms=20_000), "crash", wait=False)
    try:
        h.wait_events(lambda ev: any(e.kind == "call.leg" for e in ev))
        time.sleep(4.0)
        h.process.kill()  # SIGKILL: no shutdown code runs
        h.process.wait(timeout=10)
    finally:
        caller.kill()
        caller.wait()
    wavs = list((h.tmp / "recordings").rglob("*.wav"))
    assert len(wavs) == 1
    data, rate = sf.read(wavs[0], dtype="int16", always_2d=True)
    # the header is rewritten every second of audio: at most ~1 s beyond the last rewrite is undescribed
    assert rate == 8000 and data.shape[1] == 2 and len(data) >= 2 * 8000, len(data)
    assert _rms(data[:, 0]) > 300


# --- assisted line: B2BUA to an agent (a sipp UAS) -----------------------------------------------------------

_UAS_REPLY = """
  <send{retrans}><![CDATA[
      SIP/2.0 {status}
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      {cseq}
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      {body}
  ]]></send>
"""
_SDP_ANSWER = """Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=agent 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 8 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000"""


def _uas(status: str, *, body: str = "Content-Length: 0", retrans: bool = False, cseq: str = "[last_CSeq:]") -> str:
    return _UAS_REPLY.format(status=status, body=body, retrans=' retrans="500"' if retrans else "", cseq=cseq)


def scenario_agent(mode: str) -> str:
    """The agent's softphone: ``answer`` (200, echoes RTP with -rtp_echo, waits for BYE), ``play`` (200, plays
    8 s of speech, waits for BYE), ``busy`` (486) or ``ring`` (180 until CANCEL, then 487)."""
    invite = '  <recv request="INVITE" crlf="true"/>\n'
    if mode == "ring":  # keep the INVITE's CSeq for the 487
        invite = (
            '  <recv request="INVITE" crlf="true"><action>'
            '<ereg regexp=".*" search_in="hdr" header="CSeq:" assign_to="cseq"/></action></recv>\n'
        )
    if mode == "busy":
        body = invite + _uas("486 Busy Here") + '  <recv request="ACK"/>\n'
    elif mode == "ring":
        body = (
            invite + _uas("180 Ringing") + '  <recv request="CANCEL"/>\n' + _uas("200 OK")
            + _uas("487 Request Terminated", cseq="CSeq:[$cseq]") + '  <recv request="ACK"/>\n'
        )  # fmt: skip
    else:
        play = _play(G711A, 100) if mode == "play" else ""
        body = (
            invite + _uas("180 Ringing") + _uas("200 OK", body=_SDP_ANSWER, retrans=True)
            + '  <recv request="ACK" crlf="true"/>\n' + play + '  <recv request="BYE"/>\n'
            + _UAS_REPLY.format(status="200 OK", body="Content-Length: 0", retrans="", cseq="[last_CSeq:]").replace(
                ";tag=[pid]SIPpTag01[call_number]", ""
            )
        )  # fmt: skip
    return f'<?xml version="1.0"?>\n<scenario name="agent-{mode}">{body}</scenario>\n'


def _start_agent(h: Harness, mode: str, port: int) -> subprocess.Popen[str]:
    path = h.tmp / f"agent-{mode}.xml"
    path.write_text(scenario_agent(mode))
    (media_port,) = free_udp_ports(1)
    argv = [SIPP, "-sf", str(path), "-i", "127.0.0.1", "-p", str(port), "-mp", str(media_port), "-m", "1",
            "-timeout", "60", "-nostdin", "-nr", "-trace_err", "-error_file", str(h.tmp / f"agent-{mode}.err")]  # fmt: skip
    if mode == "answer":
        argv.append("-rtp_echo")
    proc = subprocess.Popen(argv, cwd=h.tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(0.5)  # let the UAS bind
    return proc


def _assisted(worker_factory: object, mode: str) -> tuple[Harness, subprocess.Popen[str]]:
    (agent_port,) = free_udp_ports(1)
    lines = [{"name": "assisted", "kind": "assisted", "number": "95588", "lang": "zh", "skill_group": "cards",
              "agent_uri": f"sip:agent@127.0.0.1:{agent_port}"}]  # fmt: skip
    h: Harness = worker_factory(lines, ring_timeout_s=2.0)  # type: ignore[operator]
    return h, _start_agent(h, mode, agent_port)


@pytest.mark.parametrize("direction", ["customer-to-agent", "agent-to-customer"])
def test_assisted_call_bridges_customer_and_agent_and_taps_both_legs(worker_factory: object, direction: str) -> None:
    # One side speaks (plays the pcap); the other side's phone echoes what it hears (sipp -rtp_echo). Speech on
    # the listener's tap proves the bridge carries audio in that direction.
    h, agent = _assisted(worker_factory, "answer" if direction == "customer-to-agent" else "play")
    try:
        if direction == "customer-to-agent":
            h.sipp(scenario_call(), "customer", service="95588")
        else:
            h.sipp(scenario_echo_call(9000), "customer", service="95588", echo=True)
        out, _ = agent.communicate(timeout=30)
        assert agent.returncode == 0, out[-3000:]
    finally:
        if agent.poll() is None:
            agent.kill()
    h.wait_events(lambda ev: any(isinstance(e, CallEnded) for e in ev))
    assert [e.by for e in h.of("call.answered")] == ["agent"]  # type: ignore[attr-defined]
    assert sorted(e.leg for e in h.of("call.leg")) == ["agent", "customer"]  # type: ignore[attr-defined]
    ended = h.of("call.ended")[0]
    assert ended.reason == "normal" and ended.recording_path  # type: ignore[attr-defined]
    time.sleep(0.3)
    legs = {m.leg for m in h.media if isinstance(m, StreamStart)}
    assert legs == {"customer", "agent"}
    for leg in ("customer", "agent"):
        chunks = [m for m in h.media if isinstance(m, AudioChunk) and m.leg == leg]
        assert len(chunks) >= 300, (leg, len(chunks))
        assert [c.seq for c in chunks] == list(range(len(chunks)))
    assert {m.leg for m in h.media if isinstance(m, StreamEnd)} == {"customer", "agent"}
    data, rate = sf.read(ended.recording_path, dtype="int16", always_2d=True)  # type: ignore[attr-defined]
    assert rate == 8000 and data.shape[1] == 2
    assert _rms(data[:, 0]) > 300, "customer (left) channel is silent\n" + h.log_tail()
    assert _rms(data[:, 1]) > 300, "agent (right) channel is silent\n" + h.log_tail()


def test_assisted_call_to_a_busy_agent_is_refused_busy(worker_factory: object) -> None:
    h, agent = _assisted(worker_factory, "busy")
    try:
        h.sipp(scenario_busy(), "customer-busy", service="95588")
        agent.communicate(timeout=30)
    finally:
        if agent.poll() is None:
            agent.kill()
    h.wait_events(lambda ev: any(isinstance(e, CallEnded) for e in ev))
    ended = h.of("call.ended")[0]
    assert (ended.reason, ended.sip_code) == ("busy", 486)  # type: ignore[attr-defined]
    assert h.of("call.answered") == []


def test_assisted_call_whose_agent_does_not_answer_is_cancelled(worker_factory: object) -> None:
    h, agent = _assisted(worker_factory, "ring")
    try:
        scenario = scenario_busy().replace('response="486"', 'response="480"')
        h.sipp(scenario, "customer-noanswer", service="95588")
        out, _ = agent.communicate(timeout=30)
        assert agent.returncode == 0, out[-3000:]
    finally:
        if agent.poll() is None:
            agent.kill()
    h.wait_events(lambda ev: any(isinstance(e, CallEnded) for e in ev))
    ended = h.of("call.ended")[0]
    assert (ended.reason, ended.sip_code) == ("no-answer", 408)  # type: ignore[attr-defined]
    assert 1_500 <= ended.duration_ms <= 6_000, ended.duration_ms  # type: ignore[attr-defined]


# --- Kamailio in front of two media workers ------------------------------------------------------------------

KAMAILIO = shutil.which("kamailio") or shutil.which("kamailio", path="/usr/sbin:/sbin") or ""
KAMAILIO_CFG = ROOT / "telephony" / "kamailio" / "kamailio.cfg"


def _routed(scenario: str) -> str:
    """The same scenario with ACK/BYE sent along the recorded route (through the proxy) to the worker."""
    scenario = scenario.replace(
        '<recv response="200" rtd="true" crlf="true"/>', '<recv response="200" rtd="true" crlf="true" rrs="true"/>'
    )
    for method in ("ACK", "BYE"):
        scenario = scenario.replace(
            f"{method} sip:[service]@[remote_ip]:[remote_port] SIP/2.0", f"{method} [next_url] SIP/2.0\n      [routes]"
        )
    return scenario


@pytest.fixture
def kamailio(tmp_path: Path) -> Iterator[object]:
    """``start(worker_ports) -> port``: Kamailio with the project's config on a free port; stopped afterwards."""
    if not KAMAILIO:
        pytest.skip("kamailio is not installed (apt-get install kamailio)")
    procs: list[subprocess.Popen[str]] = []

    def start(worker_ports: list[int]) -> int:
        (port,) = free_udp_ports(1)
        listing = tmp_path / "dispatcher.list"
        listing.write_text("".join(f"1 sip:127.0.0.1:{p} 0 0\n" for p in worker_ports))
        argv = [KAMAILIO, "-f", str(KAMAILIO_CFG), "-DD", "-E", "-Y", str(tmp_path / "kamailio-run"),
                "-A", f"LISTEN=udp:127.0.0.1:{port}", "-A", f'DISPATCHER_LIST="{listing}"']  # fmt: skip
        (tmp_path / "kamailio-run").mkdir(exist_ok=True)
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(proc)
        time.sleep(1.0)
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        return port

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_kamailio_spreads_calls_over_two_workers_and_refuses_when_all_are_full(
    worker_factory: object, kamailio: object
) -> None:
    h: Harness = worker_factory(max_calls=2, workers=2)  # type: ignore[operator]
    port = kamailio([h.sip_port, h.sip_port + 1])  # type: ignore[operator]
    holding = h.sipp(_routed(scenario_call(hold_ms=2000)), "hold", calls=4, rate=20, wait=False, target=port)
    try:
        h.wait_events(lambda ev: sum(e.kind == "call.answered" for e in ev) == 4, timeout_s=10)
        h.sipp(scenario_busy(), "busy", target=port)  # both workers full: Kamailio tried each, relays the 486
        out, _ = holding.communicate(timeout=60)
        assert holding.returncode == 0, out[-3000:]
    finally:
        if holding.poll() is None:
            holding.kill()
    h.wait_events(lambda ev: sum(e.kind == "call.ended" and e.reason == "normal" for e in ev) == 4)
    busy = [e for e in h.of("call.ended") if e.reason == "busy"]  # type: ignore[attr-defined]
    assert len(busy) == 2, [(e.reason, e.sip_code) for e in h.of("call.ended")]  # type: ignore[attr-defined]
    assert len({m.call_id for m in h.media if isinstance(m, StreamStart)}) == 4
