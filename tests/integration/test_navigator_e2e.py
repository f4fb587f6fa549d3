"""The voice navigator end to end, with every part real.

A private Voxdesk (:class:`LiveStack`: speech worker, SIP media worker, agent process with the navigator, web
server) serves an English navigator line. Callers are real SIP peers on 127.0.0.1:

* a :class:`ScriptedCaller` (baresip) speaks Piper-synthesised turns when the bot is quiet and records what it
  hears; the recording is transcribed with Whisper to check what the bot said;
* sipp keys RFC 2833 DTMF from Debian's pcaps through a whole self-service dialog (lost card with identity check);
* barge-in: the caller talks over an interruptible prompt (the bot's audio stops within 300 ms on the bridge's
  timeline), says "okay" over one (the prompt resumes), and talks over the recording disclosure (it plays on);
* transfer: the caller asks for a person; the call is bridged to a baresip softphone (``agent101``) whose agent's
  panel (headless Chromium) shows the navigator's handoff: the question, the transcript, the identity state.

Skips when baresip, sipp, Chromium, Playwright, Piper or the provisioned Whisper model is missing. Screenshots go to
``$VOXDESK_TEST_ARTIFACTS`` (default ``var/test-artifacts/navigator``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from core.events import (
    BotAudio,
    BotSaid,
    CallEnded,
    CallStarted,
    CallTransferred,
    DtmfReceived,
    Event,
    IntentDetected,
    NavigatorHandoff,
)
from telephony.peer_agent import BaresipAgent
from telephony.peer_scripted import ScriptedCaller
from telephony.peers import BaresipCaller, free_udp_port
from telephony.sipp import SippCaller, dtmf_call_scenario
from voxdesk.benches.live_stack import LiveStack, StaffUser
from voxdesk.benches.navigator import _known_callers
from voxdesk.benches.navigator_script import TurnVoice
from voxdesk.benches.navigator_timing import bot_quiet, frame_rms
from voxdesk.settings import Settings, load_settings

pytestmark = [pytest.mark.integration, pytest.mark.sip, pytest.mark.models, pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
NUMBER = "95501"
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update"]  # fmt: skip

if not BaresipCaller.available() or not SippCaller.available():
    pytest.skip("needs baresip and sipp (apt-get install baresip-core sip-tester)", allow_module_level=True)
if not CHROMIUM.exists() or importlib.util.find_spec("playwright") is None:
    pytest.skip("needs Debian's chromium and the playwright package", allow_module_level=True)
if importlib.util.find_spec("piper") is None or not (ROOT / "var" / "models").is_dir():
    pytest.skip("needs piper-tts and provisioned models (voxdesk models provision)", allow_module_level=True)


def artifacts() -> Path:
    folder = Path(os.environ.get("VOXDESK_TEST_ARTIFACTS", ROOT / "var" / "test-artifacts" / "navigator"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Stack:
    def __init__(self, live: LiveStack, agent: BaresipAgent, settings: Settings, voice: TurnVoice) -> None:
        self.live, self.agent, self.settings, self.voice = live, agent, settings, voice
        self.uri = f"sip:{NUMBER}@127.0.0.1:{live.sip_port}"

    def events(self, call_id: str | None = None) -> list[Event]:
        assert self.live.recorder is not None
        out = [e for _, e in list(self.live.recorder.events)]
        return out if call_id is None else [e for e in out if getattr(e, "call_id", None) == call_id]

    def wait(self, predicate: Callable[[], object], timeout_s: float, what: str) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if result := predicate():
                return result
            time.sleep(0.05)
        pytest.fail(f"{what} not seen in {timeout_s} s\n{self.recent()}\n{self.live.log_tail(15)}")

    def recent(self, count: int = 40) -> str:
        """The last bot, navigator and speech events, one per line (for failure messages)."""
        lines = []
        for e in self.events()[-400:]:
            kind = getattr(e, "kind", "")
            if kind.startswith(("bot.", "navigator.said", "speech.final", "speech.started", "nlu.intent")):
                detail = {
                    k: v for k, v in e.model_dump().items() if k in ("segment", "state", "text", "leg", "played_ms")
                }
                lines.append(f"{e.at.time()} {kind} {detail}")
        return "\n".join(lines[-count:])

    def call_id(self, number: str) -> str:
        return str(self.wait(lambda: next((e.call_id for e in self.events() if isinstance(e, CallStarted)
                                           and e.caller == number), None), 15, "CallStarted"))  # fmt: skip

    def audio(self, call_id: str) -> list[BotAudio]:
        return [e for e in self.events(call_id) if isinstance(e, BotAudio)]

    def said(self, call_id: str) -> list[BotSaid]:
        return [e for e in self.events(call_id) if isinstance(e, BotSaid)]

    def quiet(self, call_id: str, since_ms: float, quiet_ms: int = 1000, timeout_s: float = 60) -> None:
        """Until the bot spoke after ``since_ms`` and then stayed silent ``quiet_ms``."""

        def done() -> bool:
            return bot_quiet(self.events(call_id), since_ms, quiet_ms, time.time() * 1000)

        self.wait(done, timeout_s, "the bot finishing its prompt")

    def ended(self, call_id: str, timeout_s: float = 60) -> CallEnded:
        found = self.wait(
            lambda: next((e for e in self.events(call_id) if isinstance(e, CallEnded)), None), timeout_s, "CallEnded"
        )
        assert isinstance(found, CallEnded)
        return found


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    work = tmp_path_factory.mktemp("navigator-stack")
    agent = BaresipAgent(work_dir=work, user="agent101", hold_s=60.0)
    settings = load_settings()
    lines = [{"name": "navigator-en", "kind": "navigator", "number": NUMBER, "lang": "en"}]
    overrides = {
        "VOXDESK_TELEPHONY_LINES": json.dumps(lines),
        "VOXDESK_NAVIGATOR_SKILL_GROUPS": json.dumps({"general": agent.uri, "cards": agent.uri}),
        "VOXDESK_NAVIGATOR_PROMPT_CACHE_DIR": str(settings.navigator.prompt_cache_dir.resolve()),
    }
    users = [StaffUser("agent1", "agent1-password", ("agent",), "agent101")]
    live = LiveStack(settings, work, users=users, overrides=overrides)
    try:
        live.start()
        yield Stack(live, agent, settings, TurnVoice(settings.var_dir / "bench-turns"))
    finally:
        with contextlib.suppress(RuntimeError):  # not started when the transfer test did not run
            agent.stop()
        live.close()


def _transcribe(settings: Settings, wav: Path) -> str:
    from asr.base import DecodeOptions
    from core.audio import read_audio, resample
    from voxdesk.speech_main import build_recognizer

    clip = read_audio(wav)
    pcm = resample(clip.samples, clip.sample_rate, 16000).astype(np.int16)
    recognizer = build_recognizer(settings)
    texts = []
    for start in range(0, len(pcm), 16000 * 25):  # 25 s pieces, within Whisper's window
        piece = pcm[start : start + 16000 * 25]
        if np.abs(piece.astype(np.int32)).max(initial=0) > 500:
            texts.append(recognizer.transcribe(piece, DecodeOptions(lang="en", beam_size=3)).text)
    return " ".join(texts).lower()


def test_caller_asks_a_question_hears_the_answer_and_goodbye(stack: Stack, tmp_path: Path) -> None:
    number = "+8613900000101"
    with ScriptedCaller(work_dir=tmp_path, caller_user=number) as caller:
        t0 = time.time() * 1000
        assert caller.dial(stack.uri)
        call_id = stack.call_id(number)
        stack.quiet(call_id, t0)
        said = caller.say(stack.voice.render("What time do your branches open?").path) * 1000
        stack.quiet(call_id, said)
        said = caller.say(stack.voice.render("No, that's all, thank you.").path) * 1000
        ended = stack.ended(call_id)
        result = caller.stop(record_to=tmp_path / "heard.wav")
    intents = [e for e in stack.events(call_id) if isinstance(e, IntentDetected)]
    assert [e.question_id for e in intents] == ["general.branch_hours"], intents
    texts = [e.text for e in stack.said(call_id)]
    assert "recorded" in texts[0] and not stack.said(call_id)[0].interruptible
    assert any("goodbye" in t.lower() for t in texts[-1:]), texts
    assert ended.reason == "normal" and not any(isinstance(e, NavigatorHandoff) for e in stack.events(call_id))
    assert result.recorded_wav is not None
    heard = _transcribe(stack.settings, result.recorded_wav)  # what the caller's phone played
    for words in ("recorded", "how can i help", "branches open", "anything else", "thank you for calling"):
        assert words in heard, heard
    assert ended.recording_path is not None
    data, rate = sf.read(ended.recording_path, dtype="int16", always_2d=True)
    assert rate == 8000 and frame_rms(np.ascontiguousarray(data[:, 1]), rate).max() > 1000  # the bot on the right


def test_dtmf_from_sipp_drives_the_lost_card_dialog(stack: Stack, tmp_path: Path) -> None:
    phone, last4, birth = _known_callers(stack.settings, stack.live)[0]
    steps = [(8000, "1"), (4000, last4), (3000, birth.strftime("%Y%m%d")), (4000, "1"), (6000, "2")]
    caller = SippCaller(
        dtmf_call_scenario(steps, tmp_path, caller=phone), work_dir=tmp_path, name="dtmf", target=f"127.0.0.1:{stack.live.sip_port}",
        service=NUMBER, calls=1, sip_port=free_udp_port(), media_port=free_udp_port() // 2 * 2, timeout_s=120,
    )  # fmt: skip
    caller.start()
    call_id = stack.call_id(phone)
    run = caller.wait(timeout_s=150)
    ended = stack.ended(call_id)
    assert run.ok, run
    digits = "".join(e.digit for e in stack.events(call_id) if isinstance(e, DtmfReceived))
    assert digits == "1" + last4 + birth.strftime("%Y%m%d") + "12"
    texts = " | ".join(e.text for e in stack.said(call_id))
    assert "reported lost" in texts and "reference" in texts, texts
    assert ended.reason == "normal"


def _onset_and_stop(recording: str, after_ms: float) -> tuple[float, float | None]:
    """On the recording's timeline: the caller's first speech frame after ``after_ms`` and the first frame from which
    the bot's channel is silent for 100 ms."""
    data, rate = sf.read(recording, dtype="int16", always_2d=True)
    left = frame_rms(np.ascontiguousarray(data[:, 0]), rate)
    right = frame_rms(np.ascontiguousarray(data[:, 1]), rate)
    start = int(after_ms // 20)
    onset = start + int(np.nonzero(left[start:] > 300)[0][0])
    quiet = right < 50
    for i in range(onset - 5, len(right) - 5):
        if quiet[i : i + 5].all():
            return onset * 20.0, i * 20.0
    return onset * 20.0, None


def test_barge_in_stops_the_prompt_backchannel_resumes_it_and_the_disclosure_plays_on(
    stack: Stack, tmp_path: Path
) -> None:
    number = "+8613900000102"
    with ScriptedCaller(work_dir=tmp_path, caller_user=number) as caller:
        answered = time.time() * 1000
        assert caller.dial(stack.uri)
        call_id = stack.call_id(number)
        # over the disclosure (not interruptible): nothing pauses it
        stack.wait(lambda: any(e.state == "started" for e in stack.audio(call_id)), 10, "the disclosure")
        time.sleep(1.0)
        caller.say(stack.voice.render("Okay.").path)
        said = stack.wait(lambda: next((e for e in stack.said(call_id) if e.text.startswith("How can I help")), None),
                          20, "the menu prompt")  # fmt: skip
        menu = stack.wait(lambda: next((e for e in stack.audio(call_id) if e.segment == said.segment
                                        and e.state == "started"), None), 20, "the menu playing")  # fmt: skip
        # a backchannel over the menu: it pauses, then resumes
        time.sleep(2.0)
        caller.say(stack.voice.render("Okay, okay.").path)
        stack.wait(lambda: any(e.segment == menu.segment and e.state == "resumed" for e in stack.audio(call_id)), 10,
                   "the menu resuming after 'okay, okay'")  # fmt: skip
        # a real request over the menu: it stops within 300 ms
        time.sleep(1.5)
        barge_at = caller.say(stack.voice.render("I lost my credit card.").path) * 1000
        stack.wait(lambda: any(e.segment == menu.segment and e.state == "stopped" for e in stack.audio(call_id)), 10,
                   "the menu stopping")  # fmt: skip
        stack.wait(lambda: any(isinstance(e, IntentDetected) for e in stack.events(call_id)), 15, "the request")
        caller.hangup()
        ended = stack.ended(call_id)
        caller.stop()
    audio = stack.audio(call_id)
    disclosure = audio[0].segment
    assert [e.state for e in audio if e.segment == disclosure] == ["started", "completed"], audio
    menu_states = [e.state for e in audio if e.segment == menu.segment]
    assert menu_states[:3] == ["started", "paused", "resumed"] and "stopped" in menu_states, menu_states
    intents = [e for e in stack.events(call_id) if isinstance(e, IntentDetected)]
    assert [e.question_id for e in intents] == ["cards.report_lost_card"]  # "okay" and "hello" were not requests
    assert ended.recording_path is not None
    onset, stop = _onset_and_stop(ended.recording_path, barge_at - answered - 500)
    paused = next((e for e in audio if e.segment == menu.segment and e.state == "paused" and e.at_ms > barge_at), None)
    figures = {"speech_onset_ms": onset, "bot_silent_ms": stop, "stop_after_onset_ms": None if stop is None else
               stop - onset, "pause_after_say_ms": round(paused.at_ms - barge_at, 1) if paused else None}  # fmt: skip
    (artifacts() / "barge-in.json").write_text(json.dumps(figures))
    assert stop is not None and stop - onset <= 300, figures


def test_transfer_lands_on_the_agent_with_the_context_on_the_panel(stack: Stack, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    out = artifacts()
    silence = tmp_path / "agent.wav"
    sf.write(silence, np.zeros(8000, dtype=np.int16), 8000, subtype="PCM_16")
    stack.agent.start(silence)
    number = "+8613900000103"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(stack.live.base_url + "/login")
            page.fill("input[name=username]", "agent1")
            page.fill("input[name=password]", "agent1-password")
            page.click("button[type=submit]")
            page.goto(stack.live.base_url + "/assist?lang=en")
            expect(page.get_by_test_id("call-status")).to_contain_text("Waiting", timeout=15_000)
            with ScriptedCaller(work_dir=tmp_path, caller_user=number) as caller:
                t0 = time.time() * 1000
                assert caller.dial(stack.uri)
                call_id = stack.call_id(number)
                stack.quiet(call_id, t0)
                caller.say(stack.voice.render("I want to speak to a real person, please.").path)
                transferred = stack.wait(lambda: next((e for e in stack.events(call_id)
                                                       if isinstance(e, CallTransferred)), None), 40, "the transfer")  # fmt: skip
                assert transferred.status == "connected", transferred
                expect(page.get_by_test_id("handoff")).to_be_visible(timeout=15_000)
                expect(page.get_by_test_id("handoff-transcript")).to_contain_text("person")
                expect(page.get_by_test_id("handoff-identity")).to_contain_text("not verified")
                page.screenshot(path=str(out / "1-handoff.png"), full_page=True)
                caller.say(stack.voice.render("Hello, I need help with my account.").path)
                expect(page.get_by_test_id("line-customer").filter(has_text="account")).to_be_visible(timeout=25_000)
                page.screenshot(path=str(out / "2-after-transfer.png"), full_page=True)
                caller.hangup()
                stack.ended(call_id)
                caller.stop()
            assert not errors, errors
        except AssertionError as exc:  # Playwright's failures: add what the call did
            raise AssertionError(f"{exc}\n{stack.recent()}") from exc
        finally:
            browser.close()
    handoff = next(e for e in stack.events(call_id) if isinstance(e, NavigatorHandoff))
    assert handoff.skill_group == "general" and not handoff.identity_verified
    assert any(speaker == "caller" and "person" in text for speaker, text in handoff.transcript)
    outcome = stack.agent.stop()
    assert outcome.answered and outcome.recorded_wav is not None
    heard, rate = sf.read(outcome.recorded_wav, dtype="int16")
    assert frame_rms(heard, rate).max() > 300, "the agent heard nothing of the caller"
