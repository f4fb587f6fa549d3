"""Knowledge API: the question library, scripts with compliance review, and search over approved content.

Readers (agents and every back-office role) see active questions and **approved** script versions only. Editors
(supervisors, compliance, admins) import, edit and retire questions, write script drafts and submit them; only a
compliance officer (who is not the author) approves, and overrides need a reason. Review actions are audited.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from core.errors import InvalidInputError
from knowledge.library import Question
from knowledge.library_import import LibraryImportResult, export_entries, import_library
from knowledge.library_io import LibraryEntry, answer_script_id, dump_csv, dump_yaml, parse_csv, parse_yaml
from knowledge.retrieval import approved_answer
from knowledge.scripts import ApprovedScript, Reviewer, ScriptFinding, ScriptSpec, ScriptVersion
from voxdesk.auth.roles import KNOWLEDGE_EDITORS, KNOWLEDGE_READERS, SCRIPT_APPROVERS
from voxdesk.auth.service import Principal
from voxdesk.server.deps import ContainerDep, client_ip, read_upload, require

router = APIRouter(prefix="/api/v1/knowledge", tags=["knowledge"])

Reader = Annotated[Principal, require(*KNOWLEDGE_READERS)]
Editor = Annotated[Principal, require(*KNOWLEDGE_EDITORS)]
Approver = Annotated[Principal, require(*SCRIPT_APPROVERS)]


class QuestionOut(BaseModel):
    question: Question
    answer: ApprovedScript | None
    """The approved answer (``None`` while it has none approved)."""


class QuestionIn(BaseModel):
    question: Question
    answer_zh: str = Field(default="", max_length=4000)
    answer_en: str = Field(default="", max_length=4000)
    """New answer text: written as a draft of the answer script when it differs from the newest version."""


class ScriptIn(BaseModel):
    spec: ScriptSpec
    text_zh: str = Field(default="", max_length=8000)
    text_en: str = Field(default="", max_length=8000)
    product_ids: list[str] = Field(default_factory=list, max_length=20)
    audience_risk: Literal["C1", "C2", "C3", "C4", "C5"] | None = None


class RevisionIn(BaseModel):
    text_zh: str = Field(default="", max_length=8000)
    text_en: str = Field(default="", max_length=8000)
    product_ids: list[str] | None = Field(default=None, max_length=20)
    audience_risk: Literal["C1", "C2", "C3", "C4", "C5"] | None = None


class CheckIn(BaseModel):
    kind: Literal["answer", "marketing", "outbound"]
    text_zh: str = Field(default="", max_length=8000)
    text_en: str = Field(default="", max_length=8000)
    product_ids: list[str] = Field(default_factory=list, max_length=20)
    audience_risk: Literal["C1", "C2", "C3", "C4", "C5"] | None = None


class ApproveIn(BaseModel):
    override_reason: str | None = Field(default=None, max_length=2000)


class MatchOut(BaseModel):
    question_id: str
    score: float
    matched: str
    answer: ApprovedScript | None


async def _audit(
    container: ContainerDep, principal: Principal, request: Request, action: str, rid: str, **data: object
) -> None:
    await run_in_threadpool(
        container.auth.audit, principal, action, "script", rid, client=client_ip(request), data=data or None
    )


# --- questions ------------------------------------------------------------------------------------------------


@router.get("/questions")
async def list_questions(
    principal: Reader,
    container: ContainerDep,
    category: str | None = None,
    include_retired: bool = False,
) -> list[Question]:
    """Questions ordered by id (retired ones only with ``include_retired``)."""
    return await run_in_threadpool(container.library.list, category, not include_retired)


@router.get("/questions/{question_id}")
async def get_question(principal: Reader, container: ContainerDep, question_id: str) -> QuestionOut:
    """One question with its approved answer."""

    def read() -> QuestionOut:
        question = container.library.get(question_id)
        return QuestionOut(question=question, answer=approved_answer(question, container.scripts))

    return await run_in_threadpool(read)


@router.put("/questions/{question_id}")
async def put_question(
    principal: Editor, container: ContainerDep, request: Request, question_id: str, body: QuestionIn
) -> LibraryImportResult:
    """Create or change one question; a changed answer becomes a draft for compliance review."""
    if body.question.question_id != question_id:
        raise InvalidInputError("question id in the path and the body differ")
    has_answer = bool(body.answer_zh.strip() or body.answer_en.strip())
    question = body.question.model_copy(
        update={"answer_script_id": answer_script_id(question_id) if has_answer else body.question.answer_script_id}
    )
    known = await run_in_threadpool(container.catalog.known_ids, [p.product_id for p in question.products])
    missing = [p.product_id for p in question.products if p.product_id not in known]
    if missing:
        raise InvalidInputError("unknown product in the question's product map", product_id=missing[0])
    entry = LibraryEntry(question, body.answer_zh, body.answer_en)
    result = await run_in_threadpool(
        import_library, container.sessions, container.library, container.scripts, [entry], author=principal.username
    )
    await _audit(container, principal, request, "question.put", question_id)
    return result


@router.delete("/questions/{question_id}")
async def retire_question(principal: Editor, container: ContainerDep, request: Request, question_id: str) -> Question:
    """Retire a question (kept for history; no longer matched)."""
    question = await run_in_threadpool(container.library.retire, question_id)
    await _audit(container, principal, request, "question.retire", question_id)
    return question


@router.post("/import")
async def import_file(
    principal: Editor,
    container: ContainerDep,
    request: Request,
    file: Annotated[UploadFile, File(description="library YAML or CSV")],
) -> LibraryImportResult:
    """Import a library file, all or nothing (HTTP 422 lists every bad entry by line); answers become drafts."""
    limit = container.settings.server.max_upload_bytes
    data = await read_upload(file, limit)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError("the file is not UTF-8 text") from exc
    is_csv = (file.filename or "").lower().endswith(".csv")

    def run() -> LibraryImportResult:
        entries = (parse_csv if is_csv else parse_yaml)(text, known_products=container.catalog.known_ids)
        return import_library(
            container.sessions, container.library, container.scripts, entries, author=principal.username
        )

    result = await run_in_threadpool(run)
    await _audit(container, principal, request, "library.import", file.filename or "", questions=result.questions)
    return result


@router.get("/export")
async def export_file(
    principal: Editor,
    container: ContainerDep,
    fmt: Annotated[str, Query(alias="format", pattern="^(yaml|csv)$")] = "yaml",
) -> Response:
    """The whole library in the import format (answers in their newest version, any state)."""
    entries = await run_in_threadpool(export_entries, container.library, container.scripts)
    body = dump_yaml(entries) if fmt == "yaml" else dump_csv(entries)
    media = "application/yaml" if fmt == "yaml" else "text/csv; charset=utf-8"
    disposition = f'attachment; filename="questions.{fmt}"'
    return Response(body.encode("utf-8"), media_type=media, headers={"Content-Disposition": disposition})


@router.get("/search")
async def search(
    principal: Reader,
    container: ContainerDep,
    q: Annotated[str, Query(min_length=1, max_length=500)],
    k: Annotated[int, Query(ge=1, le=20)] = 5,
) -> list[MatchOut]:
    """Questions matching an utterance, each with its approved answer (loads the embedder on first use)."""

    def run() -> list[MatchOut]:
        indexes = container.indexes()
        return [
            MatchOut(
                question_id=m.question_id, score=m.score, matched=m.matched, answer=indexes.answer_for(m.question_id)
            )
            for m in indexes.match_questions(q, k)
        ]

    return await run_in_threadpool(run)


# --- scripts ----------------------------------------------------------------------------------------------------


@router.get("/scripts")
async def approved_scripts(principal: Reader, container: ContainerDep, kind: str | None = None) -> list[ApprovedScript]:
    """Approved scripts (of one kind); nothing else is ever listed here."""
    return await run_in_threadpool(container.scripts.approved_all, kind)


@router.get("/scripts/{script_id}")
async def approved_script(principal: Reader, container: ContainerDep, script_id: str) -> ApprovedScript:
    """The approved version of a script; HTTP 404 when it has none."""
    return await run_in_threadpool(container.scripts.approved, script_id)


@router.get("/products/{product_id}/scripts")
async def product_scripts(principal: Reader, container: ContainerDep, product_id: str) -> list[ApprovedScript]:
    """A product's approved marketing scripts (404 for an unknown product)."""
    await run_in_threadpool(container.catalog.get, product_id)
    return await run_in_threadpool(container.scripts.approved_for_product, product_id)


