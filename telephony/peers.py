"""Scripted SIP test peers: a baresip caller that dials a URI, plays a WAV, records what it hears and hangs up.

Used by the end-to-end call test and by ``voxdesk demo call``; the answering side, :class:`BaresipAgent`, is in
:mod:`telephony.peer_agent` and shares the helpers here. Written for Debian 12's baresip 1.0.0:

- a fresh config folder (``config`` + ``accounts``) in a temporary folder; SIP on ``127.0.0.1:<free UDP port>``
  (``net_interface 127.0.0.1``), one account with ``regint=0`` (never registers), modules ``g711`` (PCMU/PCMA),
  ``aufile`` (the audio source: the WAV, played once), ``aubridge`` (a silent player), ``sndfile`` (dumps what is
  sent and what is heard as WAV files), ``account`` and ``menu`` (for the ``/dial`` command, given with ``-e``);
- baresip's ``aufile`` needs the WAV at the codec rate, so the input is converted with :mod:`core.audio` to 8 kHz
  mono 16-bit (plus a little trailing silence, so the far end's voice activity detector can close the last
  utterance while the call is still up);
- at the end of the file baresip's menu hangs the call up by itself; the wrapper then stops baresip (SIGTERM,
  SIGKILL after a grace period). A call not answered within ``answer_timeout_s`` is cancelled (the outcome is
  ``408``), and a call is never left up longer than the WAV plus ``hangup_margin_s``.

Nothing here reads the environment: the baresip binary, module folder, addresses and timeouts are all arguments.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.audio import AudioClip, mix_to_mono, read_audio, resample, write_audio

CODEC_RATE = 8000
"""G.711 runs at 8 kHz; baresip's aufile source refuses any other rate."""

_SESSION_CLOSED = re.compile(r"session closed: (?:(\d{3}) )?(.*)$")


@dataclass(frozen=True)
class CallOutcome:
    """What happened to one call of a baresip peer (:class:`BaresipCaller`, or the answering ``BaresipAgent``)."""

    exit_status: int
    """baresip's exit status (``-9``/``-15`` when it had to be killed by signal)."""
    answered: bool
    """Whether the call was established (200 OK)."""
    sip_code: int | None
    """200 for an answered call; the final SIP error code otherwise (408 for no answer / no server), if known."""
    reason: str
    """A short text: ``"hung up"``, ``"no answer"``, the SIP reason phrase or baresip's error."""
    played_wav: Path
    """The 8 kHz mono 16-bit WAV that was played."""
    recorded_wav: Path | None
    """What the caller heard (8 kHz mono WAV), when recording was asked for and baresip wrote it."""
    sent_wav: Path | None
    """What baresip sent (its own dump of the encoder input), when recording was asked for."""
    talk_s: float
    """Seconds from answer to hangup (0 when not answered)."""
    log: str
    """baresip's console output (status-bar lines removed)."""


