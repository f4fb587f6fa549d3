"""The navigator's call runtime with fakes only: a recording play sink stands in for the media worker (the test
plays its part by sending BotAudio), a tone synthesizer for Piper, scripted intents for the classifier, a fake clock
for the timers, and an inline executor so every step is deterministic. Covers the non-interruptible greeting,
barge-in (pause at once, stop + input on a real final, resume on a backchannel or silence), the no-input timer,
keypad slots, transfers (masked handoff, target URI, failure and missing URI) and answers from approved scripts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

from agent.navigator import FlowSet, load_flows, shipped_flow_paths
from agent.navigator.engine import DialogEngine
from agent.navigator.handoff import BUILTIN_PROMPTS, NO_AGENT_KEY, backchannel_sets, sensitive_slots
from agent.navigator.runtime import NavigatorConfig
from agent.navigator.session import NavigatorSession
from agent.navigator.speaker import NavigatorSpeaker
from agent.navigator.testing import FakeCoreBanking, InlineExecutor, RecordingPlaySink, demo_questions
from agent.testing import ScriptedIntents, ToneSynthesizer, answer_scripts
from agent.tts.cache import PromptCache
from agent.tts.voices import LanguageVoice, VoiceSet
from core.events import (
    BotAudio,
    BotSaid,
    CallAnswered,
    CallTransferred,
    DtmfReceived,
    FinalTranscript,
    IntentDetected,
    Lang,
    NavigatorHandoff,
    PartialTranscript,
    SpeechStarted,
)
from core.ids import CallId
from core.media import PlayAudio, PlayControl
from core.testing import FakeClock, RecordingBus

pytestmark = pytest.mark.unit

CALL = CallId("nav-call-1")
TODAY = date(2026, 12, 2)
LOST, BALANCE = "cards.report_lost_card", "accounts.balance_inquiry"
BACKCHANNELS = {"zh": ["嗯", "嗯嗯", "好"], "en": ["uh-huh", "mm-hmm", "okay", "i see"]}


@pytest.fixture(scope="module")
def flows() -> FlowSet:
    return load_flows(shipped_flow_paths())


@dataclass
class Call:
    """A session with its fakes; ``worker`` helpers play the media worker's part."""

    session: NavigatorSession
    sink: RecordingPlaySink
    bus: RecordingBus
    clock: FakeClock
    intents: ScriptedIntents
    synth: ToneSynthesizer
    ended: set[int] = field(default_factory=set)

    async def settle(self) -> None:
        """Let the session's tasks run until nothing more happens (all work is inline)."""
        for _ in range(200):
            await asyncio.sleep(0)

    def send(self, *events: object) -> None:
        for event in events:
            self.session.handle(event)  # type: ignore[arg-type]

    def audio(self, segment: int, state: str, played_ms: int = 0) -> None:
        self.send(BotAudio(call_id=CALL, segment=segment, state=state, at_ms=0.0, played_ms=played_ms))
        if state in ("completed", "stopped"):
            self.ended.add(segment)

    async def play_out(self, *segments: int) -> None:
        """The media worker plays ``segments`` (default: every closed segment not yet ended) to the end."""
        for seg in segments or tuple(s for s in self.sink.segments() if self.sink.closed(s) and s not in self.ended):
            self.audio(seg, "started")
            self.audio(seg, "completed", 1000)
        await self.settle()

    async def advance(self, seconds: float) -> None:
        await self.settle()
        self.clock.advance(seconds)
        await self.settle()

    def said(self) -> list[BotSaid]:
        return [e for e in self.bus.published if isinstance(e, BotSaid)]

    def keys_said(self) -> list[str | None]:
        return [e.prompt_key for e in self.said()]

    def segment_of(self, prompt_key: str) -> int:
        return next(e.segment for e in self.said() if e.prompt_key == prompt_key)


