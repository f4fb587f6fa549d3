"""Wires the voice navigator's runtime (``agent/navigator``) from the settings root: voices, prompt caches, flows,
the dialog's parts and the hub.

Used by the agent process (:mod:`voxdesk.agent_main`). :func:`build_navigator` is blocking — Piper voices load
(about 1 s each), flow files are read and, with ``warm``, the intent classifier is fitted and every fixed prompt
and playable answer script is rendered into the cache (about a second per prompt on a first start: minutes for the
demo library's 150; later starts read them from disk) — so call it from a worker thread. The agent process builds
it without ``warm`` and warms the cache on a background thread (:meth:`NavigatorWiring.warm_in_background`) while
it already serves calls. The intent classifier is the container's (:meth:`Container.intents`), so the assist room in
the same process shares it instead of fitting its own.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from agent.assist.suggest import IntentSource
from agent.navigator.banking import CoreBanking, DemoCoreBanking
from agent.navigator.campaign import CampaignEngine
from agent.navigator.campaign_session import CampaignSession
from agent.navigator.engine import DialogEngine
from agent.navigator.flow_loader import load_flows, shipped_flow_paths
from agent.navigator.flows import FlowSet
from agent.navigator.handoff import backchannel_sets, sensitive_slots
from agent.navigator.hub import NavigatorHub
from agent.navigator.play_client import PlaySink
from agent.navigator.runtime import NavigatorConfig
from agent.navigator.session import NavigatorSession, Publish
from agent.navigator.speaker import NavigatorSpeaker
from agent.tts.cache import PromptCache
from agent.tts.piper_voice import PiperVoice
from agent.tts.voices import LANGUAGES, VoiceLoader, VoiceSet
from core.bus.base import EventBus
from core.errors import NotFoundError
from core.events import CallStarted, CampaignCall, Event, Lang
from core.logging import get_logger
from knowledge.library import Question
from voxdesk.container import Container

__all__ = ["NavigatorWiring", "build_navigator", "flow_paths", "navigator_lines"]

log = get_logger(__name__)


def navigator_lines(container: Container) -> dict[str, str]:
    """Navigator line names → their language (``zh``, ``en`` or ``auto``), per ``navigator.lines``."""
    wanted = container.settings.navigator.lines
    return {
        line.name: line.lang
        for line in container.settings.telephony.lines
        if (line.name in wanted if wanted is not None else line.kind == "navigator")
    }


def flow_paths(flows_dir: Path | None) -> list[Path]:
    """The shipped flow files, with a file of the same name in ``flows_dir`` replacing the shipped one and the
    bank's other files added after them (blocking: lists the folder)."""
    paths = {p.name: p for p in shipped_flow_paths()}
    if flows_dir is not None:
        for path in sorted(Path(flows_dir).glob("*.yaml")):
            paths[path.name] = path
    return list(paths.values())


