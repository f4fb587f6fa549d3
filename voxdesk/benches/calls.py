"""``voxdesk bench calls``: N real SIP calls at once, each playing real speech, through the real processes.

One run, for ``concurrent`` = N (CLI process, blocking; a few seconds of set-up, then ``seconds`` of calls):

1. a private work folder (bus and speech sockets, recordings, statistics), a ZeroMQ bus proxy in this process and
   a subscriber that stamps every event with its arrival time (epoch ms);
2. ``asr.speech_workers`` speech worker processes (the configured recogniser and VAD) and ``ceil(N / 4)`` SIP
   media worker processes on free loopback ports — the same programs ``voxdesk serve`` runs, with the user's
   settings except for ports and folders;
3. one sipp caller (Debian ``sip-tester``) per call, their starts spread over ``ramp_s``: calls alternate between a
   Chinese and an English navigator line (or use one language); each plays its own program of real speech clips
   from the shared speech manifest (each call starts at a different clip) as G.711 RTP
   (:mod:`voxdesk.benches.call_audio`, :mod:`telephony.pcap`) and hangs up;
4. the media workers, then the speech workers, are stopped with SIGTERM and write their statistics files;
5. :func:`voxdesk.benches.calls_report.analyse` turns it all into per-call rows and one summary.

CPU: the CPU seconds used by the Voxdesk processes during the calls, as a percentage of all cores
(``cpu_percent``), and the whole machine's busy percentage (``machine_cpu_percent``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
import numpy.typing as npt
import psutil
import zmq

from core.bus.zmq_bus import ZmqBusProxy
from core.errors import ConfigError, InvalidInputError, VoxdeskError
from core.events import Event, event_from_json, event_kind
from core.logging import get_logger
from telephony.peers import free_udp_ports
from telephony.sipp import SippCaller, SippRun, playing_call_scenario
from voxdesk.benches.call_audio import CallProgram, build_program
from voxdesk.benches.calls_report import CallRow, analyse
from voxdesk.benches.children import BenchError, StackChild, spawn_child
from voxdesk.evals.asr import ManifestEntry, load_manifest
from voxdesk.settings import LineSettings, Settings

if TYPE_CHECKING:
    from voxdesk.container import Container

__all__ = [
    "BenchError",
    "CallsBenchPlan",
    "EventRecorder",
    "free_port_block",
    "private_container",
    "private_env",
    "read_stats_files",
    "run_calls_bench",
    "stop_processes",
]

log = get_logger(__name__)
BenchLang = Literal["zh", "en", "mixed"]
_READY_TIMEOUT_S = 90.0
_STOP_TIMEOUT_S = 30.0
_DRAIN_QUIET_S = 3.0
_DRAIN_MAX_S = 60.0


@dataclass(frozen=True)
class CallsBenchPlan:
    """What one run does: ``concurrent`` calls of ``seconds`` (s) each, in ``lang``."""

    concurrent: int
    seconds: float
    lang: BenchLang = "mixed"
    speech_workers: int | None = None
    """Speech worker processes (``None``: ``asr.speech_workers``)."""
    codec: Literal["pcmu", "pcma"] = "pcmu"
    ramp_s: float = 5.0
    """Call starts are spread evenly over this many seconds (about one utterance), like independent callers."""


class EventRecorder:
    """A SUB socket on the bus proxy's backend in a thread: every event with its arrival time (epoch ms)."""

    def __init__(
        self,
        context: zmq.Context[zmq.Socket[bytes]],
        endpoint: str,
        topics: Sequence[str] = ("call.", "speech."),
    ) -> None:
        self.events: list[tuple[float, Event]] = []
        self._socket = context.socket(zmq.SUB)
        for topic in (t.encode() for t in topics):
            self._socket.setsockopt(zmq.SUBSCRIBE, topic)
        self._socket.connect(endpoint)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-events", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._socket.poll(50):
                frames = self._socket.recv_multipart()
                arrived = time.time() * 1000.0
                with contextlib.suppress(VoxdeskError, ValueError):
                    self.events.append((arrived, event_from_json(frames[-1])))

    def last_arrival(self, kind: str) -> float:
        return max((t for t, e in self.events if event_kind(e) == kind), default=0.0)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close(linger=0)