def make_call(
    tmp_path: Path,
    flows: FlowSet,
    *,
    lang: Lang = "en",
    skill_groups: dict[str, str] | None = None,
    default_uri: str | None = None,
    mute: bool = False,
) -> Call:
    synth = ToneSynthesizer(base_ms=40.0, ms_per_char=1.0)
    voices = VoiceSet({} if mute else {lang: LanguageVoice(lang, synth, "tone", None)})
    inline = InlineExecutor()
    speaker = NavigatorSpeaker(voices, {lang: PromptCache(synth, f"tone-{lang}", tmp_path)}, executor=inline)
    sink, bus, clock = RecordingPlaySink(), RecordingBus(), FakeClock()
    intents = ScriptedIntents(
        [
            ("lost", LOST, 0.95),
            ("挂失", LOST, 0.95),
            ("balance", BALANCE, 0.95),
            ("activate", "cards.activate_card", 0.95),
        ]
    )
    questions = demo_questions()
    engine = DialogEngine(
        flows, banking=FakeCoreBanking(), questions=questions, lang=lang, customer_id="C-TEST-0001", today=TODAY
    )
    config = NavigatorConfig(
        resume_after_ms=1_200,
        backchannels=backchannel_sets(BACKCHANNELS),  # type: ignore[arg-type]
        skill_groups=skill_groups or {},
        default_transfer_uri=default_uri,
        sensitive_slots=sensitive_slots(flows),
        playback_slack_ms=600_000,  # the guard stays out of these tests' way
    )
    session = NavigatorSession(
        CALL, engine=engine, lang=lang, speaker=speaker, sink=sink, publish=bus.publish, intents=intents,
        scripts=answer_scripts(questions.values()), media_worker=1, questions=questions, config=config,
        clock=clock, executor=inline,
    )  # fmt: skip
    session.start()
    return Call(session, sink, bus, clock, intents, synth)


def final(text: str) -> FinalTranscript:
    return FinalTranscript(call_id=CALL, leg="customer", text=text, start_ms=1_000, end_ms=2_000)


def speech() -> SpeechStarted:
    return SpeechStarted(call_id=CALL, leg="customer", start_ms=1_000)


async def answered(call: Call) -> None:
    call.send(CallAnswered(call_id=CALL, by="bot"))
    await call.settle()


async def at_menu(call: Call) -> int:
    """Answer, play the disclosure to the end; returns the menu prompt's segment (started, interruptible)."""
    await answered(call)
    await call.play_out(call.segment_of("disclosure"))
    menu = call.segment_of("how_can_i_help")
    call.audio(menu, "started")
    return menu


# --- greeting and barge-in ---------------------------------------------------------------------------------------


async def test_disclosure_plays_to_the_end_despite_speech_and_the_final_waits(tmp_path: Path, flows: FlowSet) -> None:
    call = make_call(tmp_path, flows)
    await answered(call)
    said = call.said()
    assert [(e.segment, e.prompt_key, e.interruptible) for e in said] == [
        (1, "disclosure", False),
        (2, "how_can_i_help", True),
    ]
    assert call.sink.segments() == [1, 2] and call.sink.closed(1) and call.sink.closed(2)
    assert {w for w, _ in call.sink.messages} == {1}  # the call's media worker
    assert all(a.sample_rate_hz == 8000 and len(a.payload) % 320 == 0 for a in call.sink.audio())
    assert not call.sink.audio(1)[0].interruptible and call.sink.audio(2)[0].interruptible

    call.audio(1, "started")
    call.send(speech(), final("I lost my card"))
    await call.settle()
    assert call.sink.actions() == []  # never paused, never stopped: the disclosure plays on
    assert call.intents.calls == [] and call.session.stats.held_finals == 1

    call.audio(1, "completed", 4_000)  # the disclosure ends: the held answer stops the menu and is heard
    await call.settle()
    assert call.sink.actions() == ["stop"]
    assert call.intents.calls == ["I lost my card"]
    intent = [e for e in call.bus.published if isinstance(e, IntentDetected)]
    assert intent[0].question_id == LOST and intent[0].score == 0.95
    assert "lost_card_intro" in call.keys_said()


async def test_barge_in_pauses_at_once_then_stops_and_feeds_a_real_final(tmp_path: Path, flows: FlowSet) -> None:
    call = make_call(tmp_path, flows)
    menu = await at_menu(call)
    call.send(speech())
    assert call.sink.controls() == [PlayControl(CALL, "pause")]  # synchronously: no waiting on anything
    call.send(final("what's my balance"))
    assert call.sink.actions() == ["pause", "stop"]
    await call.settle()
    assert call.intents.calls == ["what's my balance"]
    assert "identity_intro" in call.keys_said() and call.keys_said()[-1] == "ask_last4"
    assert all(e.segment > menu for e in call.said()[2:])
    turn = call.session.stats.turns[0]
    assert turn.to_intent_ms == 0.0 and turn.to_first_chunk_ms == 0.0  # the fake clock stands still
    assert call.session.stats.pauses == 1 and call.session.stats.stops == 1


