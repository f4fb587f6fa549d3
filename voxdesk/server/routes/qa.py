"""QA review API (``/api/qa``): the flagged-call queue, call details, reviewers' decisions, playback, analytics.

Roles (see :mod:`voxdesk.auth.roles`): :data:`QA_READERS` (qa, supervisor, compliance, admin) read the queue, the
calls, the analytics and play recordings; :data:`QA_REVIEWERS` (qa, admin) confirm/reject findings, add missed
ones and complete reviews. Call reads, playback and CSV exports are audited. Transcripts and evidence are masked
(card, ID, account, phone numbers) unless the reader is in :data:`TRANSCRIPT_PII_READERS`.

Unknown calls or findings answer 404, malformed input 422. Store calls run in worker threads.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from starlette.concurrency import run_in_threadpool

from core.errors import NotFoundError
from core.logging import get_logger
from qa.analytics import ComplaintRow, GroupScoreRow, ReasonRow, TrendRow, to_csv
from qa.models import Channel, Severity
from qa.review import MAX_PAGE, AgreementRow, Period, QueueFilters, QueueSort
from qa.rules_config import RULE_IDS
from qa.topics import TopicCluster
from voxdesk.auth.roles import QA_READERS, QA_REVIEWERS
from voxdesk.auth.service import Principal
from voxdesk.container import Container
from voxdesk.server.deps import ContainerDep, client_ip, require
from voxdesk.server.qa_views import call_json, detail_json, finding_json, load_detail, masks_pii, score_json

log = get_logger(__name__)
router = APIRouter(prefix="/api/qa", tags=["qa"])

Reader = Annotated[Principal, require(*QA_READERS)]
Reviewer = Annotated[Principal, require(*QA_REVIEWERS)]
Report = Literal["reasons", "topics", "trends", "agents", "teams", "complaints", "agreement"]
REPORTS: tuple[Report, ...] = get_args(Report)
AUDIO_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg"}
DEFAULT_WINDOW = {"day": timedelta(days=30), "week": timedelta(weeks=12)}


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["confirmed", "rejected"]
    note: str | None = Field(default=None, max_length=2000)


class FindingIn(BaseModel):
    """A violation the rules missed; times in ms from the start of the recording."""

    model_config = ConfigDict(extra="forbid")

    rule_id: str
    severity: Severity
    start_ms: int = Field(ge=0, le=24 * 3600 * 1000)
    end_ms: int = Field(ge=0, le=24 * 3600 * 1000)
    channel: Channel | None = None
    evidence: str = Field(min_length=1, max_length=2000)
    note: str | None = Field(default=None, max_length=2000)

    @field_validator("rule_id")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in RULE_IDS:
            raise ValueError("unknown rule id")
        return value

    @field_validator("end_ms")
    @classmethod
    def _ordered(cls, value: int, info: ValidationInfo) -> int:
        if value < info.data.get("start_ms", 0):
            raise ValueError("end_ms must not be before start_ms")
        return value


class ReviewIn(BaseModel):
    """Completes a review; ``score`` (0–100) overrides the re-computed score."""

    model_config = ConfigDict(extra="forbid")

    score: float | None = Field(default=None, ge=0, le=100)
    note: str | None = Field(default=None, max_length=2000)


# --- queue and call --------------------------------------------------------------------------------------------


@router.get("/calls")
async def list_calls(
    principal: Reader,
    container: ContainerDep,
    flagged_only: bool = True,
    status: Annotated[Literal["pending", "running", "done", "failed"] | None, Query()] = "done",
    review_status: Annotated[Literal["open", "reviewed"] | None, Query()] = None,
    agent_id: Annotated[str | None, Query(max_length=64)] = None,
    team: Annotated[str | None, Query(max_length=64)] = None,
    rule_id: Annotated[str | None, Query(max_length=40)] = None,
    min_severity: Severity | None = None,
    max_severity: Severity | None = None,
    score_below: Annotated[float | None, Query(ge=0, le=100)] = None,
    date_from: Annotated[AwareDatetime | None, Query(description="started at or after (ISO 8601 with zone)")] = None,
    date_to: Annotated[AwareDatetime | None, Query(description="started before (ISO 8601 with zone)")] = None,
    reason: Annotated[str | None, Query(max_length=64)] = None,
    q: Annotated[str | None, Query(max_length=100, description="text in a finding's evidence")] = None,
    sort: QueueSort = "newest",
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> dict[str, Any]:
    """The review queue: flagged calls (by default) matching the filters, one page."""
    if rule_id is not None and rule_id not in RULE_IDS:
        raise HTTPException(422, "unknown rule id")
    filters = QueueFilters(
        flagged_only=flagged_only,
        status=status,
        review_status=review_status,
        agent_id=agent_id,
        team=team,
        rule_id=rule_id,
        min_severity=min_severity,
        max_severity=max_severity,
        score_below=score_below,
        date_from=date_from,
        date_to=date_to,
        reason=reason,
        text=q,
        sort=sort,
        offset=offset,
        limit=limit,
    )
    page = await run_in_threadpool(container.qa_review.queue, filters)
    return {"items": [call_json(c) for c in page.items], "total": page.total, "offset": page.offset,
            "limit": page.limit}  # fmt: skip


@router.get("/calls/{call_id}")
async def get_call(call_id: str, principal: Reader, container: ContainerDep, request: Request) -> dict[str, Any]:
    """One call with its transcript, findings (with decisions) and score items. Audited."""
    detail, score = await run_in_threadpool(load_detail, container, call_id)
    await run_in_threadpool(container.auth.audit, principal, "qa.read", "call", call_id, client=client_ip(request))
    return detail_json(detail, score, mask=masks_pii(principal))


@router.post("/calls/{call_id}/findings/{finding_id}/decision")
async def decide(
    call_id: str, finding_id: int, body: DecisionIn, principal: Reviewer, container: ContainerDep
) -> dict[str, Any]:
    """Confirm or reject a finding of this call; answers the finding and the call's score as it now stands."""
    review = container.qa_review
    finding = await run_in_threadpool(review.decide, call_id, finding_id, body.decision, principal.username, body.note)
    score = await run_in_threadpool(review.review_score, call_id)
    return {"finding": finding_json(finding, mask=masks_pii(principal)), "score": score_json(score)}