def free_udp_port(host: str = "127.0.0.1") -> int:
    """A UDP port on ``host`` that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def free_udp_ports(count: int, *, step: int = 1, host: str = "127.0.0.1") -> list[int]:
    """``count`` UDP ports on ``host``, ``step`` apart from an even base in 20000–50000, that are all free right
    now (best effort against races: nothing holds them afterwards). Raises :class:`OSError` when none is found."""
    rng = random.Random()  # noqa: S311 - picking test ports, not a secret
    for _ in range(100):
        base = rng.randrange(20000, 50000, 2)
        ports = [base + i * step for i in range(count)]
        if ports[-1] >= 65000:
            continue
        sockets: list[socket.socket] = []
        try:
            for port in ports:
                sockets.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                sockets[-1].bind((host, port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return ports
    raise OSError("no block of free UDP ports")


def prepare_wav(source: Path, target: Path, *, tail_silence_s: float = 0.0) -> float:
    """Convert ``source`` (any WAV/FLAC that :func:`core.audio.read_audio` reads) to 8 kHz mono 16-bit PCM at
    ``target``, with ``tail_silence_s`` of silence appended. Returns the duration of ``target`` (s)."""
    clip = read_audio(source)
    mono = mix_to_mono(clip.samples)
    pcm = resample(mono, clip.sample_rate, CODEC_RATE) if clip.sample_rate != CODEC_RATE else mono
    if tail_silence_s > 0:
        pcm = np.concatenate([pcm, np.zeros(int(tail_silence_s * CODEC_RATE), dtype=np.int16)])
    write_audio(target, AudioClip(pcm, CODEC_RATE, 1), subtype="PCM_16")
    return len(pcm) / CODEC_RATE


class BaresipCaller:
    """Places one SIP call at a time with baresip: dial, play a WAV, optionally record, hang up, exit.

    >>> caller = BaresipCaller(work_dir=tmp)                      # doctest: +SKIP
    >>> out = caller.call("sip:95501@127.0.0.1:5060", Path("hello.wav"), record_to=tmp / "heard.wav")
    >>> out.answered, out.sip_code, out.recorded_wav                # doctest: +SKIP

    ``work_dir`` holds the generated config folder, the converted WAV and baresip's dumps (a new temporary
    folder per call when ``None``; it is left in place so the returned paths stay valid).
    """

    def __init__(
        self,
        *,
        baresip: str = "/usr/bin/baresip",
        module_path: Path = Path("/usr/lib/baresip/modules"),
        local_host: str = "127.0.0.1",
        caller_user: str = "caller",
        work_dir: Path | None = None,
        answer_timeout_s: float = 10.0,
        hangup_margin_s: float = 10.0,
        tail_silence_s: float = 1.5,
        stop_grace_s: float = 5.0,
    ) -> None:
        self.baresip = baresip
        self.module_path = module_path
        self.local_host = local_host
        self.caller_user = caller_user
        self.work_dir = work_dir
        self.answer_timeout_s = answer_timeout_s
        self.hangup_margin_s = hangup_margin_s
        self.tail_silence_s = tail_silence_s
        self.stop_grace_s = stop_grace_s

    @staticmethod
    def available(baresip: str = "/usr/bin/baresip") -> bool:
        """Whether the baresip binary exists (``apt-get install baresip-core``)."""
        return shutil.which(baresip) is not None

    def write_config(self, folder: Path, wav: Path, dump_dir: Path, sip_port: int) -> Path:
        """Write baresip's ``config`` and ``accounts`` into ``folder/conf``; returns that config folder."""
        account = f"<sip:{self.caller_user}@{self.local_host}>;regint=0"
        return write_baresip_config(folder, wav, dump_dir, self.local_host, sip_port, self.module_path, account)

    def call(self, uri: str, wav: Path, *, record_to: Path | None = None) -> CallOutcome:
        """Dial ``uri``, play ``wav`` (converted to 8 kHz mono), hang up when it ends; blocks until baresip exited.

        ``record_to``: where to put what the caller heard (8 kHz mono WAV); ``None`` records nothing.
        """
        folder = Path(tempfile.mkdtemp(prefix="baresip-", dir=self.work_dir))
        played = folder / "play-8k.wav"
        duration_s = prepare_wav(wav, played, tail_silence_s=self.tail_silence_s)
        dump_dir = folder / "dump"
        dump_dir.mkdir()
        conf = self.write_config(folder, played, dump_dir, free_udp_port(self.local_host))
        max_call_s = duration_s + self.hangup_margin_s
        # -t is only a backstop: the wrapper stops baresip itself.
        backstop = int(self.answer_timeout_s + max_call_s + self.stop_grace_s) + 5
        command = [self.baresip, "-4", "-f", str(conf), "-e", f"/dial {uri}", "-t", str(backstop)]
        process, watch, reader = spawn_baresip(command, folder)
        started = time.monotonic()
        timed_out = False
        try:
            while process.poll() is None and not watch.finished.is_set():
                now = time.monotonic()
                if watch.answered_at is None and now - started > self.answer_timeout_s:
                    timed_out = True
                    break
                if watch.answered_at is not None and now - watch.answered_at > max_call_s:
                    break
                watch.changed.wait(0.1)
                watch.changed.clear()
        finally:
            exit_status = stop_baresip(process, self.stop_grace_s)
            reader.join(timeout=5)
        ended_at = watch.ended_at or time.monotonic()
        talk_s = ended_at - watch.answered_at if watch.answered_at is not None else 0.0
        answered = watch.answered_at is not None
        if answered:
            code: int | None = 200
            reason = "hung up"
        elif timed_out:
            code, reason = 408, "no answer"
        else:
            code = watch.code if watch.code is not None else (408 if "timed out" in watch.reason else None)
            reason = watch.reason or "call failed"
        heard = newest_file(dump_dir, "-dec.wav")
        sent = newest_file(dump_dir, "-enc.wav")
        recorded: Path | None = None
        if record_to is not None and heard is not None:
            record_to.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(heard, record_to)
            recorded = record_to
        return CallOutcome(
            exit_status=exit_status,
            answered=answered,
            sip_code=code,
            reason=reason,
            played_wav=played,
            recorded_wav=recorded,
            sent_wav=sent if record_to is not None else None,
            talk_s=talk_s,
            log="\n".join(watch.lines),
        )