async def test_speech_across_the_disclosures_end_pauses_the_menu_as_it_starts(tmp_path: Path, flows: FlowSet) -> None:
    call = make_call(tmp_path, flows)
    await answered(call)
    call.audio(1, "started")
    call.send(speech())
    assert call.sink.actions() == []
    call.audio(1, "completed", 4_000)  # the caller is still talking as the menu begins: it is paused at once
    assert call.sink.actions() == ["pause"]
    call.send(final("I want to check my balance"))
    await call.settle()
    assert call.sink.actions() == ["pause", "stop"] and call.intents.calls == ["I want to check my balance"]


class GatedSpeaker:
    """Wraps the session's speaker: the utterance with audio key ``key`` waits for :attr:`open` (slow synthesis)."""

    def __init__(self, inner: NavigatorSpeaker, key: str) -> None:
        self.inner, self.key, self.open = inner, key, asyncio.Event()

    async def chunks(
        self, lang: Lang, text: str, *, fixed: bool = False, audio_key: str | None = None
    ) -> AsyncIterator[bytes]:
        if audio_key == self.key:
            await self.open.wait()
        async for chunk in self.inner.chunks(lang, text, fixed=fixed, audio_key=audio_key):
            yield chunk


async def test_a_pause_holds_back_a_prompt_still_being_synthesised(tmp_path: Path, flows: FlowSet) -> None:
    call = make_call(tmp_path, flows)
    gated = GatedSpeaker(call.session.playback._speaker, "identity_intro")
    call.session.playback._speaker = gated  # type: ignore[assignment]
    await answered(call)
    await call.play_out()
    call.send(speech(), final("balance please"))
    await call.settle()
    intro = max(call.sink.segments()) + 1  # after "let me check your balance": queued, not yet synthesised
    call.send(speech())  # the caller goes on talking: the prompt at the head must not start under them
    assert call.sink.actions() == ["pause"]
    gated.open.set()
    await call.settle()
    assert call.sink.audio(intro) == []  # ready, but held back by the pause
    call.send(final("mm-hmm"))
    await call.settle()
    assert call.sink.actions() == ["pause", "resume"] and call.sink.closed(intro)
    assert call.segment_of("identity_intro") == intro


async def test_backchannel_resumes_and_the_engine_is_not_told(tmp_path: Path, flows: FlowSet) -> None:
    call = make_call(tmp_path, flows)
    await at_menu(call)
    before = call.session.engine.transcript
    call.send(speech(), final("Uh-huh."))
    await call.settle()
    assert call.sink.actions() == ["pause", "resume"]
    assert call.intents.calls == [] and call.session.engine.transcript == before
    assert call.session.stats.backchannels == 1


async def test_backchannel_in_silence_is_an_answer(tmp_path: Path, flows: FlowSet) -> None:
    call = make_call(tmp_path, flows, lang="zh")
    await answered(call)
    await call.play_out()
    call.send(speech(), final("嗯。"))
    await call.settle()
    assert call.sink.actions() == []  # nothing to pause
    assert call.intents.calls == ["嗯。"]  # heard: an ordinary (out-of-scope) answer → reprompt
    assert call.keys_said()[-1] == "how_can_i_help_reprompt"


async def test_no_final_within_resume_after_ms_resumes(tmp_path: Path, flows: FlowSet) -> None:
    call = make_call(tmp_path, flows)
    await at_menu(call)
    call.send(speech())
    await call.advance(1.0)
    call.send(PartialTranscript(call_id=CALL, leg="customer", text="um", start_ms=1_000, end_ms=1_500))
    await call.advance(1.0)
    assert call.sink.actions() == ["pause"]  # the partial extended the wait
    await call.advance(0.3)
    assert call.sink.actions() == ["pause", "resume"]
    assert call.intents.calls == []


