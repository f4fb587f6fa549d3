"""The customer-question library (标准问库): standard questions, their paraphrases, routing and product map.

A :class:`Question` is one need a caller can have ("How do I report a lost card?" / "信用卡丢了怎么挂失"), with
paraphrases in Chinese and English (what callers really say; the intent classifier trains on them), a business
category, the skill group a human transfer goes to, the id of its answer script (text and review live in
:mod:`knowledge.scripts`) and the products worth offering to a caller who asks it ("question → product").

:class:`QuestionLibrary` stores questions on SQLAlchemy; synchronous and thread-safe (one session per call).
:attr:`QuestionLibrary.revision` changes whenever content changes, so indexes and classifiers know to rebuild.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from core.clock import Clock, SystemClock
from core.db import session_scope
from core.errors import InvalidInputError, NotFoundError
from knowledge.tables import QuestionRow

__all__ = [
    "QUESTION_CATEGORIES",
    "Question",
    "QuestionLibrary",
    "QuestionProduct",
    "QuestionReader",
    "library_revision",
]

QuestionCategory = Literal[
    "cards",
    "deposits",
    "wealth",
    "loans",
    "transfers",
    "accounts",
    "collections",
    "complaints",
    "insurance",
    "digital",
    "fx",
    "general",
]
QUESTION_CATEGORIES: tuple[str, ...] = QuestionCategory.__args__  # type: ignore[attr-defined]
QuestionStatus = Literal["active", "retired"]
QUESTION_ID_PATTERN = r"^[a-z][a-z0-9_]*\.[a-z0-9_]{1,56}$"
SKILL_GROUP_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"


class QuestionProduct(BaseModel):
    """One entry of the question → product map: why a caller asking this may want ``product_id``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    product_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    reason_zh: str = Field(default="", max_length=256)
    reason_en: str = Field(default="", max_length=256)


