"""Request dependencies: the container, the authenticated principal, role guards, CSRF.

Browsers authenticate with the ``voxdesk_session`` cookie; API clients with ``Authorization: Bearer <token>``.
State-changing requests authenticated by cookie must carry the CSRF token (header ``X-CSRF-Token`` or form field
``csrf_token``), which is an HMAC of the session token under ``auth.session_secret``.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from core.errors import AuthenticationError, PayloadTooLargeError, PermissionDeniedError
from voxdesk.auth.roles import Role, allowed
from voxdesk.auth.service import Principal
from voxdesk.container import Container

SESSION_COOKIE = "voxdesk_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_container(request: Request) -> Container:
    """The application's container (set on ``app.state`` at start-up)."""
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


async def read_upload(upload: UploadFile, max_bytes: int) -> bytes:
    """An uploaded file's bytes; raises :class:`PayloadTooLargeError` above ``max_bytes`` (reads at most one byte
    more, so an oversized upload is never held in memory whole)."""
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise PayloadTooLargeError("upload is larger than the limit", max_bytes=max_bytes)
    return data


def client_ip(request: Request) -> str | None:
    """The caller's IP address."""
    return request.client.host if request.client else None


def csrf_token(container: Container, session_token: str) -> str:
    """The CSRF token that goes with a session token (hex, 32 characters)."""
    key = container.settings.auth.session_secret.get_secret_value().encode()
    return hmac.new(key, b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()[:32]


def _token(request: Request) -> tuple[str | None, bool]:
    """(token, from_cookie)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), False
    cookie = request.cookies.get(SESSION_COOKIE)
    return cookie, cookie is not None


async def get_principal(request: Request, container: ContainerDep) -> Principal:
    """The logged-in user; raises :class:`AuthenticationError` (HTTP 401) otherwise."""
    token, from_cookie = _token(request)
    if not token:
        raise AuthenticationError("not logged in")
    principal = await run_in_threadpool(container.auth.resolve, token)
    if from_cookie and request.method not in SAFE_METHODS:
        sent = request.headers.get("x-csrf-token")
        if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get("csrf_token")
            sent = value if isinstance(value, str) else None
        if not sent or not hmac.compare_digest(sent, csrf_token(container, token)):
            raise PermissionDeniedError("missing or wrong CSRF token")
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(*roles: Role) -> object:
    """A dependency admitting users holding any of ``roles`` (admins always); others get HTTP 403."""

    async def guard(principal: PrincipalDep) -> Principal:
        if not allowed(principal.roles, roles):
            raise PermissionDeniedError("your role does not allow this")
        return principal

    return Depends(guard)
