"""API login, logout and who-am-I."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from voxdesk.server.deps import ContainerDep, PrincipalDep, client_ip

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginBody(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=256)


class TokenOut(BaseModel):
    token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_in_s: int
    roles: list[str]


class MeOut(BaseModel):
    username: str
    display_name: str
    roles: list[str]
    must_change_password: bool


@router.post("/login")
async def login(body: LoginBody, request: Request, container: ContainerDep) -> TokenOut:
    """Exchange a username and password for a bearer token (401 on any failure)."""
    principal = await run_in_threadpool(container.auth.authenticate, body.username, body.password)
    token = await run_in_threadpool(container.auth.create_session, principal, kind="api")
    await run_in_threadpool(
        container.auth.audit, principal, "auth.login", "user", principal.username, client=client_ip(request)
    )
    return TokenOut(token=token, expires_in_s=container.settings.auth.session_ttl_s, roles=list(principal.roles))


@router.post("/logout", status_code=204)
async def logout(request: Request, principal: PrincipalDep, container: ContainerDep) -> None:
    """Revoke the token used for this request."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get("voxdesk_session")
    if token:
        await run_in_threadpool(container.auth.revoke, token)


@router.get("/me")
async def me(principal: PrincipalDep) -> MeOut:
    """The logged-in user."""
    return MeOut(
        username=principal.username,
        display_name=principal.display_name,
        roles=list(principal.roles),
        must_change_password=principal.must_change_password,
    )
