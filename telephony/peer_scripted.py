"""A reactive, scripted SIP caller: baresip dials, sends silence, and says one WAV per turn when told to, mid-call.

For voice-navigator tests and benchmarks where the caller must speak its next turn only after the bot has finished
speaking. The same baresip 1.0.0 config as :class:`telephony.peers.BaresipCaller`, plus the ``ctrl_tcp`` module
(commands while the call is up: :mod:`telephony.baresip_ctrl`). Verified by experiment on baresip 1.0.0 (Debian 12):

- ``ausrc aufile,<path>`` switches the audio source of the running call. The far end receives the new file from
  its first sample, in the first RTP packet after the switch: ~4 ms after the reply (measured on 127.0.0.1). A file
  that does not open still answers ``ok: true``; the failure is only in ``data`` (checked here);
- ``aufile`` reads the whole file at the switch, and when it reaches the end of the file the menu hangs the call up
  (``AUDIO_ERROR 0,end of file``). So the call starts on a long silence WAV (``silence_s``) and every turn has a long
  silence tail (``tail_s``): the call hangs up by itself only when that much silence has run out;
- ``sndcode <digits>`` sends RFC 2833 telephone events (the first packet within ~20 ms of the reply, then about
  230 ms per digit); it exists only while a call is up and stops at the first invalid digit, so digits are checked
  here first. (The ``cons`` module, UDP keystrokes, also works — a digit key sends DTMF — but is not used.)

baresip's console is read on a daemon thread (:class:`telephony.peers.BaresipWatch`); everything else, the
control socket included, runs and blocks on the calling thread. Times returned are ``time.time()`` epoch seconds.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt

from core.audio import AudioClip, write_audio
from core.errors import InvalidInputError
from telephony.baresip_ctrl import BaresipCommandError, BaresipControl, free_tcp_port
from telephony.peers import (
    CODEC_RATE,
    BaresipWatch,
    free_udp_port,
    newest_file,
    prepare_wav,
    spawn_baresip,
    stop_baresip,
    write_baresip_config,
)

__all__ = ["DTMF_DIGITS", "BaresipCommandError", "SaidTurn", "ScriptedCallResult", "ScriptedCaller"]

DTMF_DIGITS = "0123456789*#ABCD"
"""The RFC 2833 events baresip's ``sndcode`` accepts."""


@dataclass(frozen=True)
class SaidTurn:
    """One :meth:`ScriptedCaller.say`: what was sent and when baresip acknowledged the switch."""

    source: Path
    """The WAV given to :meth:`ScriptedCaller.say`."""
    wav: Path
    """What baresip played: ``source`` at 8 kHz mono 16-bit, followed by the silence tail."""
    speech_s: float
    """Length of ``source`` (s), without the tail."""
    sent_at: float
    """Epoch seconds when the ``ausrc`` command was sent."""
    acked_at: float
    """Epoch seconds when baresip answered it (the new source was running)."""


@dataclass(frozen=True)
class ScriptedCallResult:
    """What happened to the call of a :class:`ScriptedCaller`."""

    exit_status: int
    """baresip's exit status (``-9``/``-15`` when it had to be killed by signal)."""
    answered: bool
    """Whether the call was established."""
    sip_code: int | None
    """200 for an answered call; the final SIP error code otherwise (408 for no answer), if known."""
    reason: str
    """``"hung up"`` (answered), ``"no answer"``, ``"no call"`` or the SIP reason / baresip's error."""
    answered_at: float | None
    """Epoch seconds when baresip printed ``Call established``."""
    ended_at: float | None
    """Epoch seconds when the call ended (either side), if it was seen to end before baresip exited."""
    turns: tuple[SaidTurn, ...]
    """Every :meth:`ScriptedCaller.say`, in order."""
    recorded_wav: Path | None
    """What the caller heard (sndfile's ``*-dec.wav``, 8 kHz mono 16-bit), copied to ``record_to`` when given."""
    sent_wav: Path | None
    """What the caller sent (sndfile's ``*-enc.wav``, 8 kHz mono 16-bit)."""
    talk_s: float
    """Seconds from answer to hangup (0 when not answered)."""
    log: str
    """baresip's console output (status-bar lines removed)."""