async def test_no_input_timer_starts_after_the_prompt_completed_and_reprompts(tmp_path: Path, flows: FlowSet) -> None:
    call = make_call(tmp_path, flows)
    await answered(call)
    await call.advance(30.0)  # the prompts are still playing: no timer runs
    assert call.keys_said() == ["disclosure", "how_can_i_help"]
    await call.play_out(1)
    await call.advance(30.0)
    assert call.keys_said() == ["disclosure", "how_can_i_help"]
    call.audio(2, "started")
    call.audio(2, "completed", 9_000)
    await call.advance(5.9)
    assert call.session.stats.no_inputs == 0
    await call.advance(0.2)  # the intent step's 6 s
    assert call.session.stats.no_inputs == 1
    assert call.keys_said()[-1] == "how_can_i_help_no_input"


async def test_playback_guard_listens_when_end_events_are_lost(tmp_path: Path, flows: FlowSet) -> None:
    call = make_call(tmp_path, flows)
    call.session.config = NavigatorConfig(playback_slack_ms=2_000, sensitive_slots=call.session.config.sensitive_slots)
    await answered(call)
    await call.advance(10.0)  # no BotAudio ever comes: after the audio's length + 2 s the timer starts anyway
    await call.advance(6.1)
    assert call.session.stats.playback_timeouts == 1 and call.session.stats.no_inputs == 1


# --- keypad and answers --------------------------------------------------------------------------------------------


async def test_dtmf_stops_the_prompt_and_fills_the_card_last4_slot(tmp_path: Path, flows: FlowSet) -> None:
    call = make_call(tmp_path, flows)
    await at_menu(call)
    call.send(DtmfReceived(call_id=CALL, digit="1"))  # keypad barge-in: 1 = lost card
    assert call.sink.actions() == ["stop"]
    await call.settle()
    assert call.keys_said()[-1] == "ask_last4"
    call.audio(call.segment_of("lost_card_intro"), "started")
    for digit in "1234":
        call.send(DtmfReceived(call_id=CALL, digit=digit))
    await call.settle()
    assert call.session.engine.variables["card_last4"] == "1234"
    assert call.keys_said()[-1] == "ask_birth_date"


async def test_answer_reads_the_approved_script_from_the_cache(tmp_path: Path, flows: FlowSet) -> None:
    call = make_call(tmp_path, flows)
    await at_menu(call)
    call.send(speech(), final("how do I activate my card"))
    await call.settle()
    answer = next(e for e in call.said() if e.prompt_key == "script:ans.activate")
    assert answer.text == "Answer: How do I activate my card?" and answer.interruptible
    assert "Answer: How do I activate my card?" in call.synth.calls  # rendered whole, for the cache
    assert call.keys_said()[-1] == "anything_else"


# --- transfers -------------------------------------------------------------------------------------------------------


async def test_transfer_publishes_a_masked_handoff_and_sends_the_groups_uri(tmp_path: Path, flows: FlowSet) -> None:
    call = make_call(tmp_path, flows, skill_groups={"cards": "sip:cards@pbx.bank.local"})
    await at_menu(call)
    call.send(speech(), final("I lost my card"))
    await call.play_out()
    call.send(speech(), final("it's one two three four"))  # card last 4 by speech
    await call.play_out()
    for digit in "19990101":  # a wrong birth date by keypad: not verified → transfer to cards
        call.send(DtmfReceived(call_id=CALL, digit=digit))
    await call.settle()

    handoff = next(e for e in call.bus.published if isinstance(e, NavigatorHandoff))
    assert handoff.skill_group == "cards" and handoff.reason == "identity_not_verified"
    assert handoff.intent == LOST and handoff.customer_id == "C-TEST-0001" and not handoff.identity_verified
    slots = dict(handoff.slots)
    assert slots["card_last4"] == "****" and "1999" not in slots["birth_date"]
    text = " ".join(t for _, t in handoff.transcript)
    assert "one two three four" not in text and "1234" not in text and "1999" not in text
    assert ("caller", "it's * * * *") in handoff.transcript
    assert [t for s, t in handoff.transcript if s == "dtmf"][-8:] == ["*"] * 8
    assert call.session.engine.variables["card_last4"] == "1234"  # only the handoff is masked

    sorry = call.segment_of("identity_failed")
    messages = [m for _, m in call.sink.messages]
    transfer = messages[-1]
    assert transfer == PlayControl(
        CALL, "transfer", target="sip:cards@pbx.bank.local", skill_group="cards", reason="identity_not_verified"
    )
    closing = next(i for i, m in enumerate(messages) if isinstance(m, PlayAudio) and m.segment == sorry and m.last)
    assert closing < len(messages) - 1  # the prompt is queued whole before the transfer command

    call.send(speech(), final("hello?"), DtmfReceived(call_id=CALL, digit="5"))
    await call.settle()
    assert call.sink.messages[-1][1] == transfer  # after the decision the caller is no longer heard