@router.post("/calls/{call_id}/findings", status_code=201)
async def add_finding(call_id: str, body: FindingIn, principal: Reviewer, container: ContainerDep) -> dict[str, Any]:
    """Add a finding the rules missed (origin ``human``)."""
    review = container.qa_review
    finding = await run_in_threadpool(
        lambda: review.add_finding(
            call_id, body.rule_id, body.severity, body.start_ms, body.end_ms, body.channel, body.evidence,
            principal.username, body.note,
        )
    )  # fmt: skip
    score = await run_in_threadpool(review.review_score, call_id)
    return {"finding": finding_json(finding, mask=masks_pii(principal)), "score": score_json(score)}


@router.post("/calls/{call_id}/review")
async def complete_review(
    call_id: str, body: ReviewIn, principal: Reviewer, container: ContainerDep, request: Request
) -> dict[str, Any]:
    """Complete the review (re-scored, or the given score). Audited."""
    call = await run_in_threadpool(container.qa_review.complete, call_id, principal.username, body.score, body.note)
    await run_in_threadpool(
        container.auth.audit,
        principal,
        "qa.review",
        "call",
        call_id,
        client=client_ip(request),
        data={"score": call.reviewed_score, "override": body.score is not None},
    )
    return call_json(call)


@router.get("/calls/{call_id}/audio")
async def get_audio(call_id: str, principal: Reader, container: ContainerDep, request: Request) -> FileResponse:
    """The call's recording as the pipeline stored it (WAV, FLAC or MP3; byte ranges supported, for seeking).

    Only the stored path is ever served. The first request of a playback (no ``Range``, or one from byte 0) is
    audited as ``recording.read``; the browser's further range requests are not."""
    call = await run_in_threadpool(container.qa_store.detail, call_id)
    path = await run_in_threadpool(audio_file, call.path)
    byte_range = request.headers.get("range", "")
    if not byte_range or byte_range.replace(" ", "").startswith("bytes=0-"):
        await run_in_threadpool(
            container.auth.audit,
            principal,
            "recording.read",
            "call",
            call_id,
            client=client_ip(request),
            data={"via": "qa"},
        )
    response = FileResponse(path, media_type=AUDIO_TYPES[path.suffix.lower()])
    response.headers["Cache-Control"] = "private, no-store"
    return response


