"""FAISS indexes and the retrieval API with the hashing embedder: approved-only scripts, incremental rebuilds,
persistence with a version, hybrid BM25 ranking, jieba tokens."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import StaticPool

import knowledge.tables  # noqa: F401
import profiles.tables  # noqa: F401
from core.db import Base
from core.errors import InvalidInputError
from knowledge.embeddings import Vectors
from knowledge.index import FaissIndex, Passage
from knowledge.lexical import Bm25Index, tokenize
from knowledge.retrieval import HybridSearcher, KnowledgeIndexes
from knowledge.scripts import Reviewer, ScriptDraft, ScriptSpec, ScriptStore
from knowledge.testing import (
    FakeProductCatalog,
    FakeQuestionLibrary,
    HashingEmbedder,
    sample_products,
    sample_questions,
)

pytestmark = pytest.mark.unit
COMPLIANCE = Reviewer(user_id="officer", roles=("compliance",))


class CountingEmbedder(HashingEmbedder):
    """Counts the passages it embeds."""

    def __init__(self) -> None:
        super().__init__(dim=64)
        self.passages = 0

    def embed_passages(self, texts: Sequence[str]) -> Vectors:
        self.passages += len(texts)
        return super().embed_passages(texts)


@pytest.fixture
def scripts() -> Iterator[ScriptStore]:
    engine = create_engine("sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False})
    Base.metadata.create_all(engine)
    try:
        yield ScriptStore(sessionmaker(engine, expire_on_commit=False), catalog=FakeProductCatalog(sample_products()),
                          bank_names=("Bank",))  # fmt: skip
    finally:
        engine.dispose()


def _approve(store: ScriptStore, script_id: str) -> None:
    version = store.versions(script_id)[-1].version
    store.submit(script_id, version)
    store.approve(script_id, version, COMPLIANCE)


def test_index_updates_incrementally_and_persists(tmp_path: Path) -> None:
    embedder = CountingEmbedder()
    index = FaissIndex(embedder)
    first = index.update([Passage("a", "lost card"), Passage("b", "deposit rates"), Passage("c", "transfer limit")])
    assert (first.embedded, first.reused, first.removed, embedder.passages) == (3, 0, 0, 3)
    second = index.update([Passage("a", "lost card"), Passage("b", "time deposit rates")], revision="r2")
    assert (second.embedded, second.reused, second.removed, embedder.passages) == (1, 1, 1, 4)
    assert index.search("time deposit rates", 1)[0][0] == "b"
    index.save(tmp_path / "ix")
    loaded = FaissIndex.load(tmp_path / "ix", embedder)
    assert (loaded.ids, loaded.revision, loaded.kind) == (["a", "b"], "r2", "flat")
    assert loaded.search("lost card", 1)[0][0] == "a"
    third = loaded.update([Passage("a", "lost card"), Passage("b", "time deposit rates")])
    assert third.embedded == 0 and embedder.passages == 4
    with pytest.raises(InvalidInputError):
        FaissIndex.load(tmp_path / "ix", HashingEmbedder(dim=32))  # another embedder
    (tmp_path / "ix" / "vectors.npy").write_bytes(b"garbage")
    with pytest.raises(InvalidInputError):
        FaissIndex.load(tmp_path / "ix", embedder)
    with pytest.raises(InvalidInputError):
        index.update([Passage("a", "x"), Passage("a", "y")])


def test_large_indexes_switch_to_hnsw() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((300, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = FaissIndex.from_vectors(HashingEmbedder(), [f"p{i}" for i in range(300)], vectors, hnsw_above=100)
    assert index.kind == "hnsw"
    hits = index.search_vectors(vectors[:20], 1)
    assert sum(h[0][0] == f"p{i}" for i, h in enumerate(hits)) >= 19


def test_only_approved_scripts_are_retrievable(scripts: ScriptStore) -> None:
    answer = ScriptSpec(script_id="answer.cards.report_lost_card", kind="answer")
    scripts.draft_many([ScriptDraft(answer, "请立即挂失。", "Report the lost card now.")],
                          author="a")  # fmt: skip
    spec = ScriptSpec(script_id="mkt.card", kind="marketing")
    scripts.create(spec, text_zh="白金卡额度更高。", text_en="The platinum card has a higher limit.", author="a")
    indexes = KnowledgeIndexes(HashingEmbedder(), library=FakeQuestionLibrary(sample_questions()), scripts=scripts,
                               catalog=FakeProductCatalog(sample_products()))  # fmt: skip
    assert indexes.search_scripts("platinum card higher limit") == []  # draft
    assert indexes.answer_for("cards.report_lost_card") is None
    scripts.submit("mkt.card", 1)
    indexes.refresh()
    assert indexes.search_scripts("platinum card higher limit") == []  # checked, not approved
    scripts.approve("mkt.card", 1, COMPLIANCE)
    _approve(scripts, "answer.cards.report_lost_card")
    updates = indexes.refresh()
    assert set(updates) == {"scripts"}
    [(hit, _)] = indexes.search_scripts("platinum card higher limit", k=1)
    assert (hit.script_id, hit.version) == ("mkt.card", 1)
    answer = indexes.answer_for("cards.report_lost_card")
    assert answer is not None and answer.text_en == "Report the lost card now."
    # Retired after the last refresh: the stale index entry is dropped on the way out.
    scripts.retire("mkt.card", 1)
    assert [s.script_id for s, _ in indexes.search_scripts("platinum card higher limit")] == [
        "answer.cards.report_lost_card"
    ]
    assert indexes.answer_for("transfers.transfer_limit") is None  # has no answer script


def test_question_matching_products_and_persisted_reload(scripts: ScriptStore, tmp_path: Path) -> None:
    library = FakeQuestionLibrary(sample_questions())
    embedder = CountingEmbedder()
    indexes = KnowledgeIndexes(embedder, library=library, scripts=scripts,
                               catalog=FakeProductCatalog(sample_products()), folder=tmp_path)  # fmt: skip
    top = indexes.match_questions("my card was stolen", k=2)
    assert top[0].question_id == "cards.report_lost_card" and top[0].matched == "my card was stolen what do I do"
    assert len({m.question_id for m in top}) == len(top)
    assert indexes.search_products("platinum credit card", k=1)[0][0].product_id == "T-CC-PLAT"
    assert all(p.on_sale for p, _ in indexes.search_products("wealth", k=10))
    embedded = embedder.passages
    again = KnowledgeIndexes(embedder, library=library, scripts=scripts,
                             catalog=FakeProductCatalog(sample_products()), folder=tmp_path)  # fmt: skip
    assert again.refresh() == {} and embedder.passages == embedded  # loaded from disk, nothing re-embedded
    library.retire("transfers.transfer_limit")
    assert set(again.refresh()) == {"questions"}
    assert all(m.question_id != "transfers.transfer_limit" for m in again.match_questions("transfer limit", 3))


def test_bm25_and_hybrid_ranking() -> None:
    assert tokenize("我的信用卡丢了 lost my Card!") == ["信用卡", "丢", "lost", "card"]
    texts = ["信用卡挂失", "定期存款利率", "transfer limit per day"]
    bm25 = Bm25Index(["a", "b", "c"], texts)
    assert bm25.search("信用卡丢了", 1)[0][0] == "a"
    assert bm25.search("transfer", 3)[0][0] == "c" and bm25.scores("nothing shared") == {}
    index = FaissIndex(HashingEmbedder())
    index.update([Passage(i, t) for i, t in zip("abc", texts, strict=True)])
    hybrid = HybridSearcher(index, texts, lexical_weight=1.0)
    ranked = hybrid.search("daily transfer limit", 3)
    assert ranked[0][0] == "c" and ranked[0][1] > index.search("daily transfer limit", 1)[0][1]
    with pytest.raises(InvalidInputError):
        HybridSearcher(index, texts[:2])