async def test_failed_transfer_apologises_and_hangs_up(tmp_path: Path, flows: FlowSet) -> None:
    call = make_call(tmp_path, flows, default_uri="sip:queue@pbx.bank.local")
    await at_menu(call)
    call.send(speech(), final("agent please"))
    await call.settle()
    assert call.sink.actions()[-1] == "transfer" and call.sink.controls()[-1].target == "sip:queue@pbx.bank.local"
    call.send(CallTransferred(call_id=CALL, skill_group="general", status="failed", sip_code=486))
    await call.settle()
    sorry = call.said()[-1]
    assert sorry.prompt_key == NO_AGENT_KEY and sorry.text == BUILTIN_PROMPTS[NO_AGENT_KEY].en
    assert not sorry.interruptible
    assert call.sink.actions()[-2:] == ["transfer", "hangup"]
    assert call.sink.messages[-2][1] == PlayAudio(CALL, sorry.segment, b"", 8000, False, True)
    call.send(CallTransferred(call_id=CALL, skill_group="general", status="failed"))
    await call.settle()
    assert call.sink.actions().count("hangup") == 1


async def test_missing_uri_apologises_and_hangs_up(tmp_path: Path, flows: FlowSet) -> None:
    call = make_call(tmp_path, flows, lang="zh")
    await answered(call)
    await call.play_out()
    call.send(speech(), final("转人工"))
    await call.settle()
    assert any(isinstance(e, NavigatorHandoff) for e in call.bus.published)
    assert "transfer" not in call.sink.actions() and call.sink.actions()[-1] == "hangup"
    assert call.said()[-1].text == BUILTIN_PROMPTS[NO_AGENT_KEY].zh
    assert call.sink.controls()[-1].reason == "no_transfer_target"


async def test_a_line_whose_language_cannot_speak_goes_straight_to_a_person(tmp_path: Path, flows: FlowSet) -> None:
    call = make_call(tmp_path, flows, lang="zh", mute=True, default_uri="sip:queue@127.0.0.1")
    await answered(call)
    handoff = next(e for e in call.bus.published if isinstance(e, NavigatorHandoff))
    assert handoff.reason == "no_voice" and handoff.skill_group == "general"
    assert call.sink.actions() == ["transfer"] and call.sink.controls()[-1].target == "sip:queue@127.0.0.1"
    assert call.said() == []  # nothing pretended to speak


async def test_a_mute_line_without_anyone_to_transfer_to_is_left_alone(tmp_path: Path, flows: FlowSet) -> None:
    call = make_call(tmp_path, flows, lang="zh", mute=True)
    await answered(call)
    call.send(speech(), final("我要挂失"))
    await call.settle()
    assert call.sink.actions() == [] and call.said() == [] and call.session.closing
    assert not any(isinstance(e, NavigatorHandoff) for e in call.bus.published)


async def test_a_failing_event_is_counted_not_raised(tmp_path: Path, flows: FlowSet) -> None:
    call = make_call(tmp_path, flows)
    call.session.playback.on_bot_audio = None  # type: ignore[assignment,method-assign]
    call.audio(1, "started")
    assert call.session.stats.errors == 1
    await call.session.aclose()


def test_backchannels_are_recognised_through_asr_repeats_and_hums() -> None:
    from agent.navigator.handoff import backchannel_sets, is_backchannel

    words = backchannel_sets({"en": ["ok", "okay", "uh-huh", "mm-hmm", "right"], "zh": ["嗯", "好"]})
    for text in ("", "Okay.", "Okay Okay", "Hmm, okay.", "Mhm", "Uh-huh!"):
        assert is_backchannel(text, words["en"]), text
    for text in ("No", "Operator.", "Okay, I lost my card", "yes"):
        assert not is_backchannel(text, words["en"]), text
    assert is_backchannel("嗯嗯嗯", words["zh"]) and is_backchannel("嗯，好", words["zh"])
    assert not is_backchannel("人工", words["zh"]) and not is_backchannel("嗯，我要挂失", words["zh"])
