"""Customer profile API: search, read (audited), timeline, consent, tags, CSV import and export."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from core.csv_rows import decode_csv
from profiles.importer import export_customers, import_customers
from profiles.models import ConsentKind, Customer, CustomerPage, Tag, TimelineEntry
from voxdesk.auth.roles import PROFILE_READERS, PROFILE_WRITERS
from voxdesk.auth.service import Principal
from voxdesk.server.deps import ContainerDep, client_ip, read_upload, require

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])

Reader = Annotated[Principal, require(*PROFILE_READERS)]
Writer = Annotated[Principal, require(*PROFILE_WRITERS)]


class ImportOut(BaseModel):
    customers: int
    holdings: int


class ConsentBody(BaseModel):
    granted: bool
    source: str = Field(default="api", max_length=64)


@router.get("")
async def search_customers(
    principal: Reader,
    container: ContainerDep,
    request: Request,
    q: Annotated[str | None, Query(max_length=64)] = None,
    tier: str | None = None,
    branch_id: str | None = None,
    tag: str | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> CustomerPage:
    """Search customers by id, name prefix or phone number; filter by tier, branch or tag. Audited."""
    page = await run_in_threadpool(
        container.profiles.search, text=q, tier=tier, branch_id=branch_id, tag=tag, offset=offset, limit=limit
    )
    await run_in_threadpool(
        container.auth.audit,
        principal,
        "profile.search",
        "customer",
        None,
        client=client_ip(request),
        data={"results": len(page.items)},
    )
    return page


@router.get("/export")
async def export(
    principal: Annotated[Principal, require("admin", "marketing")],
    container: ContainerDep,
    request: Request,
    part: Annotated[str, Query(pattern="^(customers|holdings)$")] = "customers",
) -> Response:
    """Export all customers (or their holdings) as CSV in the import format. Audited."""
    customers_csv, holdings_csv = await run_in_threadpool(lambda: export_customers(container.profiles.iter_all()))
    await run_in_threadpool(
        container.auth.audit,
        principal,
        "profile.export",
        "customer",
        None,
        client=client_ip(request),
        data={"part": part},
    )
    body = customers_csv if part == "customers" else holdings_csv
    return Response(
        body.encode("utf-8-sig"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{part}.csv"'},
    )


@router.post("/import")
async def import_csv(
    principal: Writer,
    container: ContainerDep,
    request: Request,
    customers: Annotated[UploadFile, File(description="customers CSV")],
    holdings: Annotated[UploadFile | None, File(description="holdings CSV")] = None,
) -> ImportOut:
    """Import customers (and holdings) from CSV: all or nothing; HTTP 422 lists every bad row."""
    limit = container.settings.server.max_upload_bytes
    customers_text = decode_csv(await read_upload(customers, limit), max_bytes=limit)
    holdings_text = decode_csv(await read_upload(holdings, limit), max_bytes=limit) if holdings else None
    result = await run_in_threadpool(
        lambda: import_customers(
            container.profiles, customers_text, holdings_text, now=container.clock.now(), source="api-import"
        )
    )
    await run_in_threadpool(
        container.auth.audit,
        principal,
        "customers.import",
        "customer",
        None,
        client=client_ip(request),
        data={"customers": result.customers, "holdings": result.holdings},
    )
    return ImportOut(customers=result.customers, holdings=result.holdings)


@router.get("/by-phone/{phone}")
async def by_phone(phone: str, principal: Reader, container: ContainerDep, request: Request) -> list[Customer]:
    """Customers with this phone number (any format). Audited."""
    found = await run_in_threadpool(container.profiles.find_by_phone, phone)
    for c in found:
        await run_in_threadpool(
            container.auth.audit,
            principal,
            "profile.read",
            "customer",
            c.customer_id,
            client=client_ip(request),
            data={"via": "phone"},
        )
    return found


@router.get("/{customer_id}")
async def get_customer(customer_id: str, principal: Reader, container: ContainerDep, request: Request) -> Customer:
    """One customer profile (404 for unknown ids). Audited."""
    customer = await run_in_threadpool(container.profiles.get, customer_id)
    await run_in_threadpool(
        container.auth.audit, principal, "profile.read", "customer", customer_id, client=client_ip(request)
    )
    return customer


@router.get("/{customer_id}/timeline")
async def get_timeline(
    customer_id: str,
    principal: Reader,
    container: ContainerDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[TimelineEntry]:
    """A customer's history, newest first. Audited."""
    entries = await run_in_threadpool(lambda: container.profiles.timeline(customer_id, limit=limit))
    await run_in_threadpool(
        container.auth.audit, principal, "profile.timeline", "customer", customer_id, client=client_ip(request)
    )
    return entries


@router.put("/{customer_id}/consents/{kind}")
async def put_consent(
    customer_id: str,
    kind: ConsentKind,
    body: ConsentBody,
    principal: Reader,
    container: ContainerDep,
    request: Request,
) -> dict[str, object]:
    """Record a consent decision the customer made (any staff role may record it). Audited."""
    consent = await run_in_threadpool(
        lambda: container.profiles.set_consent(customer_id, kind, body.granted, source=body.source)
    )
    await run_in_threadpool(
        container.auth.audit,
        principal,
        "profile.consent",
        "customer",
        customer_id,
        client=client_ip(request),
        data={"kind": kind, "granted": body.granted},
    )
    return consent.model_dump(mode="json")


@router.put("/{customer_id}/tags/{name}", status_code=204)
async def put_tag(customer_id: str, name: str, tag: Tag, principal: Writer, container: ContainerDep) -> None:
    """Create or replace a tag (``name`` in the path wins over the body)."""
    await run_in_threadpool(container.profiles.set_tag, customer_id, tag.model_copy(update={"name": name}))


@router.delete("/{customer_id}/tags/{name}", status_code=204)
async def delete_tag(customer_id: str, name: str, principal: Writer, container: ContainerDep) -> None:
    """Remove a tag (no error when absent)."""
    await run_in_threadpool(container.profiles.remove_tag, customer_id, name)
