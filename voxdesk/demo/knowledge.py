"""The demo bank's question library and scripts, loaded through the same import and review paths as real content.

Questions and answers come from ``voxdesk/demo/questions/*.yaml`` (one file per business category), marketing and
outbound scripts from ``voxdesk/demo/scripts.yaml``. Every text is imported as a draft, submitted to the automatic
check and approved by the demo bank's compliance officer (user ``demo-compliance``) only when the check is clean —
a demo text with findings stays ``checked`` for a person to review. Blocking; run from the CLI or a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import structlog

from core.errors import ConflictError
from knowledge.library_import import import_library
from knowledge.library_io import LibraryEntry, merge_files, parse_yaml
from knowledge.script_io import parse_scripts_yaml
from knowledge.scripts import Reviewer, ScriptDraft, ScriptStore
from voxdesk.container import Container

__all__ = ["DEMO_AUTHOR", "DEMO_REVIEWER", "DemoKnowledgeResult", "demo_library", "demo_scripts", "load_demo_knowledge"]

log = structlog.get_logger(__name__)
DEMO_AUTHOR = "demo-author"
DEMO_REVIEWER = Reviewer(user_id="demo-compliance", roles=("compliance",))


@dataclass(frozen=True)
class DemoKnowledgeResult:
    """Counts of what was loaded."""

    questions: int
    scripts: int
    approved: int
    held_for_review: int


def demo_library(container: Container) -> list[LibraryEntry]:
    """The bundled question files, validated against the container's catalog (products must be loaded)."""
    folder = resources.files("voxdesk.demo").joinpath("questions")
    names = sorted(f.name for f in folder.iterdir() if f.name.endswith(".yaml"))
    known = container.catalog.known_ids
    parsed = [parse_yaml(folder.joinpath(n).read_text(encoding="utf-8"), known_products=known) for n in names]
    return merge_files(parsed, names)


def demo_scripts(container: Container) -> list[ScriptDraft]:
    """The bundled marketing and outbound scripts, validated."""
    text = resources.files("voxdesk.demo").joinpath("scripts.yaml").read_text(encoding="utf-8")
    return parse_scripts_yaml(text, known_products=container.catalog.known_ids)


def load_demo_knowledge(container: Container) -> DemoKnowledgeResult:
    """Import, check and approve the demo library and scripts (idempotent: unchanged texts are left alone)."""
    entries = demo_library(container)
    import_library(container.sessions, container.library, container.scripts, entries, author=DEMO_AUTHOR)
    scripts = demo_scripts(container)
    container.scripts.draft_many(scripts, author=DEMO_AUTHOR)
    ids = [e.question.answer_script_id for e in entries if e.question.answer_script_id] + [
        s.spec.script_id for s in scripts
    ]
    approved, held = _review(container.scripts, ids)
    return DemoKnowledgeResult(len(entries), len(ids), approved, held)


def _review(store: ScriptStore, script_ids: list[str]) -> tuple[int, int]:
    approved = held = 0
    for sid in script_ids:
        latest = store.versions(sid)[-1]
        if latest.state == "draft":
            latest = store.submit(sid, latest.version)
        if latest.state != "checked":
            continue
        if latest.findings:
            held += 1
            log.warning("demo script held for review", script_id=sid, findings=len(latest.findings))
            continue
        try:
            store.approve(sid, latest.version, DEMO_REVIEWER)
            approved += 1
        except ConflictError:
            held += 1
    return approved, held