@dataclass
class NavigatorWiring:
    """The parts of the navigator built from the settings."""

    container: Container
    flows: FlowSet
    voices: VoiceSet
    speaker: NavigatorSpeaker
    banking: CoreBanking
    intents: IntentSource
    config: NavigatorConfig
    lines: dict[str, str]
    report: list[str] = field(default_factory=list)
    """The start-up report, one line per language (which voice or recordings speak it, or that it cannot)."""
    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(2, "navigator-dialog"))
    """Runs the dialogs' blocking steps (engine with core banking, classifier, script reads)."""

    campaign_calls: dict[str, CampaignCall] = field(default_factory=dict)
    """Contexts of outbound campaign calls announced by the dialer, by call id, until their call starts."""

    def remember_campaign_call(self, event: Event) -> None:
        """Keep a ``dialer.call`` context for the session of its call (event loop; old entries are dropped)."""
        if not isinstance(event, CampaignCall):
            return
        horizon = event.at - timedelta(minutes=10)
        for call_id in [k for k, v in self.campaign_calls.items() if v.at < horizon]:
            del self.campaign_calls[call_id]
        self.campaign_calls[event.call_id] = event

    def open_session(self, started: CallStarted, *, publish: Publish, sink: PlaySink) -> NavigatorSession | None:
        """The session of a call on a navigator line, or of an outbound campaign call the dialer announced
        (blocking: customer lookup, the question library); ``None`` for other calls."""
        if started.direction == "outbound":
            context = self.campaign_calls.pop(started.call_id, None)
            return self._campaign_session(started, context, publish=publish, sink=sink) if context else None
        line_lang = self.lines.get(started.line)
        if line_lang is None:
            return None
        customers = self.container.profiles.find_by_phone(started.caller) if started.caller else []
        customer = customers[0] if customers else None
        lang: Lang = "en" if line_lang == "en" else "zh"
        if line_lang == "auto" and customer is not None:
            lang = customer.language
        questions: Mapping[str, Question] = {q.question_id: q for q in self.container.library.list()}
        engine = DialogEngine(
            self.flows,
            banking=self.banking,
            questions=questions,
            lang=lang,
            customer_id=customer.customer_id if customer else None,
            today=self._today(),
        )
        return NavigatorSession(
            started.call_id,
            engine=engine,
            lang=lang,
            speaker=self.speaker,
            sink=sink,
            publish=publish,
            intents=self.intents,
            scripts=self.container.scripts,
            media_worker=started.media_worker or 0,
            questions=questions,
            config=self.config,
            clock=self.container.clock,
            executor=self.executor,
        )

    def _campaign_session(
        self, started: CallStarted, context: CampaignCall, *, publish: Publish, sink: PlaySink
    ) -> CampaignSession:
        """The session of an outbound campaign call (blocking: the approved marketing script is read)."""
        lang: Lang = context.lang
        dialog = dict(context.dialog)
        script_id = dialog.get("script_id")
        if script_id:
            try:
                script = self.container.scripts.approved(str(script_id))
                dialog["product_script"] = script.text_zh if lang == "zh" else script.text_en
            except NotFoundError:
                log.error("campaign script has no approved version", call_id=started.call_id, script_id=script_id)
        engine = CampaignEngine(
            self.flows, kind=context.campaign_kind, fields=context.fields, dialog=dialog, banking=self.banking,
            questions={}, lang=lang, customer_id=context.customer_id, today=self._today(),
        )  # fmt: skip
        return CampaignSession(
            started.call_id, engine=engine, lang=lang, speaker=self.speaker, sink=sink, publish=publish,
            intents=self.intents, scripts=self.container.scripts, media_worker=started.media_worker or 0,
            config=self.config, clock=self.container.clock, executor=self.executor, context=context,
        )  # fmt: skip

    def hub(self, bus: EventBus, sink: PlaySink, *, index: int = 0) -> NavigatorHub:
        """A :class:`NavigatorHub` on ``bus`` sending bot audio to ``sink``, serving its share (``index``) of the
        calls (as many shares as ``assist.agent_workers``: the agent processes)."""

        def factory(started: CallStarted) -> NavigatorSession | None:
            return self.open_session(started, publish=bus.publish, sink=sink)

        return NavigatorHub(
            bus,
            factory,
            executor=self.executor,
            partition=(index, max(1, self.container.settings.assist.agent_workers)),
            side_kinds=("dialer.call",),
            on_side=self.remember_campaign_call,
        )

    def warm(self, stop: threading.Event | None = None) -> dict[Lang, int]:
        """Render every fixed prompt and playable approved answer into the prompt cache (blocking: about a second
        per prompt not cached yet, so minutes on a first start with a large library; then a quick check)."""
        questions = {q.question_id: q for q in self.container.library.list()}
        return self.speaker.warm(self.flows, questions=questions, scripts=self.container.scripts, stop=stop)

    def warm_in_background(self) -> threading.Event:
        """:meth:`warm` on a daemon thread, so that calls are served meanwhile (a prompt not yet cached is rendered
        when it is first said); set the returned event to stop it early (shutdown)."""
        stop = threading.Event()

        def run() -> None:
            try:
                self.warm(stop)
            except Exception:  # task root of the thread: a cold cache only makes first prompts slower
                log.exception("navigator prompt cache warm-up failed")

        threading.Thread(target=run, name="navigator-warm", daemon=True).start()
        return stop

    def close(self) -> None:
        """Stop the speaker's and the dialogs' thread pools."""
        self.speaker.close()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def _today(self) -> date:
        return self.container.clock.now().date()


def _caches(voices: VoiceSet, root: Path, rate_hz: int) -> dict[Lang, PromptCache]:
    caches: dict[Lang, PromptCache] = {}
    for lang in LANGUAGES:
        synthesizer = voices.synthesizer(lang)
        if isinstance(synthesizer, PiperVoice):
            caches[lang] = PromptCache.for_piper(synthesizer, root, rate_hz=rate_hz)
        elif synthesizer is not None:
            name = voices[lang].voice_name or type(synthesizer).__name__
            caches[lang] = PromptCache(synthesizer, f"{lang}-{_safe(name)}", root, rate_hz=rate_hz)
    return caches


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name) or "voice"


def build_navigator(
    container: Container,
    *,
    warm: bool = True,
    intents: IntentSource | None = None,
    voice_loader: VoiceLoader | None = None,
) -> NavigatorWiring:
    """Build the navigator parts (blocking; see the module docstring). ``intents`` replaces the container's
    classifier and ``voice_loader`` the Piper loader (tests)."""
    settings = container.settings
    nav = settings.navigator
    rate_hz = settings.telephony.clock_rate_hz
    voices = VoiceSet.load(voices=nav.voices, prompt_dirs=nav.prompt_dirs, loader=voice_loader)
    report = voices.describe()
    for lang, line in zip(LANGUAGES, report, strict=True):
        entry = voices[lang]
        if not entry.can_speak:
            log.error("navigator language cannot speak", lang=lang, report=line)
        elif entry.synthesizer is None or entry.problems:
            log.warning("navigator voice", lang=lang, report=line)
        else:
            log.info("navigator voice", lang=lang, report=line)
    flows = load_flows(flow_paths(nav.flows_dir))
    speaker = NavigatorSpeaker(
        voices, _caches(voices, nav.prompt_cache_dir, rate_hz), rate_hz=rate_hz, threads=nav.pool_threads
    )
    classifier = intents if intents is not None else container.intents()
    config = NavigatorConfig(
        sample_rate_hz=rate_hz,
        resume_after_ms=nav.resume_after_ms,
        backchannels=backchannel_sets(nav.backchannels),
        skill_groups=dict(nav.skill_groups),
        default_transfer_uri=nav.default_transfer_uri,
        sensitive_slots=sensitive_slots(flows),
    )
    wiring = NavigatorWiring(
        container=container,
        flows=flows,
        voices=voices,
        speaker=speaker,
        banking=DemoCoreBanking(container.profiles),
        intents=classifier,
        config=config,
        lines=navigator_lines(container),
        report=report,
    )
    if warm:
        classifier.classify("你好")
        wiring.warm()
    return wiring