def write_baresip_config(
    folder: Path, wav: Path, dump_dir: Path, local_host: str, sip_port: int, module_path: Path, account: str
) -> Path:
    """Write a baresip 1.0 ``config`` and ``accounts`` (the one ``account`` line) into ``folder/conf``: SIP on
    ``local_host:sip_port``, G.711, ``wav`` (8 kHz mono) as the audio source, a silent player, and ``sndfile``
    dumping both directions into ``dump_dir``. Returns the config folder (for ``baresip -f``)."""
    conf = folder / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    lines = [
        ("poll_method", "poll"),
        ("sip_listen", f"{local_host}:{sip_port}"),
        ("net_interface", local_host),
        ("audio_source", f"aufile,{wav}"),
        ("audio_player", "aubridge,voxdesk-peer"),
        ("audio_alert", "aubridge,voxdesk-peer"),
        ("audio_srate", str(CODEC_RATE)),
        ("audio_channels", "1"),
        ("module_path", str(module_path)),
        ("module", "g711.so"),
        ("module", "aufile.so"),
        ("module", "aubridge.so"),
        ("module", "sndfile.so"),
        ("module_app", "account.so"),
        ("module_app", "menu.so"),
        ("snd_path", str(dump_dir)),
    ]
    (conf / "config").write_text("".join(f"{k}\t\t{v}\n" for k, v in lines))
    (conf / "accounts").write_text(account + "\n")
    return conf


def spawn_baresip(command: list[str], cwd: Path) -> tuple[subprocess.Popen[bytes], BaresipWatch, threading.Thread]:
    """Start baresip (``command`` is its argv) with its console read by a :class:`BaresipWatch` on a daemon
    thread; returns the process, the watch and that reader thread."""
    watch = BaresipWatch()
    process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd
    )
    reader = threading.Thread(target=watch.read, args=(process,), daemon=True, name="baresip-reader")
    reader.start()
    return process, watch, reader


def stop_baresip(process: subprocess.Popen[bytes], grace_s: float) -> int:
    """Stop baresip: SIGTERM (it hangs up / cancels its call), again, then SIGKILL after ``grace_s`` seconds in
    all; returns its exit status. Blocks the calling thread until it has exited."""
    # baresip's first SIGTERM hangs up (or cancels) and waits for its transactions; a second one exits at once.
    for _ in range(2):
        if process.poll() is not None:
            break
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_s / 2)
        except subprocess.TimeoutExpired:
            continue
    if process.poll() is None:
        process.kill()
    return process.wait()


class BaresipWatch:
    """Reads baresip's console (on the reader thread) and notes readiness, answer, hangup and failure as they
    happen; times are ``time.monotonic()`` seconds. ``lines`` is the console without status-bar lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.answered_at: float | None = None
        self.ended_at: float | None = None
        self.code: int | None = None
        self.reason = ""
        self.ready = threading.Event()
        """Set once baresip printed ``baresip is ready.`` (SIP listening, accounts loaded)."""
        self.answered = threading.Event()
        """Set when a call was established."""
        self.finished = threading.Event()
        """Set when the call ended or failed, or baresip's console closed."""
        self.changed = threading.Event()

    def read(self, process: subprocess.Popen[bytes]) -> None:
        """Read the console until baresip closes it (the reader thread's target)."""
        assert process.stdout is not None
        pending = b""
        while chunk := os.read(process.stdout.fileno(), 4096):
            pending += chunk
            *complete, pending = re.split(rb"[\r\n]", pending)
            for raw in complete:
                self._line(raw.decode("utf-8", "replace").strip())
        self._line(pending.decode("utf-8", "replace").strip())
        self.finished.set()
        self.changed.set()

    def _line(self, line: str) -> None:
        if not line or ("audio=" in line and line.startswith("[")) or line.startswith("/"):
            return
        self.lines.append(line)
        if line == "baresip is ready.":
            self.ready.set()
        elif "Call established" in line and self.answered_at is None:
            self.answered_at = time.monotonic()
            self.answered.set()
        elif " terminated (duration" in line or "session closed" in line:
            self.ended_at = self.ended_at or time.monotonic()
            match = _SESSION_CLOSED.search(line)
            if match:
                self.code = int(match.group(1)) if match.group(1) else self.code
                self.reason = match.group(2).strip()
            self.finished.set()
        elif "Call failed" in line or "call failed" in line:
            self.reason = self.reason or line
            self.finished.set()
        self.changed.set()


def newest_file(folder: Path, suffix: str) -> Path | None:
    """The last file in ``folder`` (by name: sndfile's names start with a timestamp) ending in ``suffix``."""
    found = sorted(p for p in folder.iterdir() if p.name.endswith(suffix))
    return found[-1] if found else None
