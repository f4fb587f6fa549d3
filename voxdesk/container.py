"""Builds the concrete parts of Voxdesk from the settings root (the only place that does)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock, SystemClock
from knowledge.catalog import ProductCatalog
from knowledge.library import QuestionLibrary
from knowledge.retrieval import KnowledgeIndexes
from knowledge.scripts import ScriptStore
from profiles.store import ProfileStore
from qa.analytics import QaAnalytics
from qa.review import QaReview
from qa.store import QaStore
from telephony.callstore import CallStore
from telephony.dialer.campaigns import CampaignBook
from telephony.dialer.report import CampaignReports
from telephony.dialer.store import DialerStore
from voxdesk.auth.service import AuthService
from voxdesk.db import make_engine, make_sessions
from voxdesk.intents import LibraryIntents
from voxdesk.outbox import EventOutbox
from voxdesk.settings import Settings


@dataclass
class Container:
    """The wired application: settings, database and the services the server and CLI use."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    profiles: ProfileStore
    catalog: ProductCatalog
    auth: AuthService
    outbox: EventOutbox
    calls: CallStore
    library: QuestionLibrary
    scripts: ScriptStore
    qa_store: QaStore
    qa_review: QaReview
    qa_analytics: QaAnalytics
    campaigns: CampaignBook
    dialer: DialerStore
    campaign_reports: CampaignReports
    clock: Clock = field(default_factory=SystemClock)
    _indexes: KnowledgeIndexes | None = None
    _indexes_lock: threading.Lock = field(default_factory=threading.Lock)
    _intents: LibraryIntents | None = None

    def indexes(self) -> KnowledgeIndexes:
        """The process's knowledge indexes, built on first use (loads the embedding model: seconds; blocking).

        Raises ``ModelMissingError`` when the configured embedder is not installed.
        """
        with self._indexes_lock:
            if self._indexes is None:
                from voxdesk.registry import build_embedder

                folder = self.settings.knowledge.index_dir
                self._indexes = KnowledgeIndexes(
                    build_embedder(self.settings),
                    library=self.library,
                    scripts=self.scripts,
                    catalog=self.catalog,
                    folder=folder / self.settings.knowledge.embedder,
                    lexical_weight=self.settings.knowledge.lexical_weight,
                )
            return self._indexes

    def intents(self) -> LibraryIntents:
        """The intent classifier over the question library (fits on first classify; blocking, seconds)."""
        with self._indexes_lock:
            if self._intents is None:
                from voxdesk.registry import build_embedder

                cache = self.settings.knowledge.index_dir / self.settings.knowledge.embedder
                self._intents = LibraryIntents(self.library, [build_embedder(self.settings)], cache_dir=cache)
            return self._intents

    def close(self) -> None:
        """Release database connections."""
        self.engine.dispose()


def build_container(settings: Settings, *, clock: Clock | None = None) -> Container:
    """Create engine, sessions and services for ``settings``; does not migrate (see :mod:`voxdesk.db`)."""
    clock = clock or SystemClock()
    engine = make_engine(settings.database)
    sessions = make_sessions(engine)
    outbox = EventOutbox()
    profiles = ProfileStore(sessions, clock=clock, on_change=outbox.put)

    def caller_customer(caller: str) -> str | None:
        """The first (most recently updated) customer with this phone number, for call set-up."""
        return next((c.customer_id for c in profiles.find_by_phone(caller)), None)

    catalog = ProductCatalog(sessions, clock=clock)
    return Container(
        settings=settings,
        engine=engine,
        sessions=sessions,
        profiles=profiles,
        catalog=catalog,
        auth=AuthService(
            sessions,
            clock=clock,
            session_ttl_s=settings.auth.session_ttl_s,
            max_failed_logins=settings.auth.max_failed_logins,
            lockout_s=settings.auth.lockout_s,
        ),
        outbox=outbox,
        calls=CallStore(sessions, clock=clock, caller_lookup=caller_customer),
        library=QuestionLibrary(sessions, clock=clock),
        scripts=ScriptStore(sessions, catalog=catalog, bank_names=settings.knowledge.bank_names, clock=clock),
        qa_store=QaStore(sessions, clock=clock),
        qa_review=QaReview(sessions, clock, scorecards_path=settings.qa.scorecards_path),
        qa_analytics=QaAnalytics(sessions),
        campaigns=CampaignBook(sessions, clock=clock),
        dialer=DialerStore(sessions, clock=clock),
        campaign_reports=CampaignReports(sessions),
        clock=clock,
    )
