"""A scripted SIP peer that answers: baresip listening as ``agent101``, auto-answering, playing a WAV, recording.

The answering counterpart of :class:`telephony.peers.BaresipCaller` (same baresip 1.0.0 config, modules and
dumps): a human agent's softphone for transfer and bridging tests, or a far end for peer-to-peer checks.

- one account ``<sip:USER@HOST>;regint=0;answermode=auto``: baresip answers the first incoming INVITE at once
  (200 OK, no ringing time) and starts media;
- the WAV is converted to 8 kHz mono (:func:`telephony.peers.prepare_wav`) and followed by ``hold_s`` of silence:
  baresip's ``aufile`` source starts with the media, and when the file runs out baresip's menu hangs up, so the
  agent stays on the line for the WAV plus ``hold_s`` unless the far end hangs up (or :meth:`BaresipAgent.stop`
  is called) first;
- ``sndfile`` dumps what the agent heard (``*-dec.wav``) and what it sent (``*-enc.wav``), 8 kHz mono.

It is meant for one call: a second INVITE while the first is up would be answered too. Blocking calls on the
calling thread; baresip's console is read on a daemon thread.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

from telephony.peers import (
    BaresipWatch,
    CallOutcome,
    free_udp_port,
    newest_file,
    prepare_wav,
    spawn_baresip,
    stop_baresip,
    write_baresip_config,
)

__all__ = ["BaresipAgent"]


class BaresipAgent:
    """A baresip process that auto-answers one call on ``sip:USER@HOST:PORT``, plays a WAV and records.

    >>> with BaresipAgent(work_dir=tmp, port=5070) as agent:             # doctest: +SKIP
    ...     agent.start(Path("greeting.wav"))                             # returns once baresip listens
    ...     BaresipCaller(work_dir=tmp).call(agent.uri, Path("hello.wav"))
    ...     outcome = agent.stop()                                        # answered, recorded_wav, played_wav, log

    ``port`` is the UDP port baresip's SIP stack listens on (a free one when ``None``). ``work_dir`` holds the
    config folder, the converted WAV and the dumps (a new temporary folder under it, or under the system's
    temporary folder when ``None``; left in place so the returned paths stay valid).
    """

    def __init__(
        self,
        *,
        user: str = "agent101",
        port: int | None = None,
        work_dir: Path | None = None,
        baresip: str = "/usr/bin/baresip",
        module_path: Path = Path("/usr/lib/baresip/modules"),
        local_host: str = "127.0.0.1",
        hold_s: float = 60.0,
        listen_s: float = 300.0,
        ready_timeout_s: float = 10.0,
        stop_grace_s: float = 5.0,
    ) -> None:
        """``hold_s``: seconds of silence after the WAV before the agent hangs up by itself. ``listen_s``: a
        backstop; baresip quits by itself this long plus the played length after :meth:`start`. ``ready_timeout_s``:
        how long :meth:`start` waits for baresip to listen. ``stop_grace_s``: SIGTERM to SIGKILL in :meth:`stop`."""
        self.user = user
        self.port = port if port is not None else free_udp_port(local_host)
        self.work_dir = work_dir
        self.baresip = baresip
        self.module_path = module_path
        self.local_host = local_host
        self.hold_s = hold_s
        self.listen_s = listen_s
        self.ready_timeout_s = ready_timeout_s
        self.stop_grace_s = stop_grace_s
        self._process: subprocess.Popen[bytes] | None = None
        self._watch: BaresipWatch | None = None
        self._reader: threading.Thread | None = None
        self._played: Path | None = None
        self._dump_dir: Path | None = None
        self._outcome: CallOutcome | None = None

    @property
    def uri(self) -> str:
        """Where to call the agent: ``sip:USER@HOST:PORT``."""
        return f"sip:{self.user}@{self.local_host}:{self.port}"

    def start(self, wav: Path) -> None:
        """Start baresip with ``wav`` (any WAV/FLAC; converted to 8 kHz mono) as what the agent says once a call is
        up; returns once baresip listens (its console printed ``baresip is ready.``), within ``ready_timeout_s``.

        Raises :class:`RuntimeError` when already started, and :class:`OSError` when baresip exits or does not get
        ready in time (e.g. the port is taken); the message ends with its console output.
        """
        if self._process is not None:
            raise RuntimeError("BaresipAgent was already started")
        folder = Path(tempfile.mkdtemp(prefix="baresip-agent-", dir=self.work_dir))
        played = folder / "play-8k.wav"
        duration_s = prepare_wav(wav, played, tail_silence_s=self.hold_s)
        dump_dir = folder / "dump"
        dump_dir.mkdir()
        account = f"<sip:{self.user}@{self.local_host}>;regint=0;answermode=auto"
        conf = write_baresip_config(folder, played, dump_dir, self.local_host, self.port, self.module_path, account)
        backstop = int(self.listen_s + duration_s) + 1
        command = [self.baresip, "-4", "-f", str(conf), "-t", str(backstop)]
        self._played, self._dump_dir = played, dump_dir
        self._process, self._watch, self._reader = spawn_baresip(command, folder)
        deadline = time.monotonic() + self.ready_timeout_s
        while not self._watch.ready.wait(0.05):
            if self._process.poll() is not None or self._watch.finished.is_set() or time.monotonic() > deadline:
                self.stop()
                assert self._outcome is not None
                raise OSError(f"baresip did not start listening on {self.uri}:\n{self._outcome.log}")

    def wait_answered(self, timeout_s: float) -> bool:
        """Block up to ``timeout_s`` seconds for a call to be established; whether one was."""
        watch = self._require_started()
        deadline = time.monotonic() + timeout_s
        while not watch.answered.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or watch.finished.is_set() or (self._process and self._process.poll() is not None):
                return watch.answered.is_set()
            watch.answered.wait(min(0.05, remaining))
        return True

    def wait_ended(self, timeout_s: float) -> bool:
        """Block up to ``timeout_s`` seconds for the call to end (either side hung up, or baresip exited);
        whether it did."""
        return self._require_started().finished.wait(timeout_s)

    def stop(self) -> CallOutcome:
        """Hang up if a call is up, stop baresip (SIGTERM, SIGKILL after ``stop_grace_s``) and report. Blocking;
        calling it again returns the same outcome.

        ``reason`` is ``"hung up"`` (the call ended before the stop: the far end hung up, or the WAV and ``hold_s``
        ran out), ``"stopped"`` (the call was up when :meth:`stop` ended it) or ``"no call"``. ``recorded_wav``
        is what the agent heard and ``sent_wav`` what it sent (8 kHz mono), when baresip wrote them.
        """
        if self._outcome is not None:
            return self._outcome
        watch = self._require_started()
        assert self._process is not None and self._reader is not None
        assert self._played is not None and self._dump_dir is not None
        ended_before_stop = watch.ended_at is not None
        exit_status = stop_baresip(self._process, self.stop_grace_s)
        self._reader.join(timeout=5)
        answered = watch.answered_at is not None
        if watch.answered_at is not None:
            reason = "hung up" if ended_before_stop else "stopped"
            talk_s = (watch.ended_at or time.monotonic()) - watch.answered_at
        else:
            reason, talk_s = "no call", 0.0
        self._outcome = CallOutcome(
            exit_status=exit_status,
            answered=answered,
            sip_code=200 if answered else None,
            reason=reason,
            played_wav=self._played,
            recorded_wav=newest_file(self._dump_dir, "-dec.wav"),
            sent_wav=newest_file(self._dump_dir, "-enc.wav"),
            talk_s=talk_s,
            log="\n".join(watch.lines),
        )
        return self._outcome

    def _require_started(self) -> BaresipWatch:
        if self._watch is None:
            raise RuntimeError("BaresipAgent.start() was not called")
        return self._watch

    def __enter__(self) -> BaresipAgent:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._process is not None:
            self.stop()
