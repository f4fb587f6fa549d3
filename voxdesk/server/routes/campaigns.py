"""Outbound campaign API: campaigns, their dialing lists, start/pause/resume/stop, progress; the DNC list.

Roles: campaign managers (``marketing``, ``supervisor``, ``admin``) create and run campaigns and upload lists;
anyone who manages campaigns or compliance may add a number to the DNC list (the safe direction), only
``compliance`` and ``admin`` may take one off. Uploads and DNC changes are audited. Phone numbers never appear in
logs, and the audit records only counts and masked numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from core.csv_rows import decode_csv
from core.errors import ConfigError, InvalidInputError
from core.phones import normalise_phone
from core.pii import mask_text
from telephony.dialer.attempts import RetryPolicy
from telephony.dialer.calendar import parse_calendar
from telephony.dialer.campaigns import Campaign, CampaignStats, CampaignStatus, NewCampaign
from telephony.dialer.lists import parse_contacts, parse_list_csv
from telephony.dialer.policy import CampaignKind
from telephony.dialer.report import EXPORT_COLUMNS
from voxdesk.auth.roles import CAMPAIGN_MANAGERS, DNC_EDITORS, DNC_REMOVERS
from voxdesk.auth.service import Principal
from voxdesk.server.deps import ContainerDep, client_ip, read_upload, require

router = APIRouter(prefix="/api/v1", tags=["campaigns"])

Manager = Annotated[Principal, require(*CAMPAIGN_MANAGERS)]
_MAX_LIST_BYTES = 20 * 1024 * 1024
_MAX_ROWS = 100_000


class CampaignDialogIn(BaseModel):
    """What the campaign's calls say besides the kind's script (see :mod:`agent.navigator.campaign`)."""

    bank_name_zh: str | None = Field(default=None, max_length=64)
    bank_name_en: str | None = Field(default=None, max_length=64)
    callback_number: str | None = Field(default=None, pattern=r"^\+?[0-9 -]{3,20}$")
    voicemail: Literal["message", "hangup"] = "message"
    product_id: str | None = Field(default=None, max_length=64)
    product_name_zh: str | None = Field(default=None, max_length=128)
    product_name_en: str | None = Field(default=None, max_length=128)
    script_id: str | None = Field(default=None, max_length=64)
    """Marketing: the approved marketing script read to the callee."""


class CampaignIn(BaseModel):
    campaign_id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    name: str = Field(min_length=1, max_length=128)
    kind: CampaignKind
    lang: Literal["zh", "en"]
    max_channels: int = Field(default=4, ge=1, le=256)
    max_attempts: int = Field(default=3, ge=1, le=10)
    calendar: dict[str, Any] = Field(default_factory=dict)
    retry_minutes: dict[str, float] = Field(default_factory=dict)
    ring_timeout_s: float = Field(default=30.0, ge=5, le=120)
    dialog: CampaignDialogIn = Field(default_factory=CampaignDialogIn)


class CampaignOut(BaseModel):
    campaign: dict[str, Any]
    stats: dict[str, dict[str, int]] | None = None


class StatusIn(BaseModel):
    status: CampaignStatus


class ContactsIn(BaseModel):
    contacts: list[dict[str, Any]] = Field(min_length=1, max_length=_MAX_ROWS)
    default_region: str = Field(default="CN", pattern=r"^[A-Z]{2}$")


class ImportOut(BaseModel):
    contacts: int


class DncIn(BaseModel):
    phone: str = Field(min_length=3, max_length=32)
    reason: Literal["customer_request", "regulator", "complaint", "opt_out", "import"] = "customer_request"
    default_region: str = Field(default="CN", pattern=r"^[A-Z]{2}$")


class DncOut(BaseModel):
    phone: str
    listed: bool


def _out(campaign: Campaign, stats: CampaignStats | None = None) -> CampaignOut:
    body = {
        "campaign_id": campaign.campaign_id,
        "name": campaign.name,
        "kind": campaign.kind,
        "lang": campaign.lang,
        "status": campaign.status,
        "max_channels": campaign.max_channels,
        "max_attempts": campaign.max_attempts,
        "config": dict(campaign.config),
        "created_at": campaign.created_at.isoformat(),
        "started_at": campaign.started_at.isoformat() if campaign.started_at else None,
        "ended_at": campaign.ended_at.isoformat() if campaign.ended_at else None,
    }
    if stats is None:
        return CampaignOut(campaign=body)
    return CampaignOut(
        campaign=body, stats={"contacts": stats.contacts, "outcomes": stats.outcomes, "attempts": stats.attempts}
    )


@router.post("/campaigns", status_code=201)
async def create_campaign(
    body: CampaignIn, principal: Manager, container: ContainerDep, request: Request
) -> CampaignOut:
    """Create a draft campaign. The calendar (HH:MM windows per weekday, holidays) and the retry delays (minutes
    per outcome: busy, no_answer, voicemail, failed, abandoned, interrupted) are checked here."""
    try:
        parse_calendar(body.calendar)
        RetryPolicy.from_minutes(body.max_attempts, body.retry_minutes)
    except (ConfigError, ValueError) as exc:
        raise InvalidInputError(str(exc)) from exc
    if body.kind == "marketing" and not body.dialog.script_id:
        raise InvalidInputError("a marketing campaign needs the approved marketing script (dialog.script_id)")
    if body.dialog.script_id:
        await run_in_threadpool(container.scripts.approved, body.dialog.script_id)  # NotFoundError: 404
    dialog = body.dialog.model_dump(exclude_none=True)
    config: dict[str, Any] = {
        "calendar": body.calendar, "retry_minutes": body.retry_minutes, "ring_timeout_s": body.ring_timeout_s,
        "dialog": dialog,
    }  # fmt: skip
    if body.dialog.product_id:
        config["product_id"] = body.dialog.product_id
    new = NewCampaign(
        body.campaign_id, body.name, body.kind, body.lang, body.max_channels, body.max_attempts, config,
        created_by=principal.username,
    )  # fmt: skip
    campaign = await run_in_threadpool(container.campaigns.create, new)
    await run_in_threadpool(
        container.auth.audit, principal, "campaign.create", "campaign", campaign.campaign_id, client=client_ip(request)
    )
    return _out(campaign)


@router.get("/campaigns")
async def list_campaigns(
    principal: Manager, container: ContainerDep, status: CampaignStatus | None = None
) -> list[CampaignOut]:
    """Campaigns, newest first."""
    return [_out(c) for c in await run_in_threadpool(container.campaigns.find, status=status)]


@router.get("/campaigns/{campaign_id}")
async def get_campaign(campaign_id: str, principal: Manager, container: ContainerDep) -> CampaignOut:
    """A campaign with its progress counts."""
    campaign = await run_in_threadpool(container.campaigns.get, campaign_id)
    return _out(campaign, await run_in_threadpool(container.campaigns.stats, campaign_id))


@router.get("/campaigns/{campaign_id}/report")
async def campaign_report(campaign_id: str, principal: Manager, container: ContainerDep) -> dict[str, Any]:
    """The dashboard figures (funnel, conversion, opt-outs, live channels, abandon rate of the day) and the
    latest attempts (numbers masked)."""
    campaign = await run_in_threadpool(container.campaigns.get, campaign_id)
    report = await run_in_threadpool(container.campaign_reports.report, campaign_id, now=container.clock.now())
    recent = await run_in_threadpool(container.campaign_reports.recent, campaign_id)
    lines = [
        {"attempt_id": a.attempt_id, "phone": a.phone_masked, "state": a.state, "sip_code": a.sip_code,
         "dialed_at": a.dialed_at.isoformat() if a.dialed_at else None,
         "ended_at": a.ended_at.isoformat() if a.ended_at else None, "outcome": a.outcome}
        for a in recent
    ]  # fmt: skip
    return {"campaign": _out(campaign).campaign, "report": report.as_json(), "recent": lines}


@router.get("/campaigns/{campaign_id}/contacts.csv")
async def export_contacts(
    campaign_id: str, principal: Manager, container: ContainerDep, request: Request
) -> StreamingResponse:
    """Every contact with its outcome, attempts and captured fields, as CSV (UTF-8 with BOM, for spreadsheets).
    Holds full numbers: audited."""
    await run_in_threadpool(container.campaigns.get, campaign_id)
    await run_in_threadpool(
        container.auth.audit, principal, "campaign.export", "campaign", campaign_id, client=client_ip(request)
    )
    rows = await run_in_threadpool(lambda: list(container.campaign_reports.export_rows(campaign_id)))

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
        buffer.write("\ufeff")
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
            if buffer.tell() > 64_000:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    headers = {"Content-Disposition": f'attachment; filename="campaign-{campaign_id}.csv"'}
    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8", headers=headers)


@router.post("/campaigns/{campaign_id}/status")
async def set_status(
    campaign_id: str, body: StatusIn, principal: Manager, container: ContainerDep, request: Request
) -> CampaignOut:
    """Start (``running``), pause, resume (``running``), stop or complete a campaign."""
    campaign = await run_in_threadpool(container.campaigns.set_status, campaign_id, body.status)
    await run_in_threadpool(
        container.auth.audit, principal, f"campaign.{body.status}", "campaign", campaign_id, client=client_ip(request)
    )
    return _out(campaign)


@router.post("/campaigns/{campaign_id}/contacts/csv", status_code=201)
async def upload_list(
    campaign_id: str,
    principal: Manager,
    container: ContainerDep,
    request: Request,
    file: Annotated[UploadFile, File()],
    default_region: Annotated[str, Form(pattern=r"^[A-Z]{2}$")] = "CN",
) -> ImportOut:
    """Add a dialing list from CSV, all or nothing (bad rows are named by line number). Audited."""
    campaign = await run_in_threadpool(container.campaigns.get, campaign_id)
    text = decode_csv(await read_upload(file, _MAX_LIST_BYTES), max_bytes=_MAX_LIST_BYTES)
    contacts = await run_in_threadpool(
        parse_list_csv, text, kind=campaign.kind, default_language=campaign.lang, default_region=default_region
    )
    if len(contacts) > _MAX_ROWS:
        raise InvalidInputError(f"a dialing list holds at most {_MAX_ROWS} rows")
    added = await run_in_threadpool(container.dialer.add_contacts, campaign_id, contacts)
    await _audit_list(container, principal, request, campaign_id, added)
    return ImportOut(contacts=added)


@router.post("/campaigns/{campaign_id}/contacts", status_code=201)
async def add_contacts(
    campaign_id: str, body: ContactsIn, principal: Manager, container: ContainerDep, request: Request
) -> ImportOut:
    """Add dialing-list rows as JSON (the CSV's column names), all or nothing. Audited."""
    campaign = await run_in_threadpool(container.campaigns.get, campaign_id)
    contacts = await run_in_threadpool(
        parse_contacts, body.contacts, kind=campaign.kind, default_language=campaign.lang,
        default_region=body.default_region,
    )  # fmt: skip
    added = await run_in_threadpool(container.dialer.add_contacts, campaign_id, contacts)
    await _audit_list(container, principal, request, campaign_id, added)
    return ImportOut(contacts=added)


async def _audit_list(container: Any, principal: Principal, request: Request, campaign_id: str, added: int) -> None:
    await run_in_threadpool(
        container.auth.audit, principal, "campaign.list_import", "campaign", campaign_id,
        client=client_ip(request), data={"contacts": added},
    )  # fmt: skip


@router.get("/dnc/{phone}")
async def dnc_lookup(
    phone: str, principal: Annotated[Principal, require(*DNC_EDITORS)], container: ContainerDep
) -> DncOut:
    """Whether a number is on the DNC list."""
    e164 = normalise_phone(phone)
    return DncOut(phone=e164, listed=bool(await run_in_threadpool(container.dialer.dnc_numbers, [e164])))


@router.post("/dnc", status_code=201)
async def dnc_add(
    body: DncIn, principal: Annotated[Principal, require(*DNC_EDITORS)], container: ContainerDep, request: Request
) -> DncOut:
    """Put a number on the DNC list (every campaign kind honours it at the next dial). Audited."""
    e164 = normalise_phone(body.phone, body.default_region)
    await run_in_threadpool(container.dialer.add_dnc, e164, reason=body.reason, source=principal.username)
    await run_in_threadpool(
        container.auth.audit, principal, "dnc.add", "dnc", mask_text(e164), client=client_ip(request),
        data={"reason": body.reason},
    )  # fmt: skip
    return DncOut(phone=e164, listed=True)


@router.delete("/dnc/{phone}")
async def dnc_remove(
    phone: str, principal: Annotated[Principal, require(*DNC_REMOVERS)], container: ContainerDep, request: Request
) -> DncOut:
    """Take a number off the DNC list (compliance). Audited."""
    e164 = normalise_phone(phone)
    removed = await run_in_threadpool(container.dialer.remove_dnc, e164)
    await run_in_threadpool(
        container.auth.audit, principal, "dnc.remove", "dnc", mask_text(e164), client=client_ip(request),
        data={"was_listed": removed},
    )  # fmt: skip
    return DncOut(phone=e164, listed=False)
