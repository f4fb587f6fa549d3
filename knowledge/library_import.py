"""Writing an imported question library: questions and their answer drafts in one transaction.

Blocking database I/O; any thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from core.db import session_scope
from knowledge.library import QuestionLibrary
from knowledge.library_io import LibraryEntry
from knowledge.scripts import ScriptDraft, ScriptSpec, ScriptStore

__all__ = ["LibraryImportResult", "export_entries", "import_library"]


@dataclass(frozen=True)
class LibraryImportResult:
    """What an import wrote: questions created or changed, answer drafts written (unchanged ones are skipped)."""

    questions: int
    answer_drafts: int
    total: int


def import_library(
    sessions: sessionmaker[Session],
    library: QuestionLibrary,
    scripts: ScriptStore,
    entries: Sequence[LibraryEntry],
    *,
    author: str,
) -> LibraryImportResult:
    """Upsert every question and draft every changed answer, all or nothing.

    New or changed answers become **drafts**: they reach callers only after compliance approves them.
    """
    drafts = [
        ScriptDraft(
            ScriptSpec(
                script_id=e.question.answer_script_id,
                kind="answer",
                title_zh=e.question.text_zh[:128],
                title_en=e.question.text_en[:128],
            ),
            e.answer_zh,
            e.answer_en,
        )
        for e in entries
        if e.question.answer_script_id is not None
    ]
    with session_scope(sessions, write=True) as s:
        written = library.upsert_many([e.question for e in entries], session=s)
        drafted = scripts.draft_many(drafts, author=author, session=s)
    return LibraryImportResult(written, drafted, len(entries))


def export_entries(library: QuestionLibrary, scripts: ScriptStore, *, active_only: bool = False) -> list[LibraryEntry]:
    """The library with each answer's newest text (any review state: this is the editors' export)."""
    questions = library.list(active_only=active_only)
    texts = scripts.latest_texts([q.answer_script_id for q in questions if q.answer_script_id])
    out = []
    for q in questions:
        zh, en = texts.get(q.answer_script_id or "", ("", ""))
        out.append(LibraryEntry(q, zh, en))
    return out
