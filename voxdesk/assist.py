"""Wires the live assist room (``agent/assist``) from the settings root: sessions, summaries, the hub.

Used by the agent process (:mod:`voxdesk.agent_main`) and by ``voxdesk bench assist``. Building the factory loads
the embedding model and fits the intent classifier (seconds, blocking): call it from a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.assist.compliance import AgentSpeechMonitor, ComplianceLexicon
from agent.assist.hub import AssistHub
from agent.assist.mood import DissatisfactionTracker
from agent.assist.rules import load_rules
from agent.assist.session import AssistConfig, AssistSession
from agent.assist.store import AssistStore
from agent.assist.suggest import SuggestionConfig, SuggestionEngine
from agent.assist.summary import CallRecord, ExtractiveSummarizer, LlmSummarizer, build_chat_model
from core.bus.base import EventBus
from core.errors import NotFoundError
from core.events import CallEnded, CallStarted, CallSummarized, Lang, NavigatorHandoff
from core.logging import get_logger
from nlu.sentiment import SentimentScorer
from profiles.models import Customer
from voxdesk.container import Container
from voxdesk.registry import build_sentiment

__all__ = ["AssistWiring", "assisted_lines", "build_assist"]

log = get_logger(__name__)


def assisted_lines(container: Container) -> dict[str, str]:
    """Assisted line names → their language (``zh``, ``en`` or ``auto``), per ``assist.lines``."""
    wanted = container.settings.assist.lines
    return {
        line.name: line.lang
        for line in container.settings.telephony.lines
        if (line.name in wanted if wanted is not None else line.kind == "assisted")
    }


@dataclass
class AssistWiring:
    """The parts of the assist room built from the settings."""

    container: Container
    engine: SuggestionEngine
    store: AssistStore
    lines: dict[str, str]
    summarizer: ExtractiveSummarizer | LlmSummarizer
    scorer: SentimentScorer
    lexicon: ComplianceLexicon

    def open_session(self, started: CallStarted) -> AssistSession | None:
        """The session of a call on an assisted line (blocking: customer lookup); ``None`` for other lines."""
        line_lang = self.lines.get(started.line)
        if line_lang is None:
            return None
        return self._session(started, line_lang, self._customer(started.caller))

    def open_handoff(self, started: CallStarted, handoff: NavigatorHandoff) -> AssistSession:
        """The session of a navigator call handed to a human: the customer the navigator identified (else the one
        matched by phone number), in the language of the call's line (blocking)."""
        line = next((ln for ln in self.container.settings.telephony.lines if ln.name == started.line), None)
        line_lang = line.lang if line is not None else "auto"
        customer = None
        if handoff.customer_id is not None:
            try:
                customer = self.container.profiles.get(handoff.customer_id)
            except NotFoundError:
                customer = None
        return self._session(started, line_lang, customer or self._customer(started.caller))

    def _session(self, started: CallStarted, line_lang: str, customer: Customer | None) -> AssistSession:
        lang: Lang = "en" if line_lang == "en" else "zh"
        if line_lang == "auto" and customer is not None:
            lang = customer.language
        settings = self.container.settings.assist
        products = self.container.catalog.list()
        return AssistSession(
            started.call_id,
            engine=self.engine,
            lang=lang,
            customer=customer,
            monitor=AgentSpeechMonitor(products, lang=lang, rules=self.lexicon),
            mood=DissatisfactionTracker(self.scorer, lang=lang),
            config=AssistConfig(
                max_visible=settings.max_visible,
                repeat_after_ms=settings.repeat_after_ms,
                max_per_minute=settings.max_per_minute,
                prefetch=settings.prefetch,
            ),
            auto_lang=line_lang == "auto",
        )

    def summarize(self, session: AssistSession, ended: CallEnded) -> CallSummarized | None:
        """The post-call summary of a session (``None`` when nothing was said)."""
        if not session.log.utterances:
            return None
        names = {p.product_id: (p.name_zh, p.name_en) for p in self.container.catalog.list(on_sale_only=False)}
        record = CallRecord(
            call_id=session.call_id,
            customer_id=session.customer.customer_id if session.customer else None,
            lang=session.lang,
            utterances=tuple(session.log.utterances),
            intents=tuple(session.log.intents),
            suggestions=tuple(session.log.suggestions),
            used_suggestion_ids=frozenset(session.log.used),
            product_names=names,
            alerts=tuple(session.log.alerts),
        )
        return self.summarizer.summarize(record)

    def write_timeline(self, summary: CallSummarized) -> None:
        """Put the summary on the customer's profile timeline (blocking)."""
        if summary.customer_id is None:
            return
        try:
            self.container.profiles.add_timeline(
                summary.customer_id,
                kind="call",
                summary=summary.text[:500],
                ref=summary.call_id,
                data={
                    "reason": summary.reason,
                    "resolution": summary.resolution,
                    "products": list(summary.products),
                    "follow_ups": list(summary.follow_ups),
                    "source": summary.source,
                },
            )
        except NotFoundError:
            log.warning("summary not on timeline: customer gone", call_id=summary.call_id)

    def hub(self, bus: EventBus, *, index: int = 0) -> AssistHub:
        """An :class:`AssistHub` on ``bus`` with these parts, serving its share (``index``) of the calls."""
        return AssistHub(
            bus,
            self.open_session,
            self.store,
            summarize=self.summarize,
            on_summary=self.write_timeline,
            partition=(index, max(1, self.container.settings.assist.agent_workers)),
            handoff_factory=self.open_handoff,
        )

    def _customer(self, caller: str | None) -> Customer | None:
        if not caller:
            return None
        found = self.container.profiles.find_by_phone(caller)
        return found[0] if found else None


def build_assist(container: Container, *, warm: bool = True) -> AssistWiring:
    """Build the assist parts; with ``warm`` the intent classifier is fitted and the sentiment models loaded now
    (seconds, blocking) so that the first call is not slow."""
    settings = container.settings.assist
    intents = container.intents()
    engine = SuggestionEngine(
        intents=intents,
        library=container.library,
        scripts=container.scripts,
        catalog=container.catalog,
        config=SuggestionConfig(min_confidence=settings.min_confidence),
    )
    scorer = build_sentiment(container.settings)
    if warm:
        intents.classify("你好")
        scorer.score("你好", "zh")
    extractive = ExtractiveSummarizer()
    summarizer: ExtractiveSummarizer | LlmSummarizer = extractive
    llm = settings.summary_llm
    if llm is not None:
        model = build_chat_model(llm.base_url, llm.model, llm.api_key.get_secret_value())
        summarizer = LlmSummarizer(model, fallback=extractive)
    return AssistWiring(
        container=container,
        engine=engine,
        store=AssistStore(container.sessions, clock=container.clock),
        lines=assisted_lines(container),
        summarizer=summarizer,
        scorer=scorer,
        lexicon=ComplianceLexicon(load_rules(settings.rules_file)),
    )