@router.get("/scripts/{script_id}/versions")
async def script_versions(principal: Editor, container: ContainerDep, script_id: str) -> list[ScriptVersion]:
    """Every version with its state and findings (review screens)."""
    return await run_in_threadpool(container.scripts.versions, script_id)


@router.post("/scripts", status_code=201)
async def create_script(principal: Editor, container: ContainerDep, request: Request, body: ScriptIn) -> ScriptVersion:
    """A new script; its version 1 is a draft, checked at once."""
    version = await run_in_threadpool(
        lambda: container.scripts.create(
            body.spec,
            text_zh=body.text_zh,
            text_en=body.text_en,
            author=principal.username,
            product_ids=body.product_ids,
            audience_risk=body.audience_risk,
        )
    )
    await _audit(container, principal, request, "script.create", body.spec.script_id, findings=len(version.findings))
    return version


@router.post("/scripts/{script_id}/versions", status_code=201)
async def revise_script(
    principal: Editor, container: ContainerDep, request: Request, script_id: str, body: RevisionIn
) -> ScriptVersion:
    """A new draft version (products and audience carried over unless given)."""
    fields = body.model_dump(exclude_unset=True)
    version = await run_in_threadpool(
        lambda: container.scripts.revise(
            script_id,
            text_zh=body.text_zh,
            text_en=body.text_en,
            author=principal.username,
            product_ids=body.product_ids,
            audience_risk=fields.get("audience_risk", "same"),
        )
    )
    await _audit(container, principal, request, "script.revise", script_id, version=version.version)
    return version