def private_env(
    settings: Settings,
    work: Path,
    *,
    database: str,
    media_workers: int,
    sip_port: int,
    rtp_port: int,
    config_file: Path | None = None,
) -> dict[str, str]:
    """The environment of a private Voxdesk in ``work``: this process's environment and settings (``config_file``)
    except for the database (SQLite file ``database`` in ``work``), the bus and speech sockets, the SIP and RTP
    ports of ``media_workers`` media workers, the recordings folder and the shared model cache."""
    env = dict(os.environ)
    if config_file is not None:
        env["VOXDESK_CONFIG"] = str(config_file.resolve())
    env.update(
        VOXDESK_VAR_DIR=str(work / "var"),
        VOXDESK_DATABASE_URL=f"sqlite:///{work}/{database}",
        VOXDESK_BUS_BACKEND="zmq",
        VOXDESK_BUS_ZMQ_FRONTEND=f"ipc://{work}/bus-in.sock",
        VOXDESK_BUS_ZMQ_BACKEND=f"ipc://{work}/bus-out.sock",
        VOXDESK_ASR_SPEECH_ENDPOINT_TEMPLATE=f"ipc://{work}/speech-{{index}}.sock",
        VOXDESK_TELEPHONY_PLAY_ENDPOINT_TEMPLATE=f"ipc://{work}/play-{{index}}.sock",
        VOXDESK_TELEPHONY_MEDIA_WORKERS=str(media_workers),
        VOXDESK_TELEPHONY_SIP_HOST="127.0.0.1",
        VOXDESK_TELEPHONY_SIP_PORT=str(sip_port),
        VOXDESK_TELEPHONY_RTP_PORT_START=str(rtp_port),
        VOXDESK_RECORDING_DIRECTORY=str(work / "recordings"),
        VOXDESK_MODELS_CACHE_DIR=str(settings.models.cache_dir.resolve()),
        VOXDESK_LOGGING_JSON_LOGS="true",
    )
    return env


def private_container(settings: Settings, env: Mapping[str, str]) -> Container:
    """The container of the private stack whose environment is ``env`` (its database, ``VOXDESK_DATABASE_URL``),
    opened from this process with ``settings`` otherwise; the caller closes it."""
    from voxdesk.container import build_container

    database = settings.database.model_copy(update={"url": env["VOXDESK_DATABASE_URL"]})
    return build_container(settings.model_copy(update={"database": database}))


def read_stats_files(work: Path, processes: Sequence[tuple[str, subprocess.Popen[str]]]) -> list[dict[str, Any]]:
    """The statistics each stopped (name, process) wrote to ``work/<name>.json`` at exit, in order; raises
    :class:`BenchError` naming one that wrote none."""
    out = []
    for name, process in processes:
        path = work / f"{name}.json"
        if not path.is_file():
            raise BenchError(f"{name} wrote no statistics (exit {process.returncode})")
        out.append(json.loads(path.read_text(encoding="utf-8")))
    return out


def stop_processes(processes: Sequence[tuple[str, subprocess.Popen[str]]], timeout_s: float = _STOP_TIMEOUT_S) -> None:
    """SIGTERM every (name, process) still running, then wait for each; SIGKILL one that outlives ``timeout_s``."""
    for _, process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for name, process in processes:
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("bench child killed after SIGTERM timeout", child=name)
            process.kill()
            process.wait()


def free_port_block(count: int, *, step: int = 1) -> int:
    """A base port such that ``base + i * step`` (i < count) are free UDP ports on 127.0.0.1 now."""
    try:
        return free_udp_ports(count, step=step)[0]
    except OSError as exc:
        raise BenchError("no block of free UDP ports on 127.0.0.1") from exc


def caller_number(index: int) -> str:
    """The caller number (E.164) of benchmark call ``index``."""
    return f"+86138{index:08d}"