class ScriptedCaller:
    """One baresip process, one call: :meth:`dial`, then :meth:`say` / :meth:`dtmf` whenever the script wants,
    :meth:`hangup`, :meth:`stop`.

    >>> with ScriptedCaller(work_dir=tmp) as caller:                      # doctest: +SKIP
    ...     assert caller.dial("sip:95501@127.0.0.1:5060")              # waits for the answer
    ...     caller.wait_for_quiet(quiet_s=0.8)                           # the bot's greeting is over
    ...     acked = caller.say(Path("question.wav"))                     # epoch s of the switch
    ...     caller.dtmf("1#")
    ...     caller.hangup()
    ...     result = caller.stop(record_to=tmp / "heard.wav")

    ``work_dir`` holds the config folder, the converted WAVs and baresip's dumps (a new temporary folder under it,
    or under the system's temporary folder when ``None``; left in place so the returned paths stay valid).
    Use it from one thread: every method blocks the calling thread (the console reader is a daemon thread).
    """

    def __init__(
        self,
        *,
        work_dir: Path | None = None,
        baresip: str = "/usr/bin/baresip",
        module_path: Path = Path("/usr/lib/baresip/modules"),
        local_host: str = "127.0.0.1",
        caller_user: str = "caller",
        answer_timeout_s: float = 10.0,
        ready_timeout_s: float = 10.0,
        command_timeout_s: float = 5.0,
        silence_s: float = 300.0,
        tail_s: float = 300.0,
        max_run_s: float = 1800.0,
        jitter_frames: int = 1,
        stop_grace_s: float = 5.0,
        auto_answer: bool = False,
    ) -> None:
        """``silence_s``: the silence the call starts with (the call hangs up by itself if no :meth:`say` comes
        within it); ``tail_s``: the silence after each turn (the same, counted from the end of that turn).
        ``max_run_s``: a backstop, baresip quits by itself this long after :meth:`start`. ``command_timeout_s``:
        how long a control command may take to be answered. ``jitter_frames``: the least delay of baresip's
        receive jitter buffer (20 ms frames; baresip's default of 5 makes :meth:`heard` lag ~100 ms behind the
        packets, 1 about 30 ms). ``stop_grace_s``: SIGTERM to SIGKILL in :meth:`stop`.
        """
        self.work_dir = work_dir
        self.baresip = baresip
        self.module_path = module_path
        self.local_host = local_host
        self.caller_user = caller_user
        self.answer_timeout_s = answer_timeout_s
        self.ready_timeout_s = ready_timeout_s
        self.command_timeout_s = command_timeout_s
        self.silence_s = silence_s
        self.tail_s = tail_s
        self.max_run_s = max_run_s
        self.jitter_frames = jitter_frames
        self.stop_grace_s = stop_grace_s
        self.auto_answer = auto_answer
        self.sip_port: int | None = None
        """The UDP port baresip's SIP listens on (after :meth:`start`)."""
        self._folder: Path | None = None
        self._silence: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._watch: BaresipWatch | None = None
        self._reader: threading.Thread | None = None
        self._control: BaresipControl | None = None
        self._dialed = False
        self._timed_out = False
        self._prepared: dict[tuple[Path, float], tuple[Path, float]] = {}
        self._turns: list[SaidTurn] = []
        self._result: ScriptedCallResult | None = None
        self._heard_path: Path | None = None
        self._heard_start: int | None = None
        self._heard = np.zeros(0, np.int16)
        self._heard_n = 0
        self._heard_odd = b""
        self._epoch_offset = time.time() - time.monotonic()

    @property
    def answered(self) -> bool:
        """Whether the call was established (it may have ended since)."""
        return self._watch is not None and self._watch.answered.is_set()

    @property
    def in_call(self) -> bool:
        """Whether the call is established and has not ended."""
        return self.answered and self._watch is not None and not self._watch.finished.is_set()

    def start(self) -> None:
        """Start baresip (SIP on a free UDP port, ``ctrl_tcp`` on a free TCP port, both on ``local_host``) and
        connect to its control port; returns once both are up, within ``ready_timeout_s``. ``with`` calls it.

        Raises :class:`RuntimeError` when already started, :class:`OSError` when baresip exits, does not get ready
        in time or its control port does not accept (the message ends with its console output).
        """
        if self._process is not None:
            raise RuntimeError("ScriptedCaller was already started")
        folder = Path(tempfile.mkdtemp(prefix="baresip-scripted-", dir=self.work_dir))
        self._folder = folder
        self._silence = folder / "silence-8k.wav"
        write_audio(self._silence, AudioClip(np.zeros(int(self.silence_s * CODEC_RATE), np.int16), CODEC_RATE, 1))
        dump_dir = folder / "dump"
        dump_dir.mkdir()
        account = f"<sip:{self.caller_user}@{self.local_host}>;regint=0"
        if self.auto_answer:
            account += ";answermode=auto"
        sip_port, ctrl_port = free_udp_port(self.local_host), free_tcp_port(self.local_host)
        self.sip_port = sip_port
        conf = write_baresip_config(
            folder, self._silence, dump_dir, self.local_host, sip_port, self.module_path, account
        )
        with (conf / "config").open("a") as config:
            config.write(f"jitter_buffer_delay\t\t{self.jitter_frames}-10\n")
            config.write(f"module_app\t\tctrl_tcp.so\nctrl_tcp_listen\t\t{self.local_host}:{ctrl_port}\n")
        command = [self.baresip, "-4", "-f", str(conf), "-t", str(int(self.max_run_s) + 1)]
        self._process, self._watch, self._reader = spawn_baresip(command, folder)
        deadline = time.monotonic() + self.ready_timeout_s
        while not self._watch.ready.wait(0.05):
            if self._process.poll() is not None or self._watch.finished.is_set() or time.monotonic() > deadline:
                raise OSError(f"baresip did not get ready:\n{self.stop().log}")
        try:
            self._control = BaresipControl(self.local_host, ctrl_port, self.command_timeout_s)
        except OSError as exc:
            raise OSError(f"baresip's ctrl_tcp port {ctrl_port} does not accept ({exc}):\n{self.stop().log}") from exc

    def dial(self, uri: str) -> bool:
        """Call ``uri`` (starting baresip first if needed) and wait up to ``answer_timeout_s`` for the answer;
        whether the call was established. An unanswered call is cancelled; a failed one ends (see :meth:`stop`
        for the SIP code). One call per caller: a second :meth:`dial` raises :class:`RuntimeError`."""
        if self._process is None:
            self.start()
        if self._dialed:
            raise RuntimeError("ScriptedCaller places one call; this one was already dialed")
        self._dialed = True
        watch = self._require_watch()
        self._command("dial", uri)
        deadline = time.monotonic() + self.answer_timeout_s
        while not watch.answered.wait(0.02):
            if watch.finished.is_set():
                return False
            if time.monotonic() > deadline:
                self._timed_out = True
                self._command("hangup")
                return False
        return True

    def wait_answered(self, timeout_s: float) -> bool:
        """A callee (``auto_answer``): wait up to ``timeout_s`` for a call to be offered and answered."""
        watch = self._require_watch()
        if not watch.answered.wait(timeout_s):
            return False
        self._dialed = True
        return True

    def prepare(self, wav: Path) -> Path:
        """Convert ``wav`` (any WAV/FLAC) to the 8 kHz mono WAV with its silence tail that :meth:`say` sends, once
        per file (cached by path and modification time); returns it. Call it ahead of time to keep the conversion
        out of a timed turn. Blocking file I/O."""
        return self._prepare(wav)[0]

    def say(self, wav: Path) -> float:
        """From now on send ``wav`` (converted by :meth:`prepare`), then silence; returns the epoch seconds at which
        baresip acknowledged the switch. The far end hears the file from its start, replacing whatever was being
        sent (a turn still playing is cut off). Raises :class:`RuntimeError` when no call is up and
        :class:`BaresipCommandError` when baresip fails to open the file."""
        self._require_call()
        played, speech_s = self._prepare(wav)
        sent_at = time.time()
        acked_at = self._switch_source(played)
        self._turns.append(SaidTurn(wav, played, speech_s, sent_at, acked_at))
        return acked_at

    def silence(self) -> float:
        """Stop speaking at once: switch back to the silence WAV; returns the epoch seconds of the acknowledgement."""
        self._require_call()
        assert self._silence is not None
        return self._switch_source(self._silence)

    def dtmf(self, digits: str) -> float:
        """Send ``digits`` (of :data:`DTMF_DIGITS`) as RFC 2833 telephone events with baresip's ``sndcode``; returns
        the epoch seconds of the acknowledgement. baresip queues the digits and sends them one after the other
        over the next few hundred ms while the audio goes on. Raises :class:`~core.errors.InvalidInputError` for
        other characters and :class:`RuntimeError` when no call is up."""
        if not digits or any(d not in DTMF_DIGITS for d in digits):
            raise InvalidInputError("DTMF digits must be 0-9, *, #, A-D", digits=digits)
        self._require_call()
        self._command("sndcode", digits)
        return time.time()

    def heard(self) -> npt.NDArray[np.int16]:
        """What the caller has heard so far (8 kHz mono int16, read-only), read live from sndfile's dump: it grows
        by one 20 ms frame per received packet, after the jitter buffer (``jitter_frames``). Empty before the call
        is up. Reads only what was added since the last call (blocking file I/O)."""
        watch = self._require_watch()
        if self._folder is None or not watch.answered.is_set():
            return self._heard[:0]
        self._heard_path = self._heard_path or newest_file(self._folder / "dump", "-dec.wav")
        if self._heard_path is None:
            return self._heard[:0]
        with self._heard_path.open("rb") as dump:
            if self._heard_start is None:
                self._heard_start = _wav_data_offset(dump.read(512))
                if self._heard_start is None:
                    return self._heard[:0]
            dump.seek(self._heard_start + 2 * self._heard_n + len(self._heard_odd))
            raw = self._heard_odd + dump.read()
        whole = len(raw) // 2 * 2
        new, self._heard_odd = np.frombuffer(raw[:whole], dtype="<i2"), raw[whole:]
        end = self._heard_n + len(new)
        if end > len(self._heard):
            grown = np.zeros(max(end, 2 * len(self._heard), 60 * CODEC_RATE), np.int16)
            grown[: self._heard_n] = self._heard[: self._heard_n]
            self._heard = grown
        self._heard[self._heard_n : end] = new
        self._heard_n = end
        view = self._heard[:end]
        view.setflags(write=False)
        return view

    def wait_for_quiet(
        self, *, quiet_s: float = 0.8, timeout_s: float = 30.0, level: int = 1000, from_sample: int | None = None
    ) -> bool:
        """Block until the far end has been heard saying something and then been quiet for ``quiet_s`` seconds:
        in what was heard from sample ``from_sample`` on (default: what has been heard so far is skipped), some
        sample exceeds ``level`` (int16 units) and none of the last ``quiet_s`` seconds does. Whether that happened
        within ``timeout_s`` (polled every 20 ms) before the call ended."""
        start = len(self.heard()) if from_sample is None else from_sample
        quiet_n = int(quiet_s * CODEC_RATE)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.in_call:
            heard = self.heard()
            loud = np.flatnonzero(np.abs(heard[start:].astype(np.int32)) > level)
            if loud.size and len(heard) - (start + int(loud[-1]) + 1) >= quiet_n:
                return True
            time.sleep(0.02)
        return False

    def hangup(self) -> bool:
        """Hang up (or cancel) the call and wait up to ``stop_grace_s`` for it to end; whether it ended (``False``
        at once when nothing was dialed)."""
        watch = self._require_watch()
        if not self._dialed:
            return False
        if self._control is not None and self._process is not None and self._process.poll() is None:
            self._command("hangup")
        return watch.finished.wait(self.stop_grace_s)

    def wait_ended(self, timeout_s: float) -> bool:
        """Block up to ``timeout_s`` seconds for the call to end (either side hung up, or baresip exited)."""
        return self._require_watch().finished.wait(timeout_s)

    def stop(self, *, record_to: Path | None = None) -> ScriptedCallResult:
        """Stop baresip (SIGTERM hangs up a call still up; SIGKILL after ``stop_grace_s``) and report. ``record_to``:
        where to copy what the caller heard. Blocking; calling it again returns the first result."""
        if self._result is not None:
            return self._result
        watch = self._require_watch()
        assert self._process is not None and self._reader is not None and self._folder is not None
        if self._control is not None:
            self._control.close()
        exit_status = stop_baresip(self._process, self.stop_grace_s)
        self._reader.join(timeout=5)
        answered = watch.answered_at is not None
        code: int | None
        if answered:
            code, reason = 200, "hung up"
        elif self._timed_out:
            code, reason = 408, "no answer"
        elif not self._dialed:
            code, reason = None, "no call"
        else:
            code, reason = watch.code, watch.reason or "call failed"
        heard = newest_file(self._folder / "dump", "-dec.wav")
        if record_to is not None and heard is not None:
            record_to.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(heard, record_to)
            heard = record_to
        ended = watch.ended_at
        talk_s = ((ended or time.monotonic()) - watch.answered_at) if watch.answered_at is not None else 0.0
        self._result = ScriptedCallResult(
            exit_status=exit_status,
            answered=answered,
            sip_code=code,
            reason=reason,
            answered_at=self._epoch(watch.answered_at),
            ended_at=self._epoch(ended),
            turns=tuple(self._turns),
            recorded_wav=heard,
            sent_wav=newest_file(self._folder / "dump", "-enc.wav"),
            talk_s=talk_s,
            log="\n".join(watch.lines),
        )
        return self._result

    def _prepare(self, wav: Path) -> tuple[Path, float]:
        key = (wav.resolve(), wav.stat().st_mtime)
        if key not in self._prepared:
            folder = self._folder or Path(tempfile.mkdtemp(prefix="baresip-scripted-", dir=self.work_dir))
            self._folder = folder
            target = folder / f"say-{len(self._prepared) + 1}-8k.wav"
            total_s = prepare_wav(wav, target, tail_silence_s=self.tail_s)
            self._prepared[key] = (target, total_s - self.tail_s)
        return self._prepared[key]

    def _switch_source(self, wav: Path) -> float:
        data = self._command("ausrc", f"aufile,{wav}")
        acked_at = time.time()
        if "failed" in data or "Format should be" in data:
            raise BaresipCommandError("baresip could not switch the audio source", path=str(wav), reply=data)
        return acked_at

    def _command(self, name: str, params: str | None = None) -> str:
        if self._control is None:
            raise RuntimeError("ScriptedCaller.start() was not called (or it was stopped)")
        return self._control.command(name, params)

    def _require_watch(self) -> BaresipWatch:
        if self._watch is None:
            raise RuntimeError("ScriptedCaller.start() was not called")
        return self._watch

    def _require_call(self) -> None:
        if not self.in_call:
            raise RuntimeError("no call is up")

    def _epoch(self, monotonic_s: float | None) -> float | None:
        return None if monotonic_s is None else monotonic_s + self._epoch_offset

    def __enter__(self) -> ScriptedCaller:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._process is not None:
            self.stop()


def _wav_data_offset(head: bytes) -> int | None:
    """Where the samples start in a WAV that may still be being written (its sizes not filled in yet)."""
    at = head.find(b"data", 12)
    return at + 8 if at >= 0 and len(head) >= at + 8 else None
