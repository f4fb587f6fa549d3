"""Campaign calls at run time with fakes (recording play sink, tone voice, fake clock, inline executor): the session
waits for the answering-machine verdict, then runs the campaign flow, leaves a voicemail or hangs up, and publishes
the outcome before the bot hangs up, or when the callee hangs up first."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from agent.navigator import FlowSet, load_flows, shipped_flow_paths
from agent.navigator.campaign import CampaignEngine
from agent.navigator.campaign_session import CampaignSession
from agent.navigator.runtime import NavigatorConfig
from agent.navigator.speaker import NavigatorSpeaker
from agent.navigator.testing import FakeCoreBanking, InlineExecutor, RecordingPlaySink
from agent.testing import ScriptedIntents, ToneSynthesizer, answer_scripts
from agent.tts.cache import PromptCache
from agent.tts.voices import LanguageVoice, VoiceSet
from core.events import (
    AnsweringMachine,
    BotAudio,
    BotSaid,
    CallAnswered,
    CampaignCall,
    CampaignOutcome,
    FinalTranscript,
)
from core.ids import CallId, CampaignId
from core.testing import FakeClock, RecordingBus

pytestmark = pytest.mark.unit

CALL = CallId("camp-call-1")


@pytest.fixture(scope="module")
def flows() -> FlowSet:
    return load_flows(shipped_flow_paths())


class Rig:
    def __init__(self, tmp: Path, flows: FlowSet, kind: str = "collection", lang: str = "zh", **dialog: Any) -> None:
        synth = ToneSynthesizer(base_ms=40.0, ms_per_char=1.0)
        inline = InlineExecutor()
        voices = VoiceSet({lang: LanguageVoice(lang, synth, "tone", None)})  # type: ignore[dict-item]
        speaker = NavigatorSpeaker(voices, {lang: PromptCache(synth, f"tone-{lang}", tmp)}, executor=inline)  # type: ignore[dict-item]
        self.sink, self.bus, self.clock = RecordingPlaySink(), RecordingBus(), FakeClock()
        fields = {"amount_due": "3200", "due_date": "2026-12-20", "card_last4": "1234"}
        context = CampaignCall(call_id=CALL, campaign_id=CampaignId("c1"), attempt_id="a-1", campaign_kind=kind,
                               lang=lang, customer_id=None, fields=fields, dialog=dialog)  # type: ignore[arg-type]  # fmt: skip
        engine = CampaignEngine(flows, kind=kind, fields=fields, dialog=dialog, banking=FakeCoreBanking(),
                                questions={}, lang=lang, customer_id=None, today=date(2026, 12, 3))  # type: ignore[arg-type]  # fmt: skip
        self.session = CampaignSession(
            CALL, engine=engine, lang=lang, speaker=speaker, sink=self.sink, publish=self.bus.publish,
            intents=ScriptedIntents([]), scripts=answer_scripts([]), config=NavigatorConfig(playback_slack_ms=600_000),
            clock=self.clock, executor=inline, context=context,
        )  # fmt: skip
        self.session.start()

    async def settle(self) -> None:
        for _ in range(200):
            await asyncio.sleep(0)

    async def send(self, *events: Any) -> None:
        for event in events:
            self.session.handle(event)
        await self.settle()

    async def play_out(self) -> None:
        for seg in self.sink.segments():
            if self.sink.closed(seg):
                self.session.handle(BotAudio(call_id=CALL, segment=seg, state="started", at_ms=0.0))
                self.session.handle(BotAudio(call_id=CALL, segment=seg, state="completed", at_ms=0.0, played_ms=900))
        await self.settle()

    def said(self) -> list[str]:
        return [e.text for e in self.bus.published if isinstance(e, BotSaid)]

    def outcomes(self) -> list[CampaignOutcome]:
        return [e for e in self.bus.published if isinstance(e, CampaignOutcome)]


def _amd(verdict: str, reason: str) -> AnsweringMachine:
    return AnsweringMachine(call_id=CALL, verdict=verdict, reason=reason)  # type: ignore[arg-type]


def _final(text: str) -> FinalTranscript:
    return FinalTranscript(call_id=CALL, leg="customer", text=text, start_ms=1_000, end_ms=2_000)


async def test_nothing_is_said_before_the_verdict_then_the_flow_runs(tmp_path: Path, flows: FlowSet) -> None:
    rig = Rig(tmp_path, flows)
    await rig.send(CallAnswered(call_id=CALL, by="customer"), _final("喂？"))
    assert rig.said() == [] and rig.sink.messages == []
    await rig.send(_amd("human", "short_greeting"))
    assert "沃思德演示银行" in rig.said()[0]
    await rig.play_out()
    await rig.send(_final("是我"))
    await rig.play_out()
    await rig.send(_final("二十五号吧"))
    [outcome] = rig.outcomes()
    assert (outcome.final, outcome.result, outcome.machine, outcome.attempt_id) == (
        "promised",
        {"promise_date": "2026-12-25"},
        False,
        "a-1",
    )
    await rig.play_out()
    assert rig.sink.actions()[-1] == "hangup"
    await rig.session.aclose()
    assert len(rig.outcomes()) == 1


async def test_voicemail_waits_for_the_greeting_then_leaves_the_message(tmp_path: Path, flows: FlowSet) -> None:
    rig = Rig(tmp_path, flows, lang="en")
    await rig.send(CallAnswered(call_id=CALL, by="customer"), _amd("machine", "long_greeting"))
    assert rig.said() == []
    await rig.send(_amd("machine", "greeting_ended"))
    assert "Voxdesk Demo Bank" in rig.said()[0] and "3200" not in rig.said()[0]
    [outcome] = rig.outcomes()
    assert outcome.machine and outcome.final is None and outcome.result == {"voicemail": "message_left"}
    await rig.play_out()
    assert rig.sink.actions()[-1] == "hangup"


async def test_voicemail_hangup_campaign_says_nothing(tmp_path: Path, flows: FlowSet) -> None:
    rig = Rig(tmp_path, flows, voicemail="hangup")
    await rig.send(CallAnswered(call_id=CALL, by="customer"), _amd("machine", "many_words"),
                   _amd("machine", "greeting_ended"))  # fmt: skip
    assert rig.said() == [] and rig.sink.actions() == ["hangup"]
    assert rig.outcomes()[0].machine


async def test_without_a_verdict_the_dialog_starts_anyway(tmp_path: Path, flows: FlowSet) -> None:
    rig = Rig(tmp_path, flows)
    await rig.send(CallAnswered(call_id=CALL, by="customer"))
    await rig.settle()
    rig.clock.advance(6.1)
    await rig.settle()
    assert rig.said() and "还款提醒" in rig.said()[0]


async def test_callee_hanging_up_mid_dialog_still_reports(tmp_path: Path, flows: FlowSet) -> None:
    rig = Rig(tmp_path, flows)
    await rig.send(CallAnswered(call_id=CALL, by="customer"), _amd("human", "short_greeting"))
    await rig.session.aclose()
    [outcome] = rig.outcomes()
    assert outcome.final is None and not outcome.opt_out


async def test_stop_calling_me_is_an_opt_out(tmp_path: Path, flows: FlowSet) -> None:
    rig = Rig(tmp_path, flows, lang="en")
    await rig.send(CallAnswered(call_id=CALL, by="customer"), _amd("unknown", "silence"))
    await rig.play_out()
    await rig.send(_final("stop calling me"))
    [outcome] = rig.outcomes()
    assert outcome.opt_out and outcome.final == "opted_out"
    assert "will not call you" in rig.said()[-1]
