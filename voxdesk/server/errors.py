"""Maps the Voxdesk error hierarchy to HTTP responses (JSON for the API, a page for browsers)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.errors import (
    AuthenticationError,
    ConflictError,
    ImportRejectedError,
    InvalidInputError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    VoxdeskError,
)
from core.logging import get_logger

log = get_logger(__name__)

_STATUS: list[tuple[type[VoxdeskError], int]] = [
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (PayloadTooLargeError, 413),
    (ImportRejectedError, 422),
    (InvalidInputError, 400),
]


def status_for(exc: VoxdeskError) -> int:
    """HTTP status of an error; retryable failures are 503, the rest 500."""
    for cls, code in _STATUS:
        if isinstance(exc, cls):
            return code
    return 503 if exc.retryable else 500


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(VoxdeskError)
    async def voxdesk_error(request: Request, exc: VoxdeskError) -> Response:
        status = status_for(exc)
        if status == 401 and _wants_html(request):
            return RedirectResponse("/login?next=" + request.url.path, status_code=303)
        if status >= 500:
            log.error("request failed", path=request.url.path, error=exc.code, retryable=exc.retryable)
        body: dict[str, object] = {"code": exc.code, "message": exc.message}
        if isinstance(exc, ImportRejectedError):
            body["rows"] = [{"row": e.row, "column": e.column, "reason": e.reason} for e in exc.rows]
            body["message"] = str(exc)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(body, status_code=status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        return JSONResponse({"code": "invalid_input", "message": "request is invalid", "errors": errors}, 422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return JSONResponse({"code": "http", "message": str(exc.detail)}, status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", path=request.url.path)
        return JSONResponse({"code": "internal", "message": "internal error"}, status_code=500)
