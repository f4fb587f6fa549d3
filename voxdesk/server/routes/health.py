"""Health, readiness and Prometheus metrics."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool

from core.errors import PermissionDeniedError
from voxdesk.auth.roles import allowed
from voxdesk.db import is_up_to_date
from voxdesk.server.deps import ContainerDep, get_principal

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers. No authentication."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(container: ContainerDep, response: Response) -> dict[str, object]:
    """Readiness: the database answers and is migrated to the newest revision. No authentication."""
    try:
        migrated = await run_in_threadpool(is_up_to_date, container.engine)
        database = "ok" if migrated else "not migrated"
    except Exception:  # noqa: BLE001 - any database failure means "not ready"
        database = "unreachable"
    ready = database == "ok"
    response.status_code = 200 if ready else 503
    return {"status": "ready" if ready else "not ready", "database": database}


@router.get("/metrics")
async def metrics(request: Request, container: ContainerDep) -> Response:
    """Prometheus metrics; needs the scrape token (``auth.metrics_token``) or a logged-in admin/supervisor."""
    token = container.settings.auth.metrics_token
    header = request.headers.get("authorization", "")
    if (
        token is not None
        and header.lower().startswith("bearer ")
        and hmac.compare_digest(header[7:].strip(), token.get_secret_value())
    ):
        return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
    principal = await get_principal(request, container)
    if not allowed(principal.roles, ("supervisor",)):
        raise PermissionDeniedError("your role does not allow this")
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
