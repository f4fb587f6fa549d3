"""Outbound campaigns end to end, with every part real.

A private Voxdesk (:class:`LiveStack`: speech worker with Whisper, SIP media worker, agent process with the
navigator and Piper, web server) plus the dialer process. A marketing user creates an English collection campaign
through the API, uploads its dialing list and starts it. The callees are baresip peers on 127.0.0.1 that answer
and speak Piper-synthesised turns when the bot is quiet:

* "Hello?", "Yes, that's me.", "I'll pay on the twenty-fifth." — a promise to pay on the next 25th;
* "Hello?", "Stop calling me, please." — an opt-out: the number goes on the DNC list;
* a voicemail greeting — the bot waits for its end and leaves the message (no account data in it).

Skips when baresip, Piper or the provisioned Whisper model is missing.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from core.events import AnsweringMachine, BotSaid, CampaignOutcome, FinalTranscript
from telephony.dialer.tables import AttemptRow, ContactRow
from telephony.peer_scripted import ScriptedCaller
from telephony.peers import BaresipCaller
from voxdesk.benches.calls import private_container
from voxdesk.benches.children import spawn_child
from voxdesk.benches.live_stack import LiveStack, StaffUser
from voxdesk.benches.navigator_script import TurnVoice
from voxdesk.settings import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.sip, pytest.mark.models, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
if not BaresipCaller.available():
    pytest.skip("needs baresip (apt-get install baresip-core)", allow_module_level=True)
if importlib.util.find_spec("piper") is None or not (ROOT / "var" / "models").is_dir():
    pytest.skip("needs piper-tts and provisioned models (voxdesk models provision)", allow_module_level=True)

PROMISE, OPT_OUT, VOICEMAIL = "+8613900000701", "+8613900000702", "+8613900000703"
_ALL_DAY = {day: ["00:00-24:00"] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def _next_25th(today: date) -> date:
    if today.day <= 25:
        return today.replace(day=25)
    return date(today.year + (today.month == 12), today.month % 12 + 1, 25)


class Callee(threading.Thread):
    """A baresip callee that answers and speaks ``turns``, each once the bot has been quiet a while (the first
    ``first_after_s`` after the answer)."""

    def __init__(self, work: Path, number: str, turns: list[Path], *, first_after_s: float = 0.5) -> None:
        super().__init__(name=f"callee-{number}", daemon=True)
        self.peer = ScriptedCaller(work_dir=work, caller_user=number, auto_answer=True, answer_timeout_s=300)
        self.turns, self.first_after_s = turns, first_after_s
        self.error: str | None = None
        self.peer.start()

    def run(self) -> None:
        try:
            if not self.peer.wait_answered(300):
                self.error = "never called"
                return
            time.sleep(self.first_after_s)
            for i, wav in enumerate(self.turns):
                if i and not self.peer.wait_for_quiet(quiet_s=1.5, timeout_s=60):
                    self.error = f"the bot did not finish speaking before turn {i + 1}"
                    return
                self.peer.say(wav)
            self.peer.wait_ended(120)
        except Exception as exc:  # reported by the test
            self.error = repr(exc)


@pytest.fixture(scope="module")
def campaign_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveStack, dict[str, Callee]]]:
    work = tmp_path_factory.mktemp("dialer-stack")
    settings = load_settings()
    voice = TurnVoice(settings.var_dir / "bench-turns")
    turns = {
        PROMISE: ["Hello?", "Yes, that's me.", "I'll pay on the twenty-fifth."],
        OPT_OUT: ["Hello?", "Stop calling me, please."],
        VOICEMAIL: ["Hi, you have reached Alex Chen. I can't take your call right now. Please leave your name and "
                    "number after the tone, and I will call you back as soon as I can. Thank you."],
    }  # fmt: skip
    callees = {n: Callee(work, n, [voice.render(t).path for t in ts]) for n, ts in turns.items()}
    routes = {n: f"sip:{{number}}@127.0.0.1:{c.peer.sip_port}" for n, c in callees.items()}
    overrides = {
        "VOXDESK_DIALER_ROUTES": json.dumps(routes),
        "VOXDESK_DIALER_TICK_S": "0.5",
        "VOXDESK_NAVIGATOR_PROMPT_CACHE_DIR": str(settings.navigator.prompt_cache_dir.resolve()),
    }
    live = LiveStack(settings, work, users=[StaffUser("marketer", "marketer-password", ("marketing",))],
                     overrides=overrides)  # fmt: skip
    try:
        live.start()
        dialer = spawn_child("dialer", ["voxdesk.dialer_main"], live.env, live.work, "dialer started")
        live.children.append(dialer)
        dialer.wait_ready(60)
        for callee in callees.values():
            callee.start()
        headers = {"Authorization": f"Bearer {live.token('marketer', 'marketer-password')}"}
        with httpx.Client(base_url=live.base_url, headers=headers, timeout=30) as api:
            created = api.post("/api/v1/campaigns", json={
                "campaign_id": "card-bill-reminder", "name": "Card bill reminder", "kind": "collection", "lang": "en",
                "max_channels": 1, "max_attempts": 1, "calendar": {"weekdays": _ALL_DAY}, "ring_timeout_s": 20,
            })  # fmt: skip
            assert created.status_code == 201, created.text
            rows = [{"phone": n, "amount_due": "3200", "due_date": "2026-12-20", "card_last4": "4321",
                     "language": "en"} for n in turns]  # fmt: skip
            added = api.post("/api/v1/campaigns/card-bill-reminder/contacts", json={"contacts": rows})
            assert added.status_code == 201, added.text
            assert (
                api.post("/api/v1/campaigns/card-bill-reminder/status", json={"status": "running"}).status_code == 200
            )
        for callee in callees.values():
            callee.join(240)
        yield live, callees
    finally:
        for callee in callees.values():
            callee.peer.stop()
        live.close()


def _rows(live: LiveStack) -> dict[str, tuple[ContactRow, AttemptRow]]:
    base = load_settings()
    container = private_container(base, live.env)
    try:
        deadline = time.monotonic() + 30
        while True:
            with container.sessions() as s:
                contacts = {c.contact_id: c for c in s.scalars(select(ContactRow))}
                attempts = {a.contact_id: a for a in s.scalars(select(AttemptRow))}
            if all(c.status == "done" for c in contacts.values()) or time.monotonic() > deadline:
                return {c.phone: (c, attempts[c.contact_id]) for c in contacts.values() if c.contact_id in attempts}
            time.sleep(0.5)
    finally:
        container.close()


def _dialog(live: LiveStack, call_id: str | None) -> str:
    """What the bot said and heard on a call, in order (for failure messages)."""
    lines = []
    for event in _events(live):
        if getattr(event, "call_id", None) == call_id and isinstance(event, BotSaid | FinalTranscript):
            who = "bot" if isinstance(event, BotSaid) else "callee"
            lines.append(f"{event.at.time()} {who}: {event.text}")
    return "\n".join(lines)


def _events(live: LiveStack) -> list[object]:
    assert live.recorder is not None
    return [e for _, e in list(live.recorder.events)]


def test_promise_to_pay_is_captured(campaign_run: tuple[LiveStack, dict[str, Callee]]) -> None:
    live, callees = campaign_run
    assert callees[PROMISE].error is None, f"{callees[PROMISE].error}\n{live.log_tail(20)}"
    contact, attempt = _rows(live)[PROMISE]
    assert (attempt.state, contact.outcome) == ("completed", "promised"), _dialog(live, attempt.call_id)
    assert json.loads(contact.result or "{}") == {"promise_date": _next_25th(date.today()).isoformat()}
    said = [e.text for e in _events(live) if isinstance(e, BotSaid) and e.call_id == attempt.call_id]
    assert "Voxdesk Demo Bank" in said[0] and "payment reminder" in said[0]
    assert any("ending 4321" in text for text in said[1:])


def test_stop_calling_me_puts_the_number_on_the_dnc_list(campaign_run: tuple[LiveStack, dict[str, Callee]]) -> None:
    live, callees = campaign_run
    assert callees[OPT_OUT].error is None, callees[OPT_OUT].error
    contact, attempt = _rows(live)[OPT_OUT]
    assert (attempt.state, contact.outcome) == ("completed", "opted_out")
    said = [e.text for e in _events(live) if isinstance(e, BotSaid) and e.call_id == attempt.call_id]
    assert not any("4321" in text or "3200" in text for text in said)  # never confirmed as the holder
    token = live.token("marketer", "marketer-password")
    found = httpx.get(f"{live.base_url}/api/v1/dnc/{OPT_OUT}", headers={"Authorization": f"Bearer {token}"})
    assert found.status_code == 200 and found.json()["listed"] is True


def test_voicemail_gets_the_message_after_the_greeting(campaign_run: tuple[LiveStack, dict[str, Callee]]) -> None:
    live, callees = campaign_run
    assert callees[VOICEMAIL].error is None, callees[VOICEMAIL].error
    _, attempt = _rows(live)[VOICEMAIL]
    assert attempt.state == "voicemail"
    events = _events(live)
    verdicts = [e for e in events if isinstance(e, AnsweringMachine) and e.call_id == attempt.call_id]
    assert [v.verdict for v in verdicts] == ["machine", "machine"] and verdicts[1].reason == "greeting_ended"
    [outcome] = [e for e in events if isinstance(e, CampaignOutcome) and e.call_id == attempt.call_id]
    assert outcome.machine and outcome.result == {"voicemail": "message_left"}
    said = [e.text for e in events if isinstance(e, BotSaid) and e.call_id == attempt.call_id]
    assert len(said) == 1 and "call us back on 95500" in said[0] and "3200" not in said[0]
