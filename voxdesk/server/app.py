"""The FastAPI application: API v1, pages, health, metrics, OpenAPI (behind login).

Public without login: ``/healthz``, ``/readyz``, ``/login`` and ``/static/*`` (the login page's CSS/JS). Every
other route requires a session or bearer token and checks roles.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, Counter, Histogram

from core.errors import BusError
from core.logging import get_logger
from voxdesk.call_recorder import start_call_recorder
from voxdesk.container import Container
from voxdesk.registry import build_bus
from voxdesk.retention import retention_loop
from voxdesk.server import assist_ws
from voxdesk.server.deps import PrincipalDep
from voxdesk.server.errors import install_error_handlers
from voxdesk.server.routes import (
    admin,
    assist,
    assist_pages,
    auth,
    calls,
    campaign_pages,
    campaigns,
    customers,
    health,
    knowledge,
    pages,
    qa,
    qa_pages,
)

log = get_logger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(container: Container) -> FastAPI:
    """Build the app around an already wired container (the caller owns its lifetime)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bus = build_bus(container.settings.bus)
        try:
            await bus.start()
        except BusError:
            log.warning("event bus unavailable; profile events stay queued", backend=container.settings.bus.backend)
            yield
            return
        app.state.bus = bus
        tasks = [
            asyncio.create_task(container.outbox.drain_forever(bus)),
            asyncio.create_task(retention_loop(container)),
        ]
        try:
            tasks.append(await start_call_recorder(bus, container.calls))
        except BusError:
            log.error("call recorder could not subscribe; calls are not stored", backend=container.settings.bus.backend)
        try:
            yield
        finally:
            app.state.bus = None
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await container.outbox.flush(bus)
            await bus.aclose()

    app = FastAPI(
        title="Voxdesk",
        lifespan=lifespan,
        version="1.0",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.container = container
    app.state.bus = None  # the started event bus, set by the lifespan (websockets stream from it)
    registry = CollectorRegistry()
    app.state.metrics_registry = registry
    requests = Counter("voxdesk_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry)
    latency = Histogram("voxdesk_http_request_seconds", "HTTP request latency (s)", ["route"], registry=registry)
    max_body = container.settings.server.max_upload_bytes

    @app.middleware("http")
    async def guard_and_measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body):
            return JSONResponse({"code": "payload_too_large", "message": "request body is too large"}, 413)
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        requests.labels(request.method, name, str(response.status_code)).inc()
        latency.labels(name).observe(time.perf_counter() - started)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; frame-ancestors 'none'"
        )
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(auth.router)
    app.include_router(customers.router)
    app.include_router(calls.router)
    app.include_router(knowledge.router)
    app.include_router(assist.router)
    app.include_router(assist_ws.router)
    app.include_router(admin.router)
    app.include_router(pages.router)
    app.include_router(assist_pages.router)
    app.include_router(qa.router)
    app.include_router(qa_pages.router)
    app.include_router(campaigns.router)
    app.include_router(campaign_pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/api/openapi.json", include_in_schema=False)
    async def openapi(principal: PrincipalDep) -> JSONResponse:
        return JSONResponse(app.openapi())

    return app
