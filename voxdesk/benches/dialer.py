"""``voxdesk bench dialer``: the real dialer process placing campaign calls through real media workers to sipp.

One run (CLI process, blocking; a few seconds of set-up, then ``seconds`` of dialing):

1. a private work folder with a fresh SQLite database holding one running notification campaign (open around
   the clock, one attempt per contact, ``channels`` channels) and ``contacts`` numbers, more than can be dialed in
   the time; a ZeroMQ bus proxy in this process with an event recorder, and PULL sockets standing in for the
   speech workers (the callee audio is streamed, recorded and dropped);
2. one sipp callee (:mod:`telephony.sipp_uas`) on a loopback port that rings ``ring_ms``, answers, plays real
   G.711 speech (sipp's own pcap) for ``hold_ms`` and hangs up;
3. ``ceil(channels / 4)`` SIP media worker processes and the dialer process (``python -m voxdesk.dialer_main``),
   the same programs ``voxdesk serve`` runs, with ``dialer.routes`` pointing at the callee;
4. after ``seconds`` the dialer is stopped (SIGTERM: it hangs up what is in flight and records it), then the
   media workers and sipp.

Measured: ``attempts_per_min`` (attempts placed in the window per minute), ``channel_utilisation`` (time
attempts were live, from ``dialing`` to their end, over ``channels × seconds``), ``double_dials`` (numbers that got
more than one INVITE: from the ``call.started`` events *and* from the attempts table, whichever is larger),
the outcomes, and whether sipp saw as many calls as the dialer placed.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import zmq
from sqlalchemy import select

from core.bus.zmq_bus import ZmqBusProxy
from core.events import CallStarted
from telephony.dialer.campaigns import NewCampaign
from telephony.dialer.lists import parse_contacts
from telephony.dialer.tables import AttemptRow
from telephony.sipp_uas import SippCallee, callee_scenario
from voxdesk.benches.calls import (
    BenchError,
    EventRecorder,
    free_port_block,
    private_container,
    private_env,
    stop_processes,
)
from voxdesk.benches.children import spawn_child
from voxdesk.settings import Settings

__all__ = ["DialerBenchPlan", "DialerBenchResult", "SpeechSink", "run_dialer_bench"]

_PCAP = Path("/usr/share/sip-tester/g711a.pcap")
_ALL_DAY = {day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
_CAMPAIGN = "bench-dialer"


@dataclass(frozen=True)
class DialerBenchPlan:
    """What to run: ``channels`` concurrent calls for ``seconds`` (s); the callee rings ``ring_ms`` and holds
    ``hold_ms`` (ms)."""

    channels: int = 16
    seconds: float = 60.0
    ring_ms: int = 300
    hold_ms: int = 3000
    contacts: int | None = None
    """Numbers on the list (default: twice what the channels could dial in the time)."""
    tick_s: float = 0.25


@dataclass
class DialerBenchResult:
    """The figures of one run (see the module docstring)."""

    channels: int
    seconds: float
    media_workers: int
    attempts: int
    attempts_per_min: float
    channel_utilisation: float
    double_dials: int
    outcomes: dict[str, int] = field(default_factory=dict)
    sipp_calls: int = 0
    invites_seen: int = 0

    def as_json(self) -> dict[str, Any]:
        """The JSON object of ``--json`` (keys per the "Eval and bench commands" table)."""
        return {
            "attempts_per_min": round(self.attempts_per_min, 1),
            "double_dials": self.double_dials,
            "channel_utilisation": round(self.channel_utilisation, 3),
            "channels": self.channels,
            "seconds": self.seconds,
            "media_workers": self.media_workers,
            "attempts": self.attempts,
            "outcomes": self.outcomes,
            "sipp_calls": self.sipp_calls,
            "invites_seen": self.invites_seen,
        }


class SpeechSink:
    """PULL sockets bound where the speech workers would be; a thread drains and drops what arrives."""

    def __init__(self, context: zmq.Context[zmq.Socket[bytes]], endpoint: str) -> None:
        self._socket = context.socket(zmq.PULL)
        self._socket.bind(endpoint)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-speech-sink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._socket.poll(50):
                while True:
                    try:
                        self._socket.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close(linger=0)


def _prepare(settings: Settings, env: dict[str, str], plan: DialerBenchPlan, contacts: int) -> None:
    from voxdesk.db import upgrade

    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines would drown the table
    container = private_container(settings, env)
    try:
        upgrade(container.engine)
        config = {"calendar": {"weekdays": _ALL_DAY}, "ring_timeout_s": 20}
        container.campaigns.create(
            NewCampaign(_CAMPAIGN, "Dialer benchmark", "notification", "zh", max_channels=plan.channels,
                        max_attempts=1, config=config)
        )  # fmt: skip
        rows = [{"phone": f"+86139{i:08d}", "notice": "card_expiry"} for i in range(contacts)]
        container.dialer.add_contacts(_CAMPAIGN, parse_contacts(rows, kind="notification", default_language="zh"))
        container.campaigns.set_status(_CAMPAIGN, "running")
    finally:
        container.close()


def _attempt_rows(settings: Settings, env: dict[str, str]) -> list[AttemptRow]:

    container = private_container(settings, env)
    try:
        with container.sessions() as s:
            return list(s.scalars(select(AttemptRow)))
    finally:
        container.close()


def run_dialer_bench(settings: Settings, plan: DialerBenchPlan, work: Path) -> DialerBenchResult:
    """Run the benchmark in ``work`` (see the module docstring); raises :class:`BenchError` when a part cannot
    start or the run cannot be measured."""
    if not SippCallee.available() or not _PCAP.is_file():
        raise BenchError("sipp with its pcaps is not installed (apt-get install sip-tester)")
    per_worker = max(1, min(4, settings.telephony.max_calls_per_worker))
    media_workers = math.ceil(plan.channels / per_worker)
    call_s = (plan.ring_ms + plan.hold_ms) / 1000 + 0.5
    contacts = plan.contacts or max(50, int(2 * plan.channels * plan.seconds / call_s))
    sip_port = free_port_block(media_workers)
    rtp_port = free_port_block(media_workers, step=100)
    callee_port = free_port_block(1)
    env = private_env(settings, work, database="bench.db", media_workers=media_workers, sip_port=sip_port,
                      rtp_port=rtp_port)  # fmt: skip
    env.update(
        VOXDESK_ASR_SPEECH_WORKERS="1",
        VOXDESK_DIALER_ROUTES=f'{{"": "sip:{{number}}@127.0.0.1:{callee_port}"}}',
        VOXDESK_DIALER_MAX_CHANNELS=str(plan.channels),
        VOXDESK_DIALER_TICK_S=str(plan.tick_s),
        VOXDESK_DIALER_DIALER_ID="bench-dialer",
    )
    _prepare(settings, env, plan, contacts)
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    proxy = ZmqBusProxy(env["VOXDESK_BUS_ZMQ_FRONTEND"], env["VOXDESK_BUS_ZMQ_BACKEND"])
    proxy.start()
    recorder = EventRecorder(context, proxy.backend, topics=("call.", "dialer."))
    speech = SpeechSink(context, env["VOXDESK_ASR_SPEECH_ENDPOINT_TEMPLATE"].format(index=0))
    callee = SippCallee(
        callee_scenario("answer", pcap=_PCAP, ring_ms=plan.ring_ms, hold_ms=plan.hold_ms),
        work_dir=work, port=callee_port, rtp_port=free_port_block(1, step=2), max_concurrent=plan.channels * 4,
    )  # fmt: skip
    children = []
    try:
        callee.start()
        ready = "sip media worker listening"
        media = [
            spawn_child(f"media-{i}", ["voxdesk.media_main", "--index", str(i)], env, work, ready)
            for i in range(media_workers)
        ]
        children.extend(media)
        for child in media:
            child.wait_ready(90)
        started = time.monotonic()
        dialer = spawn_child("dialer", ["voxdesk.dialer_main"], env, work, "dialer started")
        children.append(dialer)
        dialer.wait_ready(60)
        window_start = datetime.now(UTC)
        time.sleep(max(0.0, plan.seconds - (time.monotonic() - started)))
        window_end = datetime.now(UTC)
        stop_processes([(dialer.name, dialer.process)])
        stop_processes([(c.name, c.process) for c in media])
        time.sleep(0.5)
        callee.stop()
    finally:
        stop_processes([(c.name, c.process) for c in children])
        for child in children:  # the last lines of each child's log, for --keep
            (work / f"{child.name}.log").write_text("\n".join(child.lines) + "\n", encoding="utf-8")
        callee.stop()
        speech.close()
        recorder.close()
        proxy.close()
        context.destroy(linger=0)
    rows = _attempt_rows(settings, env)
    return _measure(plan, media_workers, rows, recorder, callee, window_start, window_end)


def _measure(
    plan: DialerBenchPlan,
    media_workers: int,
    rows: list[AttemptRow],
    recorder: EventRecorder,
    callee: SippCallee,
    window_start: datetime,
    window_end: datetime,
) -> DialerBenchResult:
    placed = [r for r in rows if r.state != "cancelled" and r.dialed_at is not None]
    in_window = [r for r in placed if window_start <= (r.dialed_at or window_start) <= window_end]
    seconds = (window_end - window_start).total_seconds()
    if seconds <= 0 or not placed:
        raise BenchError("the dialer placed no call")
    live_s = 0.0
    for row in placed:
        begin = max(row.dialed_at or window_start, window_start)
        end = min(row.ended_at or window_end, window_end)
        live_s += max(0.0, (end - begin).total_seconds())
    invites = Counter(e.callee for _, e in recorder.events if isinstance(e, CallStarted) and e.callee)
    per_contact = Counter(r.contact_id for r in placed)
    double = max(sum(1 for n in invites.values() if n > 1), sum(1 for n in per_contact.values() if n > 1))
    return DialerBenchResult(
        channels=plan.channels,
        seconds=round(seconds, 1),
        media_workers=media_workers,
        attempts=len(in_window),
        attempts_per_min=len(in_window) * 60.0 / seconds,
        channel_utilisation=live_s / (plan.channels * seconds),
        double_dials=double,
        outcomes=dict(Counter(r.state for r in placed)),
        sipp_calls=callee.counts().get("total", 0),
        invites_seen=sum(invites.values()),
    )
