"""Users, roles and the audit log (admin and compliance), and the product catalog (read)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from knowledge.catalog import Product
from voxdesk.auth.roles import AUDIT_READERS, PROFILE_READERS, USER_ADMINS, Role
from voxdesk.auth.service import AuditEntry, Principal
from voxdesk.server.deps import ContainerDep, PrincipalDep, client_ip, require

router = APIRouter(prefix="/api/v1", tags=["admin"])

Admin = Annotated[Principal, require(*USER_ADMINS)]


class UserIn(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(min_length=10, max_length=256)
    roles: list[Role] = Field(min_length=1)
    display_name: str = Field(default="", max_length=128)
    sip_user: str | None = Field(default=None, max_length=128, description="softphone SIP user, e.g. agent101")


class UserOut(BaseModel):
    username: str
    display_name: str
    roles: list[str]
    sip_user: str | None = None


class SipUserIn(BaseModel):
    sip_user: str | None = Field(default=None, max_length=128, description="SIP user or URI; null clears it")


class RolesIn(BaseModel):
    roles: list[Role] = Field(min_length=1)


class PasswordIn(BaseModel):
    current_password: str = Field(max_length=256)
    new_password: str = Field(min_length=10, max_length=256)


def _out(p: Principal) -> UserOut:
    return UserOut(username=p.username, display_name=p.display_name, roles=list(p.roles), sip_user=p.sip_user)


@router.get("/users")
async def list_users(principal: Admin, container: ContainerDep) -> list[UserOut]:
    """All users."""
    return [_out(p) for p in await run_in_threadpool(container.auth.list_users)]


@router.post("/users", status_code=201)
async def create_user(body: UserIn, principal: Admin, container: ContainerDep, request: Request) -> UserOut:
    """Add a user (409 when the name is taken)."""
    created = await run_in_threadpool(
        lambda: container.auth.create_user(
            body.username, body.password, body.roles, display_name=body.display_name, sip_user=body.sip_user
        )
    )
    await run_in_threadpool(
        container.auth.audit,
        principal,
        "user.create",
        "user",
        created.username,
        client=client_ip(request),
        data={"roles": list(created.roles)},
    )
    return _out(created)


@router.put("/users/{username}/roles")
async def set_roles(
    username: str, body: RolesIn, principal: Admin, container: ContainerDep, request: Request
) -> UserOut:
    """Replace a user's roles."""
    updated = await run_in_threadpool(container.auth.set_roles, username, list(body.roles))
    await run_in_threadpool(
        container.auth.audit,
        principal,
        "user.roles",
        "user",
        username,
        client=client_ip(request),
        data={"roles": list(updated.roles)},
    )
    return _out(updated)


@router.put("/users/{username}/sip")
async def set_sip_user(
    username: str, body: SipUserIn, principal: Admin, container: ContainerDep, request: Request
) -> UserOut:
    """Attach a user to their softphone (the assist panel follows that SIP user's calls); 409 when taken."""
    updated = await run_in_threadpool(container.auth.set_sip_user, username, body.sip_user)
    await run_in_threadpool(
        container.auth.audit,
        principal,
        "user.sip",
        "user",
        username,
        client=client_ip(request),
        data={"sip_user": updated.sip_user},
    )
    return _out(updated)


@router.post("/me/password", status_code=204)
async def change_password(body: PasswordIn, principal: PrincipalDep, container: ContainerDep) -> None:
    """Change one's own password (the current one is checked); ends all of the user's sessions."""
    await run_in_threadpool(container.auth.authenticate, principal.username, body.current_password)
    await run_in_threadpool(container.auth.set_password, principal.username, body.new_password)


@router.get("/audit")
async def audit_log(
    principal: Annotated[Principal, require(*AUDIT_READERS)],
    container: ContainerDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
    resource_type: str | None = None,
    resource_id: str | None = None,
) -> list[AuditEntry]:
    """The audit log, newest first."""
    return await run_in_threadpool(
        lambda: container.auth.audit_entries(
            limit=limit, offset=offset, resource_type=resource_type, resource_id=resource_id
        )
    )


@router.get("/products")
async def products(
    principal: Annotated[Principal, require(*PROFILE_READERS)],
    container: ContainerDep,
    category: str | None = None,
) -> list[Product]:
    """The product catalog (on sale only)."""
    return await run_in_threadpool(lambda: container.catalog.list(category=category))
