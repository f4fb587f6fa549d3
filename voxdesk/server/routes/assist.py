"""Live assist API: live calls, a call's panel snapshot, suggestion feedback, and the panel websocket.

Roles (see :mod:`voxdesk.auth.roles`): :data:`ASSIST_USERS` (agents, supervisors) open panels and give feedback;
:data:`SUPERVISORS` see every call's alerts, including customer-dissatisfaction alerts meant for supervisors only.
Customer names are masked unless the reader is in :data:`CUSTOMER_NAME_READERS`; card, ID, account and phone
numbers in transcripts unless in :data:`TRANSCRIPT_PII_READERS`. Snapshot reads are audited (they show a profile).

The websocket ``/api/v1/assist/ws`` (see :mod:`voxdesk.server.assist_ws`) authenticates like the call websocket.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from agent.assist.store import AssistCall, AssistStore
from core.errors import NotFoundError, PermissionDeniedError
from core.events import AnyEvent, ComplianceAlert, FinalTranscript, PartialTranscript
from core.logging import get_logger
from core.pii import mask_name, mask_text
from knowledge.catalog import Product
from profiles.models import Customer, TimelineEntry
from voxdesk.auth.roles import (
    ASSIST_USERS,
    CUSTOMER_NAME_READERS,
    SUPERVISORS,
    TRANSCRIPT_PII_READERS,
    Role,
    allowed,
)
from voxdesk.auth.service import Principal
from voxdesk.container import Container
from voxdesk.server.deps import ContainerDep, client_ip, require

log = get_logger(__name__)
router = APIRouter(prefix="/api/v1/assist", tags=["assist"])

User = Annotated[Principal, require(*ASSIST_USERS)]
Supervisor = Annotated[Principal, require(*SUPERVISORS)]

INTERACTION_KINDS = ("call", "campaign", "marketing", "note", "qa")


class LiveCall(BaseModel):
    """A live assisted call in the supervisor's list; ``duration_s`` from its start to now."""

    call: AssistCall
    duration_s: float
    customer_name: str | None = None
    """Masked per role."""


class HoldingCard(BaseModel):
    product_id: str
    name: str
    amount_cny: str


class CustomerCard(BaseModel):
    """The profile card of the panel (name masked per role)."""

    customer_id: str
    name: str
    language: str
    age: int | None
    tier: str
    grade: str
    groups: list[str]
    vip: bool
    risk_tolerance: str | None
    consents: dict[str, bool]
    holdings: list[HoldingCard]
    tags: list[str]
    interactions: list[TimelineEntry]
    visits: list[TimelineEntry]


class TranscriptLine(BaseModel):
    leg: str
    text: str
    start_ms: int
    end_ms: int


class Snapshot(BaseModel):
    """What a panel opened mid-call needs: the call, the customer, the transcript so far and its panel events."""

    call: AssistCall
    customer: CustomerCard | None
    transcript: list[TranscriptLine]
    events: list[dict[str, Any]]
    used: list[str]
    dismissed: list[str]


class FeedbackIn(BaseModel):
    action: Literal["used", "dismissed"]


def assist_store(container: Container) -> AssistStore:
    """The assist store on the container's database."""
    return AssistStore(container.sessions, clock=container.clock)


def visible_to(roles: tuple[Role, ...], event: AnyEvent) -> AnyEvent | None:
    """The event as ``roles`` may see it: supervisor-only alerts dropped for agents, transcript numbers masked."""
    if isinstance(event, ComplianceAlert) and event.audience == "supervisor" and not allowed(roles, SUPERVISORS):
        return None
    if isinstance(event, FinalTranscript | PartialTranscript) and not allowed(roles, TRANSCRIPT_PII_READERS):
        return event.model_copy(update={"text": mask_text(event.text)})
    if isinstance(event, ComplianceAlert) and not allowed(roles, TRANSCRIPT_PII_READERS):
        return event.model_copy(update={"quote": mask_text(event.quote)})
    return event


def customer_card(
    container: Container, customer: Customer, roles: tuple[Role, ...], lang: str | None = None
) -> CustomerCard:
    """The panel's profile card, product names in ``lang`` (default: the customer's language). Blocking: reads the
    catalog and the timeline."""
    names: dict[str, Product] = {p.product_id: p for p in container.catalog.list(on_sale_only=False)}
    lang = lang or customer.language
    timeline = container.profiles.timeline(customer.customer_id, limit=50)

    def product_name(pid: str) -> str:
        p = names.get(pid)
        return (p.name_zh if lang == "zh" else p.name_en) if p else pid

    return CustomerCard(
        customer_id=customer.customer_id,
        name=customer.name if allowed(roles, CUSTOMER_NAME_READERS) else mask_name(customer.name),
        language=customer.language,
        age=customer.age_on(container.clock.now().date()),
        tier=customer.tier,
        grade=customer.grade,
        groups=list(customer.groups),
        vip=customer.vip,
        risk_tolerance=customer.risk_tolerance,
        consents={c.kind: c.granted for c in customer.consents},
        holdings=[
            HoldingCard(product_id=h.product_id, name=product_name(h.product_id), amount_cny=str(h.amount_cny))
            for h in customer.holdings
        ],
        tags=[t.name if not t.value else f"{t.name}:{t.value}" for t in customer.tags],
        interactions=[e for e in timeline if e.kind in INTERACTION_KINDS][:5],
        visits=[e for e in timeline if e.kind == "visit"][:3],
    )


