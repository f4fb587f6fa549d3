"""One navigator call at run time: live call events in, the dialog engine in the middle, bot audio and call
commands out to the media worker.

Life cycle: the hub opens the session on ``CallStarted`` and calls :meth:`NavigatorSession.start`;
``CallAnswered(by="bot")`` runs :meth:`DialogEngine.start`; the engine's actions are carried out in order —
:class:`Say` and :class:`PlayAnswer` become numbered *segments* of bot audio (``BotSaid`` is published when the
first chunk goes out), :class:`Listen` arms the no-input timer once every segment queued before it has
``completed`` or been ``stopped`` (``BotAudio`` from the media worker), :class:`Transfer` publishes a
``NavigatorHandoff`` and sends the transfer command (with no URI for the skill group: an apology and a hangup;
``CallTransferred(status="failed")`` gets the same), :class:`Hangup` sends the hangup command. Commands go out
after the audio queued before them, so the media worker plays that first. Should the end events of those segments
never come, the no-input timer starts anyway once their length plus ``playback_slack_ms`` has passed.

Caller input: a customer ``FinalTranscript`` is classified (intent steps only, off the loop), published as
``IntentDetected`` and fed to the engine; ``DtmfReceived`` is fed as a key. **Barge-in**: ``SpeechStarted`` while an
interruptible segment is at the head of the queue sends ``pause`` at once (and holds back segments not yet begun);
the utterance's final then either ``resume``s it (empty, or a backchannel of the call's language) or ``stop``s every
interruptible segment and is fed; no partial or final within ``resume_after_ms`` resumes. Speech never pauses a
non-interruptible segment: a final heard during one is held until it ends. A key pressed while interruptible audio
is queued stops it. After a transfer or hangup has been decided, caller input is ignored.

Threads: every method runs on the agent process's event loop; the engine, the classifier and script reads run on
``executor`` (one at a time per call, in order), speech on the speaker's pool. Nothing raises into the hub: errors
are logged with the call id and counted in :attr:`NavigatorSession.stats`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

from agent.assist.suggest import IntentSource
from agent.navigator.actions import Action, Hangup, Listen, PlayAnswer, Say, Transfer, TransferContext
from agent.navigator.engine import DialogEngine
from agent.navigator.handoff import (
    BUILTIN_PROMPTS,
    NO_AGENT_KEY,
    handoff_event,
    intent_detected,
    is_backchannel,
    normalise,
)
from agent.navigator.play_client import PlaySink
from agent.navigator.playback import CallPlayback
from agent.navigator.runtime import NavigatorConfig, SessionStats, Timer, TurnTiming, keep_last
from agent.navigator.speaker import NavigatorSpeaker
from core.clock import Clock, SystemClock
from core.errors import NotFoundError
from core.events import (
    BotAudio,
    CallAnswered,
    CallTransferred,
    DtmfReceived,
    Event,
    FinalTranscript,
    Lang,
    PartialTranscript,
    SpeechStarted,
)
from core.ids import CallId
from core.logging import get_logger
from core.media import PlayControl
from knowledge.library import Question
from knowledge.script_models import ApprovedScripts

__all__ = ["NavigatorSession", "Publish"]

log = get_logger(__name__)
T = TypeVar("T")

Publish = Callable[[Event], Awaitable[None]]
"""Puts an event on the bus (``EventBus.publish``), event-loop thread."""

_INTENT_SLOTS = ("intent", "confirm_intent")


@dataclass(frozen=True)
class _Input:
    kind: str
    """``start``, ``utterance``, ``dtmf`` or ``no_input``."""
    text: str = ""
    turn: TurnTiming | None = None


class NavigatorSession:
    """The runtime of one navigator call (see the module docstring). ``media_worker`` holds the call;
    ``questions`` (question id → question) names intents in ``IntentDetected``."""

    def __init__(
        self,
        call_id: CallId,
        *,
        engine: DialogEngine,
        lang: Lang,
        speaker: NavigatorSpeaker,
        sink: PlaySink,
        publish: Publish,
        intents: IntentSource,
        scripts: ApprovedScripts,
        media_worker: int = 0,
        questions: Mapping[str, Question] | None = None,
        config: NavigatorConfig | None = None,
        clock: Clock | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.call_id = call_id
        self.lang: Lang = lang
        self.engine = engine
        self.config = config or NavigatorConfig()
        self.stats = SessionStats()
        self._publish_to, self._intents, self._scripts = publish, intents, scripts
        self._questions = questions or {}
        self._clock = clock or SystemClock()
        self._executor = executor
        self._voices = speaker.voices
        self.playback = CallPlayback(
            call_id, lang=lang, speaker=speaker, sink=sink, publish=self._publish, clock=self._clock,
            stats=self.stats, on_change=self._after_segment, media_worker=media_worker,
            rate_hz=self.config.sample_rate_hz,
        )  # fmt: skip
        self._inputs: asyncio.Queue[_Input] = asyncio.Queue()
        self._busy = 0
        """Inputs queued for or in the dialog."""
        self._listen: Listen | None = None
        self._listen_after = 0
        """The last segment queued before the current Listen."""
        self._no_input = Timer(self._clock, f"navigator-no-input-{call_id}")
        self._watch = Timer(self._clock, f"navigator-utterance-{call_id}")
        self._guard = Timer(self._clock, f"navigator-playback-{call_id}")
        self._speaking = False
        self._held: list[_Input] = []
        self._sensitive_turns: set[int] = set()
        self._answered = False
        self._gave_up = False
        self._transfer_to: str | None = None
        """The URI a transfer command was sent for."""
        self.closing = False
        """A transfer or hangup has been decided: caller input is no longer heard."""
        self.transferred = False
        """The media worker reported the transfer connected."""
        self._task: asyncio.Task[None] | None = None

    # --- life cycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the session's dialog and playback tasks (event loop)."""
        if self._task is None:
            self._task = asyncio.create_task(self._dialog(), name=f"navigator-dialog-{self.call_id}")
            self.playback.start()

    async def aclose(self) -> None:
        """Stop every task and timer of the call (it ended); nothing more is sent."""
        for timer in (self._no_input, self._watch, self._guard):
            await timer.aclose()
        await self.playback.aclose()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def idle(self) -> bool:
        """Nothing queued, playing or being decided (tests and diagnostics)."""
        return self.playback.idle and self._busy == 0

    def handle(self, event: Event) -> None:
        """React to one call event at once (event loop; returns without waiting for synthesis or the dialog)."""
        try:
            self._route(event)
        except Exception:  # task root: one bad event must not end the call's dialog
            self.stats.errors += 1
            log.exception("navigator event failed", call_id=self.call_id, kind=getattr(event, "kind", "?"))

    # --- events -----------------------------------------------------------------------------------------------

    @property
    def _hearing(self) -> bool:
        """Caller input counts: the bot answered and no transfer or hangup has been decided."""
        return self._answered and not self.closing

    def _route(self, event: Event) -> None:
        if isinstance(event, BotAudio):
            if self.playback.on_bot_audio(event):
                self._after_segment()
            else:
                self._update_guard()
        elif isinstance(event, SpeechStarted | PartialTranscript):
            if event.leg == "customer" and self._hearing:
                self._on_speech(fresh=isinstance(event, SpeechStarted) or not self._speaking)
        elif isinstance(event, FinalTranscript):
            if event.leg == "customer" and self._hearing:
                self._on_final(event.text)
        elif isinstance(event, DtmfReceived):
            if self._hearing:
                if self.playback.any_interruptible():
                    self.playback.stop()  # keypad barge-in
                self._enqueue(_Input("dtmf", event.digit))
        elif isinstance(event, CallAnswered):
            if event.by == "bot" and not self._answered:
                self._answered = True
                self._enqueue(_Input("start"))
        elif isinstance(event, CallTransferred):
            if event.status == "failed" and self._transfer_to is not None and not self._gave_up:
                log.warning("navigator transfer failed", call_id=self.call_id, skill_group=event.skill_group,
                            sip_code=event.sip_code)  # fmt: skip
                self._apologise_and_hang_up("transfer_failed")
            elif event.status == "connected":
                self.transferred = True

    def _on_speech(self, *, fresh: bool) -> None:
        """The caller started speaking (or a partial says they still are)."""
        self._speaking = True
        self._no_input.cancel()
        self._watch.arm(self.config.resume_after_ms, self._utterance_lapsed)
        if fresh:
            self._pause_if_interruptible()

    def _on_final(self, text: str) -> None:
        self._speaking = False
        self._watch.cancel()
        turn = TurnTiming(self._clock.monotonic() * 1000.0)
        norm = normalise(text)
        filler = is_backchannel(text, self.config.backchannels.get(self.lang, frozenset()))
        head = self.playback.head()
        if self.playback.paused:
            if filler:
                self.stats.backchannels += 1
                self.playback.resume()
                self._after_segment()
                return
            self.playback.stop()
        elif head is None:
            if not norm:
                self._maybe_arm_no_input()
                return
        elif filler:
            self.stats.backchannels += 1  # said over the bot's speech: not an answer
            return
        elif not head.interruptible:
            self.stats.held_finals += 1
            self._held.append(_Input("utterance", text, turn))
            return
        else:
            self.playback.stop()
        self._enqueue(_Input("utterance", text, turn))

    def _after_segment(self) -> None:
        """The queue changed: release held finals, pause a prompt that starts under speech, arm the timer."""
        head = self.playback.head()
        if self.closing:
            self._held = []
        if self._held and (head is None or head.interruptible):
            held, self._held = self._held, []
            if head is not None:
                self.playback.stop()
            for item in held:
                self._enqueue(item)
            return
        if self._speaking and self._hearing:
            self._pause_if_interruptible()
        self._maybe_arm_no_input()
        self._update_guard()

    def _utterance_lapsed(self) -> None:
        """No partial or final came within ``resume_after_ms``: a click or a cough."""
        self._speaking = False
        if self.playback.paused:
            self.playback.resume()
        self._after_segment()

    def _pause_if_interruptible(self) -> None:
        head = self.playback.head()
        if head is not None and head.interruptible and not self.playback.paused:
            self.playback.pause()
            self._guard.cancel()

    # --- the no-input timer ---------------------------------------------------------------------------------

    def _maybe_arm_no_input(self) -> None:
        listen = self._listen
        if listen is None or self.closing or self._speaking or self._busy or self._no_input.armed:
            return
        if self.playback.up_to(self._listen_after):
            return
        self._guard.cancel()
        self._no_input.arm(listen.timeout_ms, self._no_input_due)

    def _no_input_due(self) -> None:
        self.stats.no_inputs += 1
        self._enqueue(_Input("no_input"))

    def _update_guard(self) -> None:
        """Arm the playback guard once the prompts before the Listen are sent whole (see ``playback_slack_ms``)."""
        awaited = self.playback.up_to(self._listen_after) if self._listen is not None else []
        sent = all(s.sent_all or s.cancelled for s in awaited)
        if not awaited or self.playback.paused or self._no_input.armed or not sent:
            self._guard.cancel()
            return
        remaining = sum(max(0, s.audio_ms - s.played_ms) for s in awaited)
        self._guard.arm(remaining + self.config.playback_slack_ms, self._playback_lapsed)

    def _playback_lapsed(self) -> None:
        self.stats.playback_timeouts += 1
        log.warning("navigator bot audio end events missing; listening anyway", call_id=self.call_id)
        self.playback.forget(self._listen_after)
        self._after_segment()

    # --- the dialog ---------------------------------------------------------------------------------------------

    def _enqueue(self, item: _Input) -> None:
        self._busy += 1
        self._no_input.cancel()
        self._inputs.put_nowait(item)

    async def _dialog(self) -> None:
        while True:
            item = await self._inputs.get()
            try:
                await self._step(item)
            except Exception:  # task root: the call goes on with its next input
                self.stats.errors += 1
                log.exception("navigator dialog step failed", call_id=self.call_id, input=item.kind)
            finally:
                self._busy -= 1
            self._maybe_arm_no_input()

    async def _step(self, item: _Input) -> None:
        engine = self.engine
        actions: list[Action]
        if item.kind == "start" and not self._voices.can_speak(self.lang):
            # a line whose language has no voice and no recordings: straight to a person when there is one to take
            # it; otherwise the bot stays out of the call (it is still recorded and transcribed), never pretending
            if not (self.config.skill_groups.get("general") or self.config.default_transfer_uri):
                log.error("navigator cannot speak this call's language and has nobody to transfer to; not serving it",
                          call_id=self.call_id, lang=self.lang)  # fmt: skip
                self.closing = True
                return
            log.error("navigator cannot speak this call's language; transferring", call_id=self.call_id,
                      lang=self.lang)  # fmt: skip
            context = TransferContext("no_voice", (), None, None, None, False)
            actions = [Transfer("general", context)]
        elif item.kind == "start":
            actions = await self._blocking(engine.start)
        elif item.kind == "no_input":
            actions = await self._blocking(engine.on_no_input)
        else:
            listen = self._listen
            sensitive = listen is not None and listen.slot in self.config.sensitive_slots
            before = len(engine.transcript)
            if item.kind == "dtmf":
                actions = await self._blocking(engine.on_dtmf, item.text)
            else:
                actions = await self._utterance(item, listen)
            if sensitive and len(engine.transcript) > before:
                self._sensitive_turns.add(before)  # the caller's answer: masked in a handoff
        await self._carry_out(actions, item.turn)

    async def _utterance(self, item: _Input, listen: Listen | None) -> list[Action]:
        turn = item.turn
        if turn is not None:
            keep_last(self.stats.turns, turn)
        result = None
        if listen is not None and listen.slot in _INTENT_SLOTS:
            result = await self._blocking(self._intents.classify, item.text)
            await self._publish(intent_detected(self.call_id, item.text, result, self._questions, self.lang))
        actions = await self._blocking(self.engine.on_utterance, item.text, result)
        if turn is not None:
            turn.intent_ms = self._clock.monotonic() * 1000.0
        return actions

    async def _carry_out(self, actions: list[Action], turn: TurnTiming | None) -> None:
        play = self.playback
        for action in actions:
            if isinstance(action, Say):
                key = action.prompt_key
                play.say(action.text, action.interruptible, key, fixed=key is not None, turn=turn)
                turn = None
            elif isinstance(action, PlayAnswer):
                text = await self._blocking(self._answer_text, action.script_id)
                if text:
                    play.say(text, True, f"script:{action.script_id}", fixed=True, audio_key=action.script_id,
                             turn=turn)  # fmt: skip
                    turn = None
            elif isinstance(action, Listen):
                self._listen, self._listen_after = action, play.last_number
                self._no_input.cancel()
                self._update_guard()
            elif isinstance(action, Transfer):
                await self._transfer(action)
            elif isinstance(action, Hangup):
                self._close_with(PlayControl(self.call_id, "hangup", reason=action.reason))

    def _answer_text(self, script_id: str) -> str | None:
        """Executor: the approved answer's text in the call's language, ``None`` when there is none."""
        try:
            script = self._scripts.approved(script_id)
        except NotFoundError:
            log.warning("navigator answer has no approved version", call_id=self.call_id, script_id=script_id)
            return None
        return (script.text_zh if self.lang == "zh" else script.text_en) or None

    async def _transfer(self, action: Transfer) -> None:
        group = action.skill_group
        event = handoff_event(
            self.call_id, action, sensitive=self.config.sensitive_slots, sensitive_turns=self._sensitive_turns
        )
        self.closing, self._listen = True, None
        await self._publish(event)
        uri = self.config.skill_groups.get(group) or self.config.default_transfer_uri
        if not uri:
            log.warning("navigator transfer has no target URI", call_id=self.call_id, skill_group=group)
            self._apologise_and_hang_up("no_transfer_target")
            return
        self._transfer_to = uri
        self._close_with(
            PlayControl(self.call_id, "transfer", target=uri, skill_group=group, reason=action.context.reason)
        )

    def _apologise_and_hang_up(self, reason: str) -> None:
        self._gave_up = True
        self.closing = True
        self.playback.say(BUILTIN_PROMPTS[NO_AGENT_KEY].in_lang(self.lang), False, NO_AGENT_KEY, fixed=True)
        self._close_with(PlayControl(self.call_id, "hangup", reason=reason))

    def _close_with(self, command: PlayControl) -> None:
        self.closing, self._listen = True, None
        self._no_input.cancel()
        self._guard.cancel()
        self.playback.command(command)

    # --- helpers ------------------------------------------------------------------------------------------------

    async def _publish(self, event: Event) -> None:
        try:
            await self._publish_to(event)
        except Exception:  # a lost event must not stop the dialog
            self.stats.errors += 1
            log.exception("navigator event not published", call_id=self.call_id, kind=getattr(event, "kind", "?"))

    async def _blocking(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(*args))