@router.post("/scripts/{script_id}/versions/{version}/submit")
async def submit_script(
    principal: Editor, container: ContainerDep, request: Request, script_id: str, version: int
) -> ScriptVersion:
    """Re-run the check and move a draft to ``checked`` (ready for compliance review)."""
    out = await run_in_threadpool(container.scripts.submit, script_id, version)
    await _audit(container, principal, request, "script.submit", script_id, version=version)
    return out


@router.post("/scripts/{script_id}/versions/{version}/approve")
async def approve_script(
    principal: Approver, container: ContainerDep, request: Request, script_id: str, version: int, body: ApproveIn
) -> ScriptVersion:
    """Approve a checked version: compliance role, not the author, clean check or an override reason."""
    reviewer = Reviewer(user_id=principal.username, roles=tuple(principal.roles))
    out = await run_in_threadpool(
        lambda: container.scripts.approve(script_id, version, reviewer, override_reason=body.override_reason)
    )
    overridden = out.override_reason is not None
    await _audit(container, principal, request, "script.approve", script_id, version=version, override=overridden)
    return out


@router.post("/scripts/{script_id}/versions/{version}/retire")
async def retire_script(
    principal: Editor, container: ContainerDep, request: Request, script_id: str, version: int
) -> ScriptVersion:
    """Take a version out of use."""
    out = await run_in_threadpool(container.scripts.retire, script_id, version)
    await _audit(container, principal, request, "script.retire", script_id, version=version)
    return out


@router.post("/check")
async def check_text(principal: Editor, container: ContainerDep, body: CheckIn) -> list[ScriptFinding]:
    """Findings for a text pair without storing anything (live preview while writing)."""
    return await run_in_threadpool(
        container.scripts.check_text, body.kind, body.text_zh, body.text_en, body.product_ids, body.audience_risk
    )