def _navigator_lines(settings: Settings) -> dict[str, LineSettings]:
    """lang → the first navigator line in that language."""
    lines: dict[str, LineSettings] = {}
    for line in settings.telephony.lines:
        if line.kind == "navigator" and line.lang in ("zh", "en"):
            lines.setdefault(line.lang, line)
    return lines


class _Run:
    """Processes and sockets of one benchmark run; :meth:`close` always tears everything down."""

    def __init__(self, settings: Settings, plan: CallsBenchPlan, work: Path, config_file: Path | None) -> None:
        self.settings, self.plan, self.work = settings, plan, work
        self.per_worker = max(1, settings.telephony.max_calls_per_worker)
        self.media_workers = math.ceil(plan.concurrent / self.per_worker)
        self.speech_workers = plan.speech_workers or settings.asr.speech_workers
        self.sip_port = free_port_block(self.media_workers)
        self.rtp_port = free_port_block(self.media_workers, step=100)
        self.env = private_env(
            settings,
            work,
            database="bench.db",
            media_workers=self.media_workers,
            sip_port=self.sip_port,
            rtp_port=self.rtp_port,
            config_file=config_file,
        )
        self.env["VOXDESK_ASR_SPEECH_WORKERS"] = str(self.speech_workers)
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.proxy = ZmqBusProxy(self.env["VOXDESK_BUS_ZMQ_FRONTEND"], self.env["VOXDESK_BUS_ZMQ_BACKEND"])
        self.proxy.start()
        self.recorder = EventRecorder(self.context, self.proxy.backend)
        self.speech: list[StackChild] = []
        self.media: list[StackChild] = []
        self.callers: list[SippCaller] = []

    def spawn(self, name: str, module: str, index: int, marker: str) -> StackChild:
        argv = [module, "--index", str(index), "--stats-file", str(self.work / f"{name}.json")]
        return spawn_child(name, argv, self.env, Path.cwd(), marker)

    def start_workers(self) -> None:
        self.speech = [
            self.spawn(f"speech-{i}", "voxdesk.speech_main", i, "speech worker listening")
            for i in range(self.speech_workers)
        ]
        self.media = [
            self.spawn(f"media-{i}", "voxdesk.media_main", i, "sip media worker listening")
            for i in range(self.media_workers)
        ]
        deadline = time.monotonic() + _READY_TIMEOUT_S
        for child in [*self.speech, *self.media]:
            child.wait_ready(max(0.0, deadline - time.monotonic()))

    def plan_calls(self, entries: list[ManifestEntry], langs: Sequence[str]) -> dict[str, CallProgram]:
        """Caller number → program: call ``i`` speaks ``langs[i % len(langs)]``, starting at its own clip."""
        clips: dict[str, npt.NDArray[np.int16]] = {}  # each clip read and resampled once for all calls
        return {
            caller_number(i): build_program(
                entries,
                cast(Literal["zh", "en"], langs[i % len(langs)]),
                self.plan.seconds,
                first=i // len(langs),
                cache=clips,
            )
            for i in range(self.plan.concurrent)
        }

    def start_callers(self, programs: dict[str, CallProgram], numbers: dict[str, str]) -> None:
        """One sipp process per call, to media worker ``i // 4``; starts spread evenly over ``plan.ramp_s`` so
        that callers speak independently of each other, as real callers do. Blocks for the ramp."""
        started = time.monotonic()
        for i, (number, program) in enumerate(programs.items()):
            pcap = self.work / f"call-{i}.pcap"
            program.write_pcap(pcap, self.plan.codec)
            scenario = playing_call_scenario(pcap, program.duration_ms, codec=self.plan.codec, caller=number)
            caller = SippCaller(
                scenario,
                work_dir=self.work,
                name=f"caller-{i}",
                target=f"127.0.0.1:{self.sip_port + i // self.per_worker}",
                service=numbers[program.lang],
                calls=1,
                sip_port=free_port_block(1),
                media_port=free_port_block(4),
                timeout_s=self.plan.seconds + 60,
            )
            delay = started + i * self.plan.ramp_s / self.plan.concurrent - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            caller.start()
            self.callers.append(caller)

    def stop(self, children: Sequence[StackChild]) -> None:
        stop_processes([(c.name, c.process) for c in children])

    def drain_speech(self) -> None:
        """Wait until no final transcript has arrived for a few seconds (at most ``_DRAIN_MAX_S``)."""
        started = time.monotonic()
        while time.monotonic() - started < _DRAIN_MAX_S:
            last = max(self.recorder.last_arrival("speech.final"), self.recorder.last_arrival("call.ended"))
            if time.time() * 1000.0 - last > _DRAIN_QUIET_S * 1000.0:
                return
            time.sleep(0.2)

    def stats(self, children: Sequence[StackChild]) -> list[dict[str, Any]]:
        return read_stats_files(self.work, [(c.name, c.process) for c in children])

    def close(self) -> None:
        for caller in self.callers:
            caller.kill()
        self.stop([*self.media, *self.speech])
        self.recorder.close()
        self.proxy.close()
        self.context.destroy(linger=0)


