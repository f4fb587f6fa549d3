"""Campaign pages: the campaign list with the form for a new one (``/campaigns``) and one campaign's dashboard
(``/campaigns/{id}``): progress, the outcome funnel, conversion, opt-outs, live channels, the day's abandon rate,
the latest attempts, start/pause/resume/stop, the dialing-list upload and the results export.

Server-rendered (Jinja) with SVG charts (:mod:`voxdesk.server.charts`); ``/static/campaigns.js`` posts the forms
and buttons to the campaign API with the page's CSRF token and refreshes the live figures every few seconds.
Roles as in the API (campaign managers). ``?lang=zh|en`` picks the UI language.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from telephony.dialer.campaigns import STATUS_MOVES
from telephony.dialer.policy import CAMPAIGN_KINDS
from telephony.dialer.report import CampaignReport
from voxdesk.auth.roles import CAMPAIGN_MANAGERS
from voxdesk.auth.service import Principal
from voxdesk.server.charts import bar_chart
from voxdesk.server.deps import ContainerDep, require
from voxdesk.server.i18n import LANG_COOKIE, pick_lang, table
from voxdesk.server.routes.pages import render_translated

router = APIRouter(include_in_schema=False)
Manager = Annotated[Principal, require(*CAMPAIGN_MANAGERS)]
_BUTTONS = ("running", "paused", "stopped", "completed")


def _page(request: Request, principal: Principal, name: str, lang_query: str | None, **ctx: Any) -> Response:
    config = ctx.pop("config", {})

    def script(lang: str, text: dict[str, str]) -> dict[str, object]:
        return {"t": {k: v for k, v in text.items() if k.startswith("camp.")}, **config}

    return render_translated(request, name, principal, lang_query, script=script, **ctx)


@router.get("/campaigns", response_class=HTMLResponse)
async def campaigns_page(
    request: Request,
    principal: Manager,
    container: ContainerDep,
    lang: Annotated[str | None, Query(max_length=2)] = None,
) -> Response:
    """Every campaign with its progress, and the new-campaign form."""
    campaigns = await run_in_threadpool(container.campaigns.find)
    now = container.clock.now()
    reports = {
        c.campaign_id: await run_in_threadpool(container.campaign_reports.report, c.campaign_id, now=now)
        for c in campaigns
    }
    return _page(request, principal, "campaigns.html", lang, campaigns=campaigns, reports=reports,
                 kinds=CAMPAIGN_KINDS)  # fmt: skip


def _charts(report: CampaignReport, t: dict[str, str]) -> dict[str, Any]:
    empty = t["camp.no_data"]
    funnel = [(t[f"camp.{name}"], float(n)) for name, n in report.funnel()]
    outcomes = sorted(report.outcomes.items(), key=lambda kv: -kv[1])
    states = sorted(report.states.items(), key=lambda kv: -kv[1])
    return {
        "funnel": bar_chart(funnel if report.contacts else [], name="funnel", title=t["camp.funnel"], empty_text=empty),
        "outcomes": bar_chart([(k, float(v)) for k, v in outcomes], name="outcomes", title=t["camp.outcomes"],
                              empty_text=empty),
        "states": bar_chart([(k, float(v)) for k, v in states], name="states", title=t["camp.states"],
                            empty_text=empty),
    }  # fmt: skip


@router.get("/campaigns/{campaign_id}", response_class=HTMLResponse)
async def campaign_page(
    campaign_id: str,
    request: Request,
    principal: Manager,
    container: ContainerDep,
    lang: Annotated[str | None, Query(max_length=2)] = None,
) -> Response:
    """One campaign's dashboard."""
    campaign = await run_in_threadpool(container.campaigns.get, campaign_id)
    report = await run_in_threadpool(container.campaign_reports.report, campaign_id, now=container.clock.now())
    recent = await run_in_threadpool(container.campaign_reports.recent, campaign_id)
    t = table(pick_lang(lang, request.cookies.get(LANG_COOKIE)))
    moves = [m for m in _BUTTONS if m in STATUS_MOVES[campaign.status]]
    return _page(
        request, principal, "campaign.html", lang, campaign=campaign, report=report, recent=recent, moves=moves,
        charts=_charts(report, t), config={"campaign_id": campaign_id, "status": campaign.status},
    )  # fmt: skip
