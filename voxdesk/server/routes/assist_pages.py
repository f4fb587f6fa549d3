"""Pages of the live assist room: the agent's panel (``/assist``) and the supervisor view (``/supervisor``).

Both are server-rendered shells; their scripts (``/static/assist.js``, ``/static/supervisor.js``) fill them from
the assist API and websocket. ``?lang=zh|en`` picks the UI language (remembered in a cookie).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from voxdesk.auth.roles import ASSIST_USERS, SUPERVISORS, allowed
from voxdesk.auth.service import Principal
from voxdesk.server.deps import require
from voxdesk.server.routes.pages import render_translated

router = APIRouter(include_in_schema=False)


def _page(request: Request, principal: Principal, name: str, lang_query: str | None, **config: object) -> Response:
    def script(lang: str, text: dict[str, str]) -> dict[str, object]:
        return {"lang": lang, "t": text, "sip_user": principal.sip_user, **config}

    return render_translated(request, name, principal, lang_query, script=script)


@router.get("/assist", response_class=HTMLResponse)
async def assist_page(
    request: Request,
    principal: Annotated[Principal, require(*ASSIST_USERS)],
    call_id: Annotated[str | None, Query(max_length=64)] = None,
    lang: Annotated[str | None, Query(max_length=2)] = None,
) -> Response:
    """The agent's panel: follows the call on the user's softphone, or ``call_id`` when given."""
    return _page(
        request,
        principal,
        "assist.html",
        lang,
        call_id=call_id,
        supervisor=allowed(principal.roles, SUPERVISORS),
    )


@router.get("/supervisor", response_class=HTMLResponse)
async def supervisor_page(
    request: Request,
    principal: Annotated[Principal, require(*SUPERVISORS)],
    lang: Annotated[str | None, Query(max_length=2)] = None,
) -> Response:
    """Every live assisted call with its agent, duration, customer sentiment and alerts."""
    return _page(request, principal, "supervisor.html", lang)