def _cpu_seconds(processes: Sequence[subprocess.Popen[str]]) -> float:
    total = 0.0
    for p in processes:
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(p.pid).cpu_times()
            total += t.user + t.system
    return total


def run_calls_bench(
    settings: Settings, plan: CallsBenchPlan, *, config_file: Path | None = None, keep: bool = False
) -> tuple[list[CallRow], dict[str, Any]]:
    """Run one benchmark (see the module docstring); returns per-call rows and the summary. Blocking."""
    if plan.concurrent < 1 or plan.seconds < 5:
        raise InvalidInputError("need at least 1 call of at least 5 s", concurrent=plan.concurrent)
    if not SippCaller.available():
        raise BenchError("sipp is not installed (apt-get install sip-tester)")
    manifest = settings.shared_data / "speech" / "manifest.jsonl"
    if not manifest.is_file():
        raise BenchError(f"no speech manifest at {manifest} (set VOXDESK_SHARED_DATA to the shared data folder)")
    lines = _navigator_lines(settings)
    langs: list[str] = ["zh", "en"] if plan.lang == "mixed" else [plan.lang]
    missing = [lang for lang in langs if lang not in lines]
    if missing:
        raise ConfigError(f"telephony.lines has no navigator line for {', '.join(missing)}")
    entries = load_manifest(manifest)
    work = Path(tempfile.mkdtemp(prefix="voxdesk-bench-calls-"))
    run = _Run(settings, plan, work, config_file)
    try:
        programs = run.plan_calls(entries, langs)
        run.start_workers()
        ours = [c.process for c in [*run.media, *run.speech]]
        cpu0, machine0, wall0 = _cpu_seconds(ours), psutil.cpu_times(), time.monotonic()
        run.start_callers(programs, {lang: lines[lang].number for lang in langs})
        results: list[SippRun] = [caller.wait() for caller in run.callers]
        cpu1, machine1, wall1 = _cpu_seconds(ours), psutil.cpu_times(), time.monotonic()
        run.stop(run.media)
        run.drain_speech()
        run.stop(run.speech)
        media, speech = run.stats(run.media), run.stats(run.speech)
    finally:
        run.close()
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    cores = psutil.cpu_count() or 1
    busy = (machine1.user + machine1.system + machine1.nice) - (machine0.user + machine0.system + machine0.nice)
    wall = max(1e-3, wall1 - wall0)
    cpu = {
        "cpu_percent": 100.0 * (cpu1 - cpu0) / (wall * cores),
        "machine_cpu_percent": 100.0 * busy / (wall * cores),
        "cores": float(cores),
    }
    for result in results:
        if not result.ok:
            log.warning("a sipp caller reported failed calls", exit_status=result.exit_status)
    rows, summary = analyse(
        concurrent=plan.concurrent,
        seconds=plan.seconds,
        events=run.recorder.events,
        media=media,
        speech=speech,
        programs=programs,
        cpu=cpu,
        callers_ok=all(r.ok for r in results),
    )
    summary.update(media_workers=run.media_workers, speech_workers=run.speech_workers, lang=plan.lang)
    if keep:
        summary["work_dir"] = str(work)
    return rows, summary
