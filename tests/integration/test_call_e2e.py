"""A real call end to end: `voxdesk serve` (web server, SIP media worker, speech worker) answers baresip, which
plays real speech; the call, its final transcripts and its recording are read back through the REST API.

Skips when baresip, the shared speech data or the Whisper model packages are missing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest

from asr.metrics import error_counts
from core.audio import mix_to_mono, read_audio, resample
from telephony.peers import BaresipCaller, free_udp_port
from tests.conftest import ncc_peak, shared_data_root

pytestmark = [pytest.mark.integration, pytest.mark.sip, pytest.mark.models, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]

if not BaresipCaller.available():
    pytest.skip("baresip is not installed (apt-get install baresip-core)", allow_module_level=True)
if importlib.util.find_spec("faster_whisper") is None or not (ROOT / "var" / "models").is_dir():
    pytest.skip("needs faster-whisper and provisioned models (voxdesk models provision)", allow_module_level=True)


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def manifest_item(lang: str, prefer: str | None = None) -> tuple[Path, str]:
    """(audio path, reference text) of a clip of ``lang`` in the shared manifest; skips when the data is absent."""
    root = shared_data_root()
    manifest = root / "speech" / "manifest.jsonl"
    if not manifest.is_file():
        pytest.skip(f"real speech data not found at {manifest} (set VOXDESK_SHARED_DATA)")
    items = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    chosen = [i for i in items if i["lang"] == lang and (prefer is None or prefer in i["audio"])]
    if not chosen:
        pytest.skip(f"no {lang} clip {prefer or ''} in {manifest}")
    return manifest.parent / chosen[0]["audio"], str(chosen[0]["text"])


class Served:
    def __init__(self, process: subprocess.Popen[str], base: str, env: dict[str, str], tmp: Path) -> None:
        self.process, self.base, self.env, self.tmp = process, base, env, tmp
        self.sip_port = int(env["VOXDESK_TELEPHONY_SIP_PORT"])
        self.log = tmp / "serve.log"
        self.token = ""

    def api(self, path: str) -> Any:
        response = httpx.get(self.base + path, headers={"Authorization": f"Bearer {self.token}"}, timeout=10)
        assert response.status_code == 200, (path, response.text)
        return response.json()

    def wait_for_call(self, line: str, since: datetime, timeout_s: float = 30.0) -> dict[str, Any]:
        """The newest call on ``line`` (its name) since ``since`` once it has ended, has a recording path and final
        transcripts that stopped changing for 2 s."""
        deadline = time.monotonic() + timeout_s
        seen: tuple[int, ...] = ()
        stable_since = time.monotonic()
        detail: dict[str, Any] = {}
        while time.monotonic() < deadline:
            calls = [c for c in self.api("/api/v1/calls?limit=20")["items"] if c["line"] == line]
            calls = [c for c in calls if datetime.fromisoformat(c["started_at"]) >= since]
            if calls:
                detail = self.api(f"/api/v1/calls/{calls[0]['call_id']}")
                ids = tuple(u["id"] for u in detail["utterances"])
                if ids != seen:
                    seen, stable_since = ids, time.monotonic()
                done = detail["ended_at"] and detail["recording_path"] and ids
                if done and time.monotonic() - stable_since >= 2.0:
                    return detail
            time.sleep(0.3)
        calls = self.api("/api/v1/calls?limit=5")
        pytest.fail(f"call on {line} not finished with transcripts: {detail}\n{calls}\n{self.log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`voxdesk serve` on a fresh SQLite database with its SIP media worker on a free UDP port."""
    tmp = tmp_path_factory.mktemp("serve")
    port = free_tcp_port()
    env = {
        **os.environ,
        "VOXDESK_VAR_DIR": str(tmp / "var"),
        "VOXDESK_DATABASE_URL": f"sqlite:///{tmp / 'var' / 'voxdesk.db'}",
        "VOXDESK_BUS_ZMQ_FRONTEND": f"ipc://{tmp}/bus-in.sock",
        "VOXDESK_BUS_ZMQ_BACKEND": f"ipc://{tmp}/bus-out.sock",
        "VOXDESK_SERVER_PORT": str(port),
        "VOXDESK_TELEPHONY_SIP_PORT": str(free_udp_port()),
        "VOXDESK_TELEPHONY_RTP_PORT_START": str(30000 + port % 1000 * 20),
        "VOXDESK_RECORDING_DIRECTORY": str(tmp / "recordings"),
        "VOXDESK_LOGGING_JSON_LOGS": "true",
        "VOXDESK_MODELS_CACHE_DIR": str(ROOT / "var" / "models"),
        "VOXDESK_SHARED_DATA": str(shared_data_root().resolve()),
        "COLUMNS": "200",
    }
    log = tmp / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "voxdesk.cli", "serve"],
            cwd=tmp,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    served = Served(process, f"http://127.0.0.1:{port}", env, tmp)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"voxdesk serve exited early:\n{log.read_text()}")
            try:
                if httpx.get(f"{served.base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            pytest.fail(f"server not ready:\n{log.read_text()}")
        match = re.search(r"user 'admin' with password\s+(\S+)", log.read_text())
        assert match, log.read_text()
        response = httpx.post(
            f"{served.base}/api/v1/auth/login", json={"username": "admin", "password": match.group(1)}, timeout=10
        )
        assert response.status_code == 200, response.text
        served.token = response.json()["token"]
        _wait_for_sip(served.sip_port)
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def _wait_for_sip(port: int, timeout_s: float = 30.0) -> None:
    """Wait until the media worker answers SIP OPTIONS on ``port`` (it starts after the web server)."""
    deadline = time.monotonic() + timeout_s
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(0.5)
        local = s.getsockname()[1]
        n = 0
        while time.monotonic() < deadline:
            n += 1
            msg = (
                f"OPTIONS sip:probe@127.0.0.1:{port} SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch=z9hG4bKprobe{n}\r\n"
                "Max-Forwards: 70\r\n"
                f"From: <sip:probe@127.0.0.1:{local}>;tag=probe\r\n"
                f"To: <sip:probe@127.0.0.1:{port}>\r\n"
                f"Call-ID: probe-{n}@127.0.0.1\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n"
            )
            s.sendto(msg.encode(), ("127.0.0.1", port))
            try:
                if s.recv(4096).startswith(b"SIP/2.0"):
                    return
            except OSError:
                time.sleep(0.3)
    pytest.fail(f"no SIP media worker on UDP {port}")


def _to_8k(path: Path) -> npt.NDArray[np.float64]:
    clip = read_audio(path)
    mono = mix_to_mono(clip.samples)
    return resample(mono, clip.sample_rate, 8000).astype(np.float64)


@pytest.mark.parametrize(
    ("line", "number", "lang", "prefer", "limit"),
    [
        pytest.param("navigator-en", "95501", "en", "jfk", 0.25, id="navigator-en-jfk"),
        pytest.param("navigator", "95500", "zh", "aishell_tfasr", 0.35, id="navigator-zh-aishell"),
    ],
)
def test_call_is_answered_transcribed_and_recorded(
    served: Served, tmp_path: Path, line: str, number: str, lang: str, prefer: str, limit: float
) -> None:
    source, reference = manifest_item(lang, prefer)
    since = datetime.now(UTC).replace(microsecond=0)
    caller = BaresipCaller(work_dir=tmp_path)
    heard = tmp_path / "heard.wav"
    outcome = caller.call(f"sip:{number}@127.0.0.1:{served.sip_port}", source, record_to=heard)
    assert outcome.answered and outcome.sip_code == 200, outcome.log
    assert outcome.exit_status == 0, outcome.log
    detail = served.wait_for_call(line, since)

    assert detail["answered_at"] and detail["ended_at"]
    assert detail["end_reason"] == "normal", detail
    text = " ".join(u["text"] for u in detail["utterances"])
    rate = error_counts(reference, text, "en" if lang == "en" else "zh").rate
    assert rate <= limit, (
        f"{'WER' if lang == 'en' else 'CER'} {rate:.2f} > {limit}: {text!r} vs {reference!r} {[(u['start_ms'], u['end_ms'], u['text']) for u in detail['utterances']]}"
    )

    recording = Path(detail["recording_path"])
    if not recording.is_absolute():
        recording = served.tmp / recording
    sidecar = json.loads(recording.with_name(recording.name + ".json").read_text())
    assert sidecar["sha256"] == hashlib.sha256(recording.read_bytes()).hexdigest()
    clip = read_audio(recording)
    assert clip.channels == 2
    left = resample(clip.samples[:, 0].copy(), clip.sample_rate, 8000).astype(np.float64)
    peak = ncc_peak(left, _to_8k(outcome.played_wav))
    assert peak > 0.5, f"customer channel does not match the source audio (NCC peak {peak:.2f})"

    # No disclosure prompt is configured on the default lines: the bot leg the caller heard is silent.
    assert outcome.recorded_wav is not None
    bot = read_audio(outcome.recorded_wav).samples.astype(np.float64)
    assert bot.size == 0 or float(np.sqrt(np.mean(bot**2))) < 300

    # The media worker publishes RecordingSaved (path, SHA-256, duration) before CallEnded; the server stores it.
    assert detail["recording_sha256"] == sidecar["sha256"]
    assert abs(detail["recording_duration_ms"] - sidecar["duration_ms"]) <= 100


def test_demo_call_prints_the_stored_transcript(served: Served) -> None:
    _, reference = manifest_item("en")  # the clip the command plays: the first English one in the manifest
    proc = subprocess.run(
        [sys.executable, "-m", "voxdesk.cli", "demo", "call", "--line", "navigator-en"],
        cwd=served.tmp,
        env=served.env,
        capture_output=True,
        text=True,
        timeout=80,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = proc.stdout.split("reference:")[0].lower()
    expected = sorted({w for w in re.findall(r"[a-z]+", reference.lower()) if len(w) >= 5})[:8]
    found = [w for w in expected if w in table]
    assert len(found) >= 3, proc.stdout


def test_demo_call_fails_clearly_without_a_server(served: Served) -> None:
    env = {**served.env, "VOXDESK_TELEPHONY_SIP_PORT": str(free_udp_port())}
    wav = served.tmp / "short.wav"
    from core.audio import AudioClip, write_audio

    write_audio(wav, AudioClip(np.zeros(8000, dtype=np.int16), 8000, 1))
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "voxdesk.cli", "demo", "call", "--line", "navigator-en", "--wav", str(wav)],
        cwd=served.tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "no answer" in proc.stderr and "voxdesk serve" in proc.stderr
    assert time.monotonic() - started < 30


def test_serve_stops_on_sigterm_without_leaks(served: Served) -> None:
    import psutil

    parent = psutil.Process(served.process.pid)
    children = parent.children(recursive=True)
    assert children
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=20) == 0, served.log.read_text()[-3000:]
    for child in children:
        assert not psutil.pid_exists(child.pid) or psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE
