"""Call API: list and read recorded calls (audited), download recordings (audited), and watch a call live.

Roles (see :mod:`voxdesk.auth.roles`): :data:`CALL_READERS` list and read calls with transcript and DTMF,
:data:`RECORDING_LISTENERS` download recordings, :data:`LIVE_CALL_WATCHERS` open a call's event websocket.

The websocket ``/api/v1/calls/{call_id}/events`` authenticates like the API (session cookie, or a token as
``Authorization: Bearer …`` or ``?token=…``; prefer the header, query strings end up in proxy logs). It is
accepted only once its bus subscription is live, so every event published after the handshake is delivered. It
closes with 4401 (not logged in), 4403 (role not allowed, or a cookie sent from a foreign origin), 1013 (no event
bus), 1011 (the bus failed) or 1000 after forwarding the call's :class:`~core.events.CallEnded`. Each message is
one event of that call as JSON (``core.events.event_to_json``): call, speech, intent and assist events.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from pydantic import AwareDatetime
from starlette.concurrency import run_in_threadpool

from core.bus.base import EventBus, Subscription
from core.errors import NotFoundError, VoxdeskError
from core.events import CallEnded
from core.logging import get_logger
from core.pii import mask_text
from telephony.models import CallDetail, CallPage
from voxdesk.auth.roles import CALL_READERS, LIVE_CALL_WATCHERS, RECORDING_LISTENERS, TRANSCRIPT_PII_READERS, allowed
from voxdesk.auth.service import Principal
from voxdesk.container import Container
from voxdesk.server.deps import ContainerDep, client_ip, require
from voxdesk.server.ws_auth import CLOSE_INTERNAL, CLOSE_TRY_AGAIN, authorize_websocket, websocket_client

log = get_logger(__name__)
router = APIRouter(prefix="/api/v1/calls", tags=["calls"])

Reader = Annotated[Principal, require(*CALL_READERS)]
Listener = Annotated[Principal, require(*RECORDING_LISTENERS)]

LIVE_KINDS: tuple[str, ...] = ("call.", "speech.", "nlu.", "assist.")
"""Event kinds a call's websocket forwards (those of that call only)."""
LIVE_QUEUE_SIZE = 1000
"""Events buffered per websocket before the oldest is dropped (a stalled browser never stalls the bus)."""
_MEDIA_TYPES = {".wav": "audio/wav", ".flac": "audio/flac"}


@router.get("")
async def list_calls(
    principal: Reader,
    container: ContainerDep,
    request: Request,
    customer_id: Annotated[str | None, Query(max_length=32)] = None,
    line: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[AwareDatetime | None, Query(description="calls started at or after (ISO 8601 with zone)")] = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> CallPage:
    """Calls newest first, filtered by customer, line and start time. Audited."""
    page = await run_in_threadpool(
        lambda: container.calls.list(offset, limit, customer_id=customer_id, line=line, since=since)
    )
    await run_in_threadpool(
        container.auth.audit,
        principal,
        "call.list",
        "call",
        None,
        client=client_ip(request),
        data={"results": len(page.items), "customer_id": customer_id, "line": line},
    )
    return page


@router.get("/{call_id}")
async def get_call(call_id: str, principal: Reader, container: ContainerDep, request: Request) -> CallDetail:
    """One call with its legs, utterances and DTMF digits (404 for unknown ids). Audited.

    Card, ID, account and phone numbers in the transcript are masked unless the reader may see them
    (:data:`~voxdesk.auth.roles.TRANSCRIPT_PII_READERS`)."""
    detail = await run_in_threadpool(container.calls.detail, call_id)
    await run_in_threadpool(container.auth.audit, principal, "call.read", "call", call_id, client=client_ip(request))
    if not allowed(principal.roles, TRANSCRIPT_PII_READERS):
        masked = tuple(u.model_copy(update={"text": mask_text(u.text)}) for u in detail.utterances)
        detail = detail.model_copy(update={"utterances": masked})
    return detail


@router.get("/{call_id}/recording")
async def get_recording(call_id: str, principal: Listener, container: ContainerDep, request: Request) -> FileResponse:
    """The call's recording file, streamed (404 when the call, its recording or the file is missing). Audited."""
    call = await run_in_threadpool(container.calls.get, call_id)
    if call.recording_path is None:
        raise NotFoundError("call has no recording", call_id=call_id)
    path = await run_in_threadpool(recording_file, call.recording_path, container.settings.recording.directory)
    await run_in_threadpool(
        container.auth.audit, principal, "recording.read", "call", call_id, client=client_ip(request)
    )
    return FileResponse(
        path,
        media_type=_MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream"),
        filename=f"{call_id}{path.suffix.lower()}",
    )


def recording_file(recording_path: str, directory: Path) -> Path:
    """The recording file, resolved (relative paths from the working directory) and confined to ``directory``.

    Raises :class:`NotFoundError` when it lies outside the recording directory or does not exist. Blocking file
    system calls: run it in a worker thread.
    """
    root = directory.resolve()
    path = Path(recording_path).resolve()
    if not path.is_relative_to(root):
        log.warning("recording path outside the recording directory refused", path=recording_path)
        raise NotFoundError("recording is not available")
    if not path.is_file():
        raise NotFoundError("recording file is missing")
    return path


@router.websocket("/{call_id}/events")
async def call_events(websocket: WebSocket, call_id: str) -> None:
    """Stream one call's events as JSON text messages until it ends or the client leaves (see module doc)."""
    container: Container = websocket.app.state.container
    principal, refusal = await authorize_websocket(websocket, container, LIVE_CALL_WATCHERS)
    if principal is None:
        await websocket.accept()
        await websocket.close(refusal)
        return
    bus: EventBus | None = websocket.app.state.bus
    if bus is None:
        await websocket.accept()
        await websocket.close(CLOSE_TRY_AGAIN, "event bus unavailable")
        return
    await run_in_threadpool(
        container.auth.audit, principal, "call.watch", "call", call_id, client=websocket_client(websocket)
    )
    sub = bus.subscribe(*LIVE_KINDS, queue_size=LIVE_QUEUE_SIZE)
    close_code: int | None = CLOSE_INTERNAL
    try:
        await sub.wait_ready()
        await websocket.accept()
        close_code = 1000 if await _forward(websocket, sub, call_id) else None
    except VoxdeskError as exc:
        log.warning("call event stream failed", call_id=call_id, error=exc.code)
    finally:
        await sub.aclose()
    if close_code is not None:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(close_code)


async def _forward(websocket: WebSocket, sub: Subscription, call_id: str) -> bool:
    """Send the call's events until its CallEnded (returns True) or the client disconnects (False)."""

    async def pump() -> bool:
        async for event in sub:
            if getattr(event, "call_id", None) != call_id:
                continue
            await websocket.send_text(event.model_dump_json())
            if isinstance(event, CallEnded):
                return True
        return False

    async def until_disconnect() -> bool:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass  # the stream is one-way; anything the client sends is ignored
        return False

    tasks = {asyncio.create_task(pump()), asyncio.create_task(until_disconnect())}
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    first = done.pop()
    error = first.exception()
    if isinstance(error, WebSocketDisconnect | RuntimeError):
        return False  # the client went away while an event was being sent
    if error is not None:
        raise error
    return first.result()
