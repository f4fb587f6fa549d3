"""The retrieval API of the knowledge room: questions, approved scripts and products by meaning.

:class:`HybridSearcher` ranks passages by cosine similarity (FAISS) plus, when ``lexical_weight`` > 0, a BM25
score scaled to [0, 1] per query (hybrid ranking). :class:`KnowledgeIndexes` keeps the three indexes of a process —
question paraphrases, **approved** script texts, on-sale products — loads them once from ``folder``, rebuilds
incrementally when the library, the approved scripts or the catalog change (:meth:`KnowledgeIndexes.refresh`), and
answers searches.

Only approved script versions are retrievable: the scripts index is built from
:meth:`knowledge.scripts.ApprovedScripts.approved_all`, and every hit is read again through
:meth:`~knowledge.scripts.ApprovedScripts.approved` before it is returned, so a version retired after the last
refresh is never handed out. Blocking and CPU-bound; call from a worker thread.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from core.errors import InvalidInputError, NotFoundError
from knowledge.catalog import Product, ProductReader
from knowledge.embeddings import Embedder
from knowledge.index import FaissIndex, IndexUpdate, Passage
from knowledge.lexical import Bm25Index
from knowledge.library import Question, QuestionReader
from knowledge.script_models import ApprovedScript, ApprovedScripts

__all__ = ["HybridSearcher", "KnowledgeIndexes", "QuestionMatch", "approved_answer"]


class HybridSearcher:
    """Vector search over a :class:`FaissIndex`, optionally blended with BM25 over the same passages."""

    def __init__(
        self, index: FaissIndex, texts: Sequence[str], *, lexical_weight: float = 0.0, candidates: int = 50
    ) -> None:
        if len(texts) != len(index):
            raise InvalidInputError("texts do not match the index")
        self.index = index
        self.lexical_weight = lexical_weight
        self.candidates = candidates
        self._bm25 = Bm25Index(index.ids, texts) if lexical_weight > 0 else None
        self._rows = {pid: row for row, pid in enumerate(index.ids)}

    def search(self, text: str, k: int = 5) -> list[tuple[str, float]]:
        """Top-``k`` ``(passage id, score)``; the score is the cosine similarity plus the weighted lexical part."""
        query = self.index.embedder.embed_queries([text])
        dense = self.index.search_vectors(query, max(k, self.candidates if self._bm25 else k))[0]
        if self._bm25 is None:
            return dense[:k]
        lexical = self._bm25.scores(text)
        top = max(lexical.values(), default=0.0)
        scores = dict(dense)
        extra = [self.index.ids[r] for r in sorted(lexical, key=lambda r: -lexical[r])[: self.candidates]]
        missing = [pid for pid in extra if pid not in scores]
        if missing:
            vectors = self.index.vectors[[self._rows[p] for p in missing]]
            for pid, sim in zip(missing, (vectors @ query[0]).tolist(), strict=True):
                scores[pid] = float(sim)
        if top > 0:
            for pid in scores:
                scores[pid] += self.lexical_weight * lexical.get(self._rows[pid], 0.0) / top
        return sorted(scores.items(), key=lambda kv: -kv[1])[:k]


@dataclass(frozen=True)
class QuestionMatch:
    """A library question that matches an utterance: the best-matching example text and its score."""

    question_id: str
    score: float
    matched: str


@dataclass
class _Built:
    index: FaissIndex
    searcher: HybridSearcher
    texts: dict[str, str]


class KnowledgeIndexes:
    """The process's question, script and product indexes (see the module docstring). Thread-safe."""

    NAMES = ("questions", "scripts", "products")

    def __init__(
        self,
        embedder: Embedder,
        *,
        library: QuestionReader,
        scripts: ApprovedScripts,
        catalog: ProductReader,
        folder: Path | None = None,
        lexical_weight: float = 0.0,
    ) -> None:
        self.embedder = embedder
        self._library, self._scripts, self._catalog = library, scripts, catalog
        self._folder = folder
        self._lexical_weight = lexical_weight
        self._built: dict[str, _Built] = {}
        self._lock = threading.Lock()

    # --- building ----------------------------------------------------------------------------------------------

    def refresh(self) -> dict[str, IndexUpdate]:
        """Bring every index up to date with its content (incremental); saves changed ones to ``folder``."""
        wanted = {
            "questions": self._question_passages(),
            "scripts": self._script_passages(),
            "products": self._product_passages(),
        }
        updates: dict[str, IndexUpdate] = {}
        with self._lock:
            for name, passages in wanted.items():
                revision = _revision(passages)
                current = self._built.get(name)
                index = current.index if current is not None else self._load(name)
                if index is None or index.revision != revision:
                    base = index if index is not None else FaissIndex(self.embedder)
                    index, updates[name] = base.updated(passages, revision=revision)  # only changed texts embedded
                    if self._folder is not None:
                        index.save(self._folder / name)
                if current is None or current.index is not index:
                    texts = [p.text for p in passages]
                    searcher = HybridSearcher(index, texts, lexical_weight=self._lexical_weight)
                    self._built[name] = _Built(index, searcher, dict(zip(index.ids, texts, strict=True)))
        return updates

    def _load(self, name: str) -> FaissIndex | None:
        if self._folder is None or not (self._folder / name / "manifest.json").exists():
            return None
        try:
            return FaissIndex.load(self._folder / name, self.embedder)
        except InvalidInputError:
            return None  # another embedder or format, or damaged: rebuilt from scratch

    def _question_passages(self) -> list[Passage]:
        out = []
        for q in self._library.list():
            out += [Passage(f"{q.question_id}#{n}", text) for n, text in enumerate(q.examples())]
        return out

    def _script_passages(self) -> list[Passage]:
        out = []
        for s in self._scripts.approved_all():
            out += [Passage(f"{s.script_id}#{lang}", t) for lang, t in (("zh", s.text_zh), ("en", s.text_en)) if t]
        return out

    def _product_passages(self) -> list[Passage]:
        return [
            Passage(p.product_id, f"{p.name_zh} {p.name_en}. {p.description_zh} {p.description_en}".strip())
            for p in self._catalog.list(on_sale_only=True)
        ]

    # --- searching -----------------------------------------------------------------------------------------------

    def _searcher(self, name: str) -> _Built:
        built = self._built.get(name)
        if built is None:
            self.refresh()
            built = self._built[name]
        return built

    def match_questions(self, text: str, k: int = 5) -> list[QuestionMatch]:
        """The ``k`` best questions for an utterance (best example per question), best first."""
        built = self._searcher("questions")
        best: dict[str, QuestionMatch] = {}
        for pid, score in built.searcher.search(text, k * 8):
            qid = pid.rsplit("#", 1)[0]
            if qid not in best:
                best[qid] = QuestionMatch(qid, score, built.texts.get(pid, ""))
        return list(best.values())[:k]

    def search_scripts(self, text: str, k: int = 3, kind: str | None = None) -> list[tuple[ApprovedScript, float]]:
        """Approved scripts whose text matches ``text`` (best language per script), best first."""
        built = self._searcher("scripts")
        out: list[tuple[ApprovedScript, float]] = []
        seen: set[str] = set()
        for pid, score in built.searcher.search(text, k * 4):
            sid = pid.rsplit("#", 1)[0]
            if sid in seen:
                continue
            seen.add(sid)
            try:
                script = self._scripts.approved(sid)  # re-read: retired since the last refresh → dropped
            except NotFoundError:
                continue
            if kind is None or script.kind == kind:
                out.append((script, score))
        return out[:k]

    def search_products(self, text: str, k: int = 3) -> list[tuple[Product, float]]:
        """On-sale products whose name or description matches ``text``, best first."""
        built = self._searcher("products")
        out = []
        for pid, score in built.searcher.search(text, k):
            try:
                out.append((self._catalog.get(pid), score))
            except NotFoundError:
                continue
        return out

    def answer_for(self, question_id: str) -> ApprovedScript | None:
        """The approved answer script of a question, or ``None`` when it has none approved (or no answer)."""
        return approved_answer(self._library.get(question_id), self._scripts)


def approved_answer(question: Question, scripts: ApprovedScripts) -> ApprovedScript | None:
    """The approved version of ``question``'s answer script; ``None`` when it has no answer or none approved."""
    if question.answer_script_id is None:
        return None
    try:
        return scripts.approved(question.answer_script_id)
    except NotFoundError:
        return None


def _revision(passages: Sequence[Passage]) -> str:
    digest = hashlib.sha256()
    for p in passages:
        digest.update(p.id.encode())
        digest.update(b"\0")
        digest.update(p.text.encode())
        digest.update(b"\1")
    return digest.hexdigest()[:16]