def audio_file(stored: str) -> Path:
    """The stored recording, resolved; :class:`NotFoundError` when missing or not an audio file we serve.

    Blocking file system calls: run it in a worker thread."""
    path = Path(stored).resolve()
    if path.suffix.lower() not in AUDIO_TYPES:
        log.warning("qa recording with an unexpected file type refused", suffix=path.suffix.lower())
        raise NotFoundError("recording is not available")
    if not path.is_file():
        raise NotFoundError("recording file is missing")
    return path


# --- analytics -------------------------------------------------------------------------------------------------


def window(period: Period, since: datetime | None, until: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """The report window: ``until`` defaults to the start of tomorrow (UTC), ``since`` to 30 days (day) or 12
    weeks (week) before ``until``. 422 when ``since`` is not before ``until``."""
    if until is None:
        today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        until = today + timedelta(days=1)
    since = since or until - DEFAULT_WINDOW[period]
    if since >= until:
        raise HTTPException(422, "since must be before until")
    return since, until


def question_titles(container: Container, lang: str) -> dict[str, str]:
    """Question id → its standard text in ``lang`` (blocking)."""
    return {q.question_id: q.text_zh if lang == "zh" else q.text_en for q in container.library.list(active_only=False)}


def run_report(
    container: Container, report: Report, period: Period, since: datetime, until: datetime, lang: str
) -> tuple[list[Any], type, dict[str, Any]]:
    """(rows, row type, extra JSON) of one report (blocking; the topics report clusters: seconds)."""
    analytics, review = container.qa_analytics, container.qa_review
    if report == "reasons":
        return analytics.reasons(period, since, until, question_titles(container, lang)), ReasonRow, {}
    if report == "complaints":
        return analytics.complaints(since, until, question_titles(container, lang)), ComplaintRow, {}
    if report == "trends":
        return analytics.trends(period, since, until), TrendRow, {}
    if report == "agents":
        return analytics.agents(since, until), GroupScoreRow, {}
    if report == "teams":
        return analytics.teams(since, until), GroupScoreRow, {}
    if report == "agreement":
        return review.agreement(period, since, until), AgreementRow, {}
    topics = analytics.topics(period, since, until)
    return list(topics.clusters), TopicCluster, {"per_period": [dataclasses.asdict(r) for r in topics.per_period]}


@router.get("/analytics/{report}")
async def analytics(
    report: Report,
    principal: Reader,
    container: ContainerDep,
    request: Request,
    period: Period = "day",
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    lang: Literal["zh", "en"] = "en",
    format: Literal["json", "csv"] = "json",
) -> Response:
    """One analytics report over ``[since, until)`` per ``period``: JSON ``{"rows": [...]}`` (topics also
    ``per_period``), or a CSV download with ``format=csv`` (audited)."""
    since, until = window(period, since, until, container.clock.now())
    rows, row_type, extra = await run_in_threadpool(run_report, container, report, period, since, until, lang)
    if format == "csv":
        await run_in_threadpool(
            container.auth.audit,
            principal,
            "qa.export",
            "qa_report",
            report,
            client=client_ip(request),
            data={"rows": len(rows), "period": period},
        )
        body = "\ufeff" + to_csv(rows, row_type)  # the byte-order mark tells spreadsheets it is UTF-8
        name = f"qa-{report}-{period}-{since.date().isoformat()}-{until.date().isoformat()}.csv"
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    payload: dict[str, Any] = {
        "report": report,
        "period": period,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "rows": [_jsonable(dataclasses.asdict(r)) for r in rows],
        **extra,
    }
    return JSONResponse(_jsonable(payload))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
