"""Authentication of websockets, shared by the call and assist streams.

A websocket authenticates like the API: the session cookie, or a token as ``Authorization: Bearer …`` or
``?token=…`` (prefer the header; query strings end up in proxy logs). A cookie sent from another site's page is
refused (cross-site websocket hijacking).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import WebSocket
from starlette.concurrency import run_in_threadpool

from core.errors import AuthenticationError
from voxdesk.auth.roles import Role, allowed
from voxdesk.auth.service import Principal
from voxdesk.container import Container
from voxdesk.server.deps import SESSION_COOKIE

CLOSE_UNAUTHENTICATED, CLOSE_FORBIDDEN, CLOSE_TRY_AGAIN, CLOSE_INTERNAL = 4401, 4403, 1013, 1011


async def authorize_websocket(
    websocket: WebSocket, container: Container, roles: tuple[Role, ...]
) -> tuple[Principal | None, int]:
    """(principal, 0) when the user holds one of ``roles``; else (None, the close code to use)."""
    header = websocket.headers.get("authorization", "")
    cookie = websocket.cookies.get(SESSION_COOKIE)
    token = websocket.query_params.get("token") or (header[7:].strip() if header.lower().startswith("bearer ") else "")
    from_cookie = not token and cookie is not None
    token = token or cookie or ""
    if not token:
        return None, CLOSE_UNAUTHENTICATED
    try:
        principal = await run_in_threadpool(container.auth.resolve, token)
    except AuthenticationError:
        return None, CLOSE_UNAUTHENTICATED
    if not allowed(principal.roles, roles):
        return None, CLOSE_FORBIDDEN
    origin = websocket.headers.get("origin")
    if from_cookie and origin is not None and urlsplit(origin).netloc != websocket.headers.get("host"):
        return None, CLOSE_FORBIDDEN
    return principal, 0


def websocket_client(websocket: WebSocket) -> str | None:
    """The peer's IP address."""
    return websocket.client.host if websocket.client else None
