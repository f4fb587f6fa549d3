"""The assist panel's websocket ``/api/v1/assist/ws``: one call's live events, or every call's for supervisors.

Query parameters: ``call_id=…`` follows that call; ``mode=auto`` (the agent panel's default) waits for a call on
the user's softphone (their SIP user: a live one at connect time, or the next ``LegConnected`` of an agent leg
with that SIP user) and follows it, then waits for the next; ``mode=supervise`` (supervisors) streams the call
list's events of every call: starts, ends, agent legs, intents, sentiment and alerts.

Messages are JSON objects: ``{"type": "attached", "call_id"}`` (fetch the snapshot now), ``{"type": "event",
"event": {...}}`` (``core.events`` JSON, filtered and masked per role by
:func:`voxdesk.server.routes.assist.visible_to`), ``{"type": "detached", "call_id"}`` after the call's end and
``{"type": "waiting"}``. The subscription is live before ``attached`` is sent, so nothing after it is missed;
the client de-duplicates against the snapshot by ids. Close codes as in :mod:`voxdesk.server.ws_auth`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Coroutine
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from core.bus.base import EventBus, Subscription
from core.errors import NotFoundError, VoxdeskError
from core.events import CallEnded, Event, LegConnected, NavigatorHandoff
from core.logging import get_logger
from telephony.lines import uri_user
from voxdesk.auth.roles import ASSIST_USERS, SUPERVISORS, allowed
from voxdesk.auth.service import Principal
from voxdesk.container import Container
from voxdesk.server.routes.assist import assist_store, visible_to
from voxdesk.server.ws_auth import (
    CLOSE_FORBIDDEN,
    CLOSE_INTERNAL,
    CLOSE_TRY_AGAIN,
    authorize_websocket,
    websocket_client,
)

log = get_logger(__name__)
router = APIRouter()

PANEL_KINDS: tuple[str, ...] = ("call.", "speech.", "nlu.", "assist.", "navigator.handoff")
SUPERVISE_KINDS: tuple[str, ...] = ("call.started", "call.ended", "call.leg", "nlu.intent", "nlu.sentiment", "assist.")
QUEUE_SIZE = 1000
"""Events buffered per websocket before the oldest is dropped (a stalled browser never stalls the bus)."""


@router.websocket("/api/v1/assist/ws")
async def assist_ws(websocket: WebSocket) -> None:
    """See the module docstring."""
    container: Container = websocket.app.state.container
    mode = websocket.query_params.get("mode") or ("call" if websocket.query_params.get("call_id") else "auto")
    principal, refusal = await authorize_websocket(websocket, container, ASSIST_USERS)
    if principal is not None and mode == "supervise" and not allowed(principal.roles, SUPERVISORS):
        principal, refusal = None, CLOSE_FORBIDDEN
    if principal is None or mode not in ("call", "auto", "supervise"):
        await websocket.accept()
        await websocket.close(refusal or CLOSE_FORBIDDEN)
        return
    if mode == "call" and not await _may_follow(container, principal, websocket.query_params.get("call_id", "")):
        await websocket.accept()
        await websocket.close(CLOSE_FORBIDDEN)
        return
    bus: EventBus | None = websocket.app.state.bus
    if bus is None:
        await websocket.accept()
        await websocket.close(CLOSE_TRY_AGAIN, "event bus unavailable")
        return
    sub = bus.subscribe(*(SUPERVISE_KINDS if mode == "supervise" else PANEL_KINDS), queue_size=QUEUE_SIZE)
    try:
        await sub.wait_ready()
        await websocket.accept()
        await run_in_threadpool(
            container.auth.audit,
            principal,
            f"assist.ws.{mode}",
            "call",
            websocket.query_params.get("call_id"),
            client=websocket_client(websocket),
        )
        stream = _Stream(websocket, sub, container, principal)
        if mode == "supervise":
            await _until_disconnect(websocket, stream.supervise())
        elif mode == "call":
            await _until_disconnect(websocket, stream.follow(websocket.query_params.get("call_id", "")))
        else:
            await _until_disconnect(websocket, stream.auto())
    except VoxdeskError as exc:
        log.warning("assist stream failed", error=exc.code)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(CLOSE_INTERNAL)
    finally:
        await sub.aclose()


_MAX_HANDOFFS = 32
"""Handoffs of other calls kept while waiting (a busy navigator hands over many calls to many agents)."""


async def _may_follow(container: Container, principal: Principal, call_id: str) -> bool:
    """Supervisors follow any call; an agent only a known call that is theirs or not yet taken (as the snapshot)."""
    if allowed(principal.roles, SUPERVISORS):
        return True
    try:
        call = await run_in_threadpool(assist_store(container).get_call, call_id)
    except NotFoundError:
        return False
    return not call.agent_user or call.agent_user == principal.sip_user


class _Stream:
    def __init__(self, websocket: WebSocket, sub: Subscription, container: Container, principal: Principal) -> None:
        self.websocket = websocket
        self.sub = sub
        self.container = container
        self.principal = principal
        self._handoffs: dict[str, NavigatorHandoff] = {}
        """Handoffs seen while waiting for a call: the navigator hands over before the agent leg connects, and the
        agent process may not have stored the handoff yet when the panel fetches its snapshot."""

    async def send(self, message: dict[str, object]) -> None:
        await self.websocket.send_text(json.dumps(message, ensure_ascii=False))

    async def send_event(self, event: Event) -> None:
        shown = visible_to(self.principal.roles, event)  # type: ignore[arg-type]
        if shown is not None:
            await self.websocket.send_text('{"type":"event","event":' + shown.model_dump_json() + "}")

    async def follow(self, call_id: str) -> None:
        """Attach to ``call_id`` and forward its events until it ends."""
        await self.send({"type": "attached", "call_id": call_id})
        handoff = self._handoffs.pop(call_id, None)
        if handoff is not None:
            await self.send_event(handoff)
        async for event in self.sub:
            if getattr(event, "call_id", None) != call_id:
                continue
            await self.send_event(event)
            if isinstance(event, CallEnded):
                await self.send({"type": "detached", "call_id": call_id})
                return

    async def auto(self) -> None:
        """Follow every call that lands on the user's softphone, one after the other."""
        sip_user = self.principal.sip_user
        store = assist_store(self.container)
        live = await run_in_threadpool(store.live, agent_user=sip_user) if sip_user else []
        if live:
            await self.follow(live[0].call_id)
        while True:
            await self.send({"type": "waiting"})
            call_id = await self._next_call(sip_user)
            await self.follow(call_id)

    async def _next_call(self, sip_user: str | None) -> str:
        async for event in self.sub:
            if isinstance(event, NavigatorHandoff):
                self._handoffs[event.call_id] = event
                while len(self._handoffs) > _MAX_HANDOFFS:  # oldest first
                    self._handoffs.pop(next(iter(self._handoffs)))
            if (
                sip_user
                and isinstance(event, LegConnected)
                and event.leg == "agent"
                and uri_user(event.remote_uri) == sip_user
            ):
                return event.call_id
        raise asyncio.CancelledError  # the subscription ended

    async def supervise(self) -> None:
        """Forward every call's list events."""
        async for event in self.sub:
            await self.send_event(event)


async def _until_disconnect(websocket: WebSocket, work: Coroutine[Any, Any, None]) -> None:
    """Run ``work`` (a coroutine) until it finishes or the client leaves; re-raise its errors."""

    async def listen() -> None:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass  # one-way stream: anything the client sends is ignored

    tasks = {asyncio.ensure_future(work), asyncio.ensure_future(listen())}
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    error = done.pop().exception()
    if error is not None and not isinstance(error, WebSocketDisconnect | RuntimeError | asyncio.CancelledError):
        raise error
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close(1000)
