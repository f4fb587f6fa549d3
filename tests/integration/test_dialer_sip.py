"""The dialer process with real SIP peers: a media worker process dials sipp callees that answer with recorded
speech, are busy, unavailable, ring forever or answer and stay silent; and the dialer is killed mid-campaign and
restarted without dialing any number twice or losing an attempt.

Each test prepares a SQLite database in ``tmp_path`` with one running campaign, starts a ZeroMQ bus proxy whose
events a recorder keeps, a PULL socket standing in for the speech worker, one sipp callee per behaviour on its own
loopback port (``dialer.routes`` sends each number prefix to one of them), one media worker process and the dialer
process (``python -m voxdesk.dialer_main``). Skips without sipp, espeak-ng or pjsua2.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import zmq
from sqlalchemy import select

from core.bus.zmq_bus import ZmqBusProxy
from core.events import AnsweringMachine, CallStarted
from telephony.dialer.campaigns import NewCampaign
from telephony.dialer.lists import parse_contacts
from telephony.dialer.tables import AttemptRow, ContactRow
from telephony.pcap import wav_to_pcap
from telephony.sipp_uas import CalleeBehaviour, SippCallee, callee_scenario
from voxdesk.benches.calls import EventRecorder, free_port_block, private_container, private_env, stop_processes
from voxdesk.benches.children import StackChild, spawn_child
from voxdesk.benches.dialer import SpeechSink
from voxdesk.db import upgrade
from voxdesk.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.sip]

if not SippCallee.available() or not shutil.which("espeak-ng"):
    pytest.skip("needs sipp (sip-tester) and espeak-ng", allow_module_level=True)
pytest.importorskip("pjsua2", reason="pjsua2-python is not installed (the telephony extra)")

_ALL_DAY = {day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def _speech_pcap(tmp: Path, name: str, text: str) -> Path:
    wav = tmp / f"{name}.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), text], check=True, capture_output=True)
    return wav_to_pcap(wav, tmp / f"{name}.pcap", codec="pcma").path


class Rig:
    """The processes and sockets of one test; :meth:`close` tears everything down."""

    def __init__(self, tmp: Path, settings: Settings) -> None:
        self.tmp, self.settings = tmp, settings
        self.sip_port = free_port_block(1)
        self.env = private_env(settings, tmp, database="dialer.db", media_workers=1, sip_port=self.sip_port,
                               rtp_port=free_port_block(1, step=100))  # fmt: skip
        self.env.update(VOXDESK_DIALER_TICK_S="0.2", VOXDESK_DIALER_DIALER_ID="test-dialer",
                        VOXDESK_DIALER_MAX_CHANNELS="4")  # fmt: skip
        self.container = private_container(settings, self.env)
        upgrade(self.container.engine)
        self.context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.proxy = ZmqBusProxy(self.env["VOXDESK_BUS_ZMQ_FRONTEND"], self.env["VOXDESK_BUS_ZMQ_BACKEND"])
        self.proxy.start()
        self.recorder = EventRecorder(self.context, self.proxy.backend, topics=("call.", "dialer."))
        self.speech = SpeechSink(self.context, self.env["VOXDESK_ASR_SPEECH_ENDPOINT_TEMPLATE"].format(index=0))
        self.callees: list[SippCallee] = []
        self.children: list[StackChild] = []

    def callee(self, name: str, behaviour: CalleeBehaviour, prefix: str, **options: object) -> None:
        """Start a sipp callee for numbers starting with ``prefix``."""
        port = free_port_block(1)
        scenario = callee_scenario(behaviour, **options)  # type: ignore[arg-type]
        callee = SippCallee(scenario, work_dir=self.tmp, port=port, rtp_port=free_port_block(1, step=2), name=name)
        callee.start()
        self.callees.append(callee)
        routes = json.loads(self.env.get("VOXDESK_DIALER_ROUTES", "{}"))
        routes[prefix] = f"sip:{{number}}@127.0.0.1:{port}"
        self.env["VOXDESK_DIALER_ROUTES"] = json.dumps(routes)

    def campaign(self, phones: list[str], **config: object) -> None:
        self.container.campaigns.create(
            NewCampaign("c1", "Card expiry", "notification", "en", max_channels=4, max_attempts=1,
                        config={"calendar": {"weekdays": _ALL_DAY}, **config})
        )  # fmt: skip
        rows = [{"phone": p, "notice": "card_expiry"} for p in phones]
        self.container.dialer.add_contacts("c1", parse_contacts(rows, kind="notification", default_language="en"))
        self.container.campaigns.set_status("c1", "running")

    def start_media(self) -> None:
        child = spawn_child("media-0", ["voxdesk.media_main", "--index", "0"], self.env, self.tmp,
                            "sip media worker listening")  # fmt: skip
        self.children.append(child)
        child.wait_ready(60)

    def start_dialer(self) -> StackChild:
        child = spawn_child("dialer", ["voxdesk.dialer_main"], self.env, self.tmp, "dialer started")
        self.children.append(child)
        child.wait_ready(60)
        return child

    def attempts(self) -> list[AttemptRow]:
        with self.container.sessions() as s:
            return list(s.scalars(select(AttemptRow).order_by(AttemptRow.created_at)))

    def contacts(self) -> dict[str, ContactRow]:
        with self.container.sessions() as s:
            return {c.phone: c for c in s.scalars(select(ContactRow))}

    def wait(self, done: object, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if callable(done) and done():
                return
            time.sleep(0.25)
        logs = "\n".join(f"--- {c.name}\n" + "\n".join(c.lines[-25:]) for c in self.children)
        raise AssertionError(f"timed out waiting for {what}\n{logs}")

    def invites(self) -> Counter[str]:
        return Counter(e.callee for _, e in self.recorder.events if isinstance(e, CallStarted) and e.callee)

    def close(self) -> None:
        stop_processes([(c.name, c.process) for c in self.children], timeout_s=15)
        for callee in self.callees:
            callee.stop()
        self.speech.close()
        self.recorder.close()
        self.proxy.close()
        self.context.destroy(linger=0)
        self.container.close()


@pytest.fixture
def rig(tmp_path: Path, settings: Settings) -> Iterator[Rig]:
    r = Rig(tmp_path, settings)
    try:
        yield r
    finally:
        r.close()


def _by_phone(rig: Rig) -> Mapping[str, AttemptRow]:
    contacts = {c.contact_id: phone for phone, c in rig.contacts().items()}
    return {contacts[a.contact_id]: a for a in rig.attempts()}


def test_outcomes_against_real_callees(rig: Rig, tmp_path: Path) -> None:
    hello = _speech_pcap(tmp_path, "hello", "Hello?")
    greeting = _speech_pcap(
        tmp_path, "greeting", "Hi, you have reached Alex. I cannot take your call right now, please leave a message."
    )
    rig.callee("person", "answer", "+8613900000001", pcap=hello, ring_ms=300, hold_ms=4000)
    rig.callee("machine", "answer", "+8613900000002", pcap=greeting, ring_ms=300, hold_ms=9000)
    rig.callee("busy", "busy", "+8613900000003")
    rig.callee("unavailable", "unavailable", "+8613900000004")
    rig.callee("ring", "ring", "+8613900000005")
    rig.callee("silent", "silent", "+8613900000006", ring_ms=200, hold_ms=5000)
    phones = [f"+861390000000{i}" for i in range(1, 7)]
    rig.campaign(phones, ring_timeout_s=3)
    rig.start_media()
    rig.start_dialer()
    rig.wait(lambda: all(c.status == "done" for c in rig.contacts().values()), 60, "every contact to be done")

    attempts = _by_phone(rig)
    got = {phone: (a.state, a.sip_code) for phone, a in attempts.items()}
    assert got == {
        "+8613900000001": ("completed", 200),
        "+8613900000002": ("voicemail", 200),
        "+8613900000003": ("busy", 486),
        "+8613900000004": ("no_answer", 480),
        "+8613900000005": ("no_answer", 408),  # our ring timer cancelled it after 3 s
        "+8613900000006": ("completed", 200),
    }
    ring = attempts["+8613900000005"]
    assert ring.ended_at is not None and ring.dialed_at is not None
    assert 2.5 <= (ring.ended_at - ring.dialed_at).total_seconds() <= 6
    assert all(a.call_id for a in attempts.values())
    verdicts = {e.call_id: e.verdict for _, e in rig.recorder.events if isinstance(e, AnsweringMachine)}
    assert verdicts[attempts["+8613900000001"].call_id] == "human"
    assert verdicts[attempts["+8613900000002"].call_id] == "machine"
    assert verdicts[attempts["+8613900000006"].call_id] == "unknown"
    assert rig.invites() == Counter(phones)
    for callee in rig.callees:
        callee.stop()
        assert callee.counts().get("total") == 1


def test_killing_the_dialer_mid_campaign_never_dials_a_number_twice(rig: Rig, tmp_path: Path) -> None:
    hello = _speech_pcap(tmp_path, "hello", "Hello?")
    rig.callee("person", "answer", "+86139", pcap=hello, ring_ms=200, hold_ms=2500)
    phones = [f"+86139{i:08d}" for i in range(24)]
    rig.campaign(phones)
    rig.start_media()
    dialer = rig.start_dialer()
    rig.wait(lambda: sum(1 for a in rig.attempts() if a.state == "answered") >= 3, 30, "calls in progress")
    dialer.process.send_signal(signal.SIGKILL)
    dialer.process.wait(10)
    live = [a for a in rig.attempts() if a.state in ("dialing", "ringing", "answered")]
    assert live, "the kill should leave live attempts behind"
    rig.children.remove(dialer)

    rig.start_dialer()
    rig.wait(lambda: all(c.status == "done" for c in rig.contacts().values()), 90, "the campaign to finish")
    attempts = rig.attempts()
    assert {a.state for a in attempts if a.attempt_id in {x.attempt_id for x in live}} == {"interrupted"}
    assert all(a.state not in ("queued", "dialing", "ringing", "answered") for a in attempts)  # none lost
    per_contact = Counter(a.contact_id for a in attempts if a.dialed_at is not None)
    assert max(per_contact.values()) == 1
    invites = rig.invites()
    assert max(invites.values()) == 1
    live_phones = {p for p, a in _by_phone(rig).items() if a.attempt_id in {x.attempt_id for x in live}}
    assert set(phones) - set(invites) <= live_phones  # only a killed attempt may have died before its INVITE
    time.sleep(3)  # let the last calls hang up, then sipp writes its final statistics as it exits
    rig.callees[0].stop()
    assert rig.callees[0].counts().get("total") == sum(invites.values())
