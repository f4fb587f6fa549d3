"""A navigator session against the media worker's real bot-audio queue (:class:`telephony.playout.Playout`), through
the play channel's wire format: the disclosure plays through speech, a barge-in pauses and stops the menu, the
answer plays, and the no-input timer starts only after the Playout reported the prompts complete."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.navigator import load_flows, shipped_flow_paths
from agent.navigator.engine import DialogEngine
from agent.navigator.runtime import NavigatorConfig
from agent.navigator.session import NavigatorSession
from agent.navigator.speaker import NavigatorSpeaker
from agent.navigator.testing import FakeCoreBanking, InlineExecutor, demo_questions
from agent.testing import ScriptedIntents, ToneSynthesizer, answer_scripts
from agent.tts.cache import PromptCache
from agent.tts.voices import LanguageVoice, VoiceSet
from core.events import BotAudio, BotSaid, CallAnswered, FinalTranscript, SpeechStarted
from core.ids import CallId
from core.media import PlayAudio, PlayControl, PlayMessage, decode_play, encode_play
from core.testing import FakeClock, RecordingBus
from telephony.playout import Playout

pytestmark = pytest.mark.unit

CALL = CallId("contract-1")


class PlayoutSink:
    """The media worker's play-channel routing, in process: audio and barge-in controls to the Playout."""

    def __init__(self, playout: Playout) -> None:
        self.playout = playout
        self.commands: list[PlayControl] = []

    def send(self, media_worker: int, message: PlayMessage) -> None:
        m = decode_play(encode_play(message))
        if isinstance(m, PlayAudio):
            self.playout.add(m.segment, m.payload, interruptible=m.interruptible, last=m.last)
        elif m.action in ("pause", "resume", "stop"):
            self.playout.control(m.action)
        else:
            self.commands.append(m)


async def test_session_and_playout_agree_on_the_contract(tmp_path: Path) -> None:
    events: list[BotAudio] = []
    holder: list[NavigatorSession] = []

    def notify(event: BotAudio) -> None:
        events.append(event)
        holder[0].handle(event)

    playout = Playout(CALL, 320, notify, wall_ms=lambda: 0.0)
    synth = ToneSynthesizer(base_ms=60.0, ms_per_char=1.0)
    inline, clock, bus = InlineExecutor(), FakeClock(), RecordingBus()
    questions = demo_questions()
    flows = load_flows(shipped_flow_paths())
    session = NavigatorSession(
        CALL,
        engine=DialogEngine(flows, banking=FakeCoreBanking(), questions=questions, lang="en", today=clock.now().date()),
        lang="en",
        speaker=NavigatorSpeaker(
            VoiceSet({"en": LanguageVoice("en", synth, "tone", None)}),
            {"en": PromptCache(synth, "tone-en", tmp_path)},
            executor=inline,
        ),
        sink=PlayoutSink(playout),
        publish=bus.publish,
        intents=ScriptedIntents([("balance", "accounts.balance_inquiry", 0.95)]),
        scripts=answer_scripts(questions.values()),
        config=NavigatorConfig(playback_slack_ms=600_000),
        clock=clock,
        executor=inline,
    )
    holder.append(session)
    session.start()

    async def settle() -> None:
        for _ in range(100):
            await asyncio.sleep(0)

    async def tick(frames: int) -> None:
        for _ in range(frames):
            playout.next_frame()
        await settle()

    def states(segment: int) -> list[str]:
        return [e.state for e in events if e.segment == segment]

    session.handle(CallAnswered(call_id=CALL, by="bot"))
    await settle()
    await tick(3)
    session.handle(SpeechStarted(call_id=CALL, leg="customer", start_ms=60))
    await tick(2)
    assert states(1) == ["started"]  # the disclosure is not paused
    await tick(400)  # disclosure done; the menu starts and, the caller still speaking, is paused at once
    # (in process the pause lands inside the tick that starts the menu, so "paused" is reported before "started")
    assert states(1) == ["started", "completed"] and sorted(states(2)) == ["paused", "started"]
    session.handle(FinalTranscript(call_id=CALL, leg="customer", text="my balance", start_ms=60, end_ms=900))
    await settle()
    assert states(2)[-1] == "stopped"
    await tick(2000)
    said = [e.prompt_key for e in bus.published if isinstance(e, BotSaid)]
    assert said[-3:] == ["balance_intro", "identity_intro", "ask_last4"]
    last = max(e.segment for e in events)
    assert states(last)[-1] == "completed" and playout.drained()
    clock.advance(5.1)  # the ask step's 5 s timer started when the Playout reported the prompts complete
    await settle()
    assert session.stats.no_inputs == 1
    await session.aclose()