def _snapshot(container: Container, call_id: str, principal: Principal) -> Snapshot:
    store = assist_store(container)
    call = store.get_call(call_id)
    if not allowed(principal.roles, SUPERVISORS) and call.agent_user and call.agent_user != principal.sip_user:
        raise PermissionDeniedError("this call belongs to another agent")
    card = None
    if call.customer_id is not None:
        try:
            card = customer_card(container, container.profiles.get(call.customer_id), principal.roles, call.lang)
        except NotFoundError:
            card = None
    try:
        detail = container.calls.detail(call_id)
        utterances = detail.utterances
    except NotFoundError:
        utterances = ()
    pii = allowed(principal.roles, TRANSCRIPT_PII_READERS)
    transcript = [
        TranscriptLine(leg=u.leg, text=u.text if pii else mask_text(u.text), start_ms=u.start_ms, end_ms=u.end_ms)
        for u in utterances
    ]
    events = [e for e in (visible_to(principal.roles, ev) for ev in store.events(call_id)) if e is not None]
    feedback = store.feedback(call_id=call_id)
    return Snapshot(
        call=call,
        customer=card,
        transcript=transcript,
        events=[e.model_dump(mode="json") for e in events],
        used=sorted({f.suggestion_id for f in feedback if f.action == "used"}),
        dismissed=sorted({f.suggestion_id for f in feedback if f.action == "dismissed"}),
    )


@router.get("/live")
async def live_calls(principal: User, container: ContainerDep) -> list[LiveCall]:
    """Live assisted calls, newest first: every call for supervisors, the agent's own (by SIP user) and the
    unattached ones for agents."""
    store = assist_store(container)
    calls = await run_in_threadpool(store.live)
    if not allowed(principal.roles, SUPERVISORS):
        calls = [c for c in calls if not c.agent_user or c.agent_user == principal.sip_user]
    now = container.clock.now()
    names = allowed(principal.roles, CUSTOMER_NAME_READERS)

    def name_of(customer_id: str | None) -> str | None:
        if customer_id is None:
            return None
        try:
            name = container.profiles.get(customer_id).name
        except NotFoundError:
            return None
        return name if names else mask_name(name)

    out = []
    for c in calls:
        name = await run_in_threadpool(name_of, c.customer_id)
        out.append(LiveCall(call=c, duration_s=_seconds(now, c.started_at), customer_name=name))
    return out


@router.get("/mine")
async def my_call(principal: User, container: ContainerDep) -> AssistCall:
    """The live call on the logged-in agent's softphone (404 when none, or when the user has no SIP user)."""
    if not principal.sip_user:
        raise NotFoundError("no softphone (SIP user) is set for this user")
    calls = await run_in_threadpool(lambda: assist_store(container).live(agent_user=principal.sip_user))
    if not calls:
        raise NotFoundError("no live call on this agent's softphone")
    return calls[0]


@router.get("/calls/{call_id}")
async def snapshot(call_id: str, principal: User, container: ContainerDep, request: Request) -> Snapshot:
    """A call's panel as of now (404 for unknown calls; 403 for another agent's call). Audited."""
    snap = await run_in_threadpool(_snapshot, container, call_id, principal)
    await run_in_threadpool(
        container.auth.audit,
        principal,
        "assist.read",
        "call",
        call_id,
        client=client_ip(request),
        data={"customer_id": snap.call.customer_id},
    )
    return snap


@router.post("/suggestions/{suggestion_id}/feedback", status_code=201)
async def feedback(
    suggestion_id: str, body: FeedbackIn, principal: User, container: ContainerDep, request: Request
) -> dict[str, str]:
    """Mark a suggestion *used* or *dismissed* (stored once; 404 for an unknown suggestion)."""
    store = assist_store(container)
    event = await run_in_threadpool(store.add_feedback, suggestion_id, body.action, principal.username)
    bus = request.app.state.bus
    if bus is not None:
        await bus.publish(event)
    else:
        log.warning("suggestion feedback stored but not published: no event bus", call_id=event.call_id)
    return {"suggestion_id": suggestion_id, "action": body.action}


@router.get("/recent")
async def recent_calls(principal: Supervisor, container: ContainerDep) -> list[AssistCall]:
    """The latest assisted calls, ended or not, newest first (supervisors)."""
    return await run_in_threadpool(lambda: assist_store(container).recent(limit=50))


def _seconds(now: datetime, then: datetime) -> float:
    return round(max(0.0, (now - then).total_seconds()), 1)