class Question(BaseModel):
    """A standard question of the library (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    question_id: str = Field(pattern=QUESTION_ID_PATTERN)
    """``<category>.<name>``, e.g. ``cards.report_lost_card``."""
    category: QuestionCategory
    skill_group: str = Field(pattern=SKILL_GROUP_PATTERN)
    """The human skill group a transfer for this question goes to (cards, wealth, complaints, …)."""
    text_zh: str = Field(min_length=1, max_length=256)
    text_en: str = Field(min_length=1, max_length=256)
    paraphrases_zh: tuple[str, ...] = ()
    paraphrases_en: tuple[str, ...] = ()
    answer_script_id: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_.]{0,63}$")
    """The answer script in :mod:`knowledge.scripts`; only its approved version is ever read out."""
    products: tuple[QuestionProduct, ...] = ()
    status: QuestionStatus = "active"
    updated_at: datetime | None = None

    @field_validator("text_zh", "text_en")
    @classmethod
    def _stripped(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value

    @field_validator("paraphrases_zh", "paraphrases_en")
    @classmethod
    def _clean(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(v.strip() for v in values)
        if any(not v or len(v) > 256 for v in cleaned):
            raise ValueError("paraphrases must be 1-256 characters")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("duplicate paraphrase")
        return cleaned

    @model_validator(mode="after")
    def _consistent(self) -> Question:
        if not self.question_id.startswith(self.category + "."):
            raise ValueError(f"question id must start with its category '{self.category}.'")
        ids = [p.product_id for p in self.products]
        if len(set(ids)) != len(ids):
            raise ValueError("a product is mapped twice")
        return self

    def examples(self, lang: str | None = None) -> builtins.list[str]:
        """The standard text and the paraphrases (of one language, ``"zh"`` or ``"en"``, or both)."""
        zh = [self.text_zh, *self.paraphrases_zh]
        en = [self.text_en, *self.paraphrases_en]
        return zh if lang == "zh" else en if lang == "en" else zh + en

    def content_key(self) -> str:
        """A hash of everything but ``updated_at`` (equal questions have equal keys)."""
        doc = self.model_dump(mode="json", exclude={"updated_at"})
        return hashlib.sha256(json.dumps(doc, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class QuestionReader(Protocol):
    """The read API that classifiers and indexes need (the real library and ``knowledge.testing`` fakes)."""

    @property
    def revision(self) -> str: ...

    def list(self, category: str | None = None, active_only: bool = True) -> builtins.list[Question]: ...

    def get(self, question_id: str) -> Question: ...


_FIELDS = ("category", "skill_group", "text_zh", "text_en", "answer_script_id", "status")


class QuestionLibrary:
    """Questions on SQLAlchemy (table ``questions``)."""

    def __init__(self, sessions: sessionmaker[Session], *, clock: Clock | None = None) -> None:
        self._sessions = sessions
        self._clock = clock or SystemClock()

    def upsert_many(self, questions: Sequence[Question], *, session: Session | None = None) -> int:
        """Create or update ``questions`` in one transaction (all or nothing); returns how many changed.

        Unchanged questions keep their ``updated_at``. With ``session``, writes inside the caller's transaction
        (which commits) instead of its own. Raises :class:`InvalidInputError` for an id given twice.
        """
        seen: set[str] = set()
        for q in questions:
            if q.question_id in seen:
                raise InvalidInputError("duplicate question id in one upsert", question_id=q.question_id)
            seen.add(q.question_id)
        now = self._clock.now()
        written = 0
        with self._session(write=True, within=session) as s:
            ids = sorted(seen)
            existing = {
                r.question_id: r for r in s.scalars(select(QuestionRow).where(QuestionRow.question_id.in_(ids)))
            }
            for q in questions:
                row = existing.get(q.question_id)
                if row is not None and _to_domain(row).content_key() == q.content_key():
                    continue
                if row is None:
                    row = QuestionRow(question_id=q.question_id)
                    s.add(row)
                for name in _FIELDS:
                    setattr(row, name, getattr(q, name))
                row.paraphrases_zh = list(q.paraphrases_zh)
                row.paraphrases_en = list(q.paraphrases_en)
                row.products = [p.model_dump() for p in q.products]
                row.updated_at = now
                written += 1
        return written

    def get(self, question_id: str) -> Question:
        """The question with this id (active or retired); raises :class:`NotFoundError`."""
        with self._session() as s:
            row = s.get(QuestionRow, question_id)
            if row is None:
                raise NotFoundError("unknown question", question_id=question_id)
            return _to_domain(row)

    def list(self, category: str | None = None, active_only: bool = True) -> builtins.list[Question]:
        """Questions ordered by id, of one ``category`` if given; retired ones only when ``active_only`` is off."""
        if category is not None and category not in QUESTION_CATEGORIES:
            raise InvalidInputError("unknown question category", value=category)
        query = select(QuestionRow).order_by(QuestionRow.question_id)
        if category is not None:
            query = query.where(QuestionRow.category == category)
        if active_only:
            query = query.where(QuestionRow.status == "active")
        with self._session() as s:
            return [_to_domain(r) for r in s.scalars(query)]

    def retire(self, question_id: str) -> Question:
        """Mark a question retired (kept for history, no longer classified or offered); raises NotFoundError."""
        with self._session(write=True) as s:
            row = s.get(QuestionRow, question_id)
            if row is None:
                raise NotFoundError("unknown question", question_id=question_id)
            if row.status != "retired":
                row.status = "retired"
                row.updated_at = self._clock.now()
            return _to_domain(row)

    def count(self, active_only: bool = False) -> int:
        """Number of questions (all, or only active ones)."""
        query = select(func.count()).select_from(QuestionRow)
        if active_only:
            query = query.where(QuestionRow.status == "active")
        with self._session() as s:
            return s.scalar(query) or 0

    @property
    def revision(self) -> str:
        """A hash of the whole library's content: changes whenever any question does (reads every row)."""
        return library_revision(self.list(active_only=False))

    def _session(self, *, write: bool = False, within: Session | None = None) -> AbstractContextManager[Session]:
        return nullcontext(within) if within is not None else session_scope(self._sessions, write=write)


def library_revision(questions: Sequence[Question]) -> str:
    """Hash (hex, 16 chars) of the content of ``questions``, independent of their order."""
    digest = hashlib.sha256()
    for key in sorted(q.content_key() for q in questions):
        digest.update(key.encode())
    return digest.hexdigest()[:16]


def _to_domain(row: QuestionRow) -> Question:
    return Question.model_validate(
        {
            "question_id": row.question_id,
            **{n: getattr(row, n) for n in _FIELDS},
            "paraphrases_zh": tuple(row.paraphrases_zh or ()),
            "paraphrases_en": tuple(row.paraphrases_en or ()),
            "products": tuple(QuestionProduct.model_validate(p) for p in row.products or ()),
            "updated_at": row.updated_at,
        }
    )
