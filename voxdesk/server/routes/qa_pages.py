"""QA pages: the flagged-call queue (``/qa``), the review page of one call (``/qa/calls/{id}``) and analytics with
server-rendered SVG charts (``/qa/analytics``).

Server-rendered (Jinja); the call page's script (``/static/qa.js``) plays the recording in sync with the transcript
and posts reviewers' decisions to the QA API (:mod:`voxdesk.server.routes.qa`) with the page's CSRF token.
``?lang=zh|en`` picks the UI language (remembered in a cookie). Roles as in the API: readers see everything,
only reviewers get the buttons. Store calls run in worker threads.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from qa.models import SEVERITIES
from qa.review import Period, QueueFilters, period_start
from qa.rules_config import RULE_IDS
from voxdesk.auth.roles import QA_READERS, QA_REVIEWERS, allowed
from voxdesk.auth.service import Principal
from voxdesk.container import Container
from voxdesk.server.charts import bar_chart, line_chart, stacked_bar_chart
from voxdesk.server.deps import ContainerDep, client_ip, require
from voxdesk.server.i18n import LANG_COOKIE, pick_lang, table
from voxdesk.server.qa_views import detail_json, load_detail, masks_pii
from voxdesk.server.routes.pages import render_translated
from voxdesk.server.routes.qa import REPORTS, run_report, window

router = APIRouter(include_in_schema=False)
Reader = Annotated[Principal, require(*QA_READERS)]
PAGE_SIZE = 50
TOP_SERIES = 6
"""Reasons (or rules) drawn as their own series; the rest are summed as "other"."""


def _page(request: Request, principal: Principal, name: str, lang_query: str | None, **ctx: Any) -> Response:
    return render_translated(request, name, principal, lang_query, **ctx)


def _day(value: str | None) -> datetime | None:
    try:
        return datetime.combine(date.fromisoformat(value or ""), datetime.min.time(), UTC)
    except ValueError:
        return None


def queue_filters(params: Mapping[str, str]) -> tuple[QueueFilters, dict[str, str]]:
    """The queue filters of the page's form (lenient: a value that does not parse is ignored) and the form's
    values to show again. ``date_to`` is inclusive on the page (the whole day)."""
    form = {k: params.get(k, "").strip()[:100] for k in FORM_FIELDS}
    form["flagged"] = form["flagged"] or "1"
    form["review_status"] = params.get("review_status", "open")
    try:
        score_below: float | None = float(form["score_below"]) if form["score_below"] else None
    except ValueError:
        score_below = None
    to_day = _day(form["date_to"])
    offset = int(params["offset"]) if params.get("offset", "").isdigit() else 0
    filters = QueueFilters(
        flagged_only=form["flagged"] != "0",
        status="done",
        review_status=form["review_status"] if form["review_status"] in ("open", "reviewed") else None,
        agent_id=form["agent_id"] or None,
        team=form["team"] or None,
        rule_id=form["rule_id"] if form["rule_id"] in RULE_IDS else None,
        min_severity=next((s for s in SEVERITIES if s == form["min_severity"]), None),
        score_below=score_below if score_below is not None and 0 <= score_below <= 100 else None,
        date_from=_day(form["date_from"]),
        date_to=to_day + timedelta(days=1) if to_day else None,
        reason=form["reason"] or None,
        text=form["q"] or None,
        sort="lowest_score" if form["sort"] == "lowest_score" else "newest",
        offset=offset,
        limit=PAGE_SIZE,
    )
    return filters, form


FORM_FIELDS = (
    "flagged",
    "review_status",
    "agent_id",
    "team",
    "rule_id",
    "min_severity",
    "score_below",
    "date_from",
    "date_to",
    "reason",
    "q",
    "sort",
)


@router.get("/qa", response_class=HTMLResponse)
async def qa_queue_page(
    request: Request,
    principal: Reader,
    container: ContainerDep,
    lang: Annotated[str | None, Query(max_length=2)] = None,
) -> Response:
    """The review queue with its filter form and paging."""
    filters, form = queue_filters(request.query_params)
    page = await run_in_threadpool(container.qa_review.queue, filters)

    def link(offset: int) -> str:
        return "/qa?" + urlencode({**form, "offset": max(0, offset)})

    return _page(
        request,
        principal,
        "qa_queue.html",
        lang,
        page=page,
        form=form,
        rules=RULE_IDS,
        severities=SEVERITIES,
        prev_link=link(page.offset - page.limit) if page.offset > 0 else None,
        next_link=link(page.offset + page.limit) if page.offset + page.limit < page.total else None,
    )


@router.get("/qa/calls/{call_id}", response_class=HTMLResponse)
async def qa_call_page(
    call_id: str,
    request: Request,
    principal: Reader,
    container: ContainerDep,
    lang: Annotated[str | None, Query(max_length=2)] = None,
) -> Response:
    """One call: player, transcript synced to it, findings with decisions, score items, review form. Audited."""
    detail, score = await run_in_threadpool(load_detail, container, call_id)
    await run_in_threadpool(container.auth.audit, principal, "qa.read", "call", call_id, client=client_ip(request))
    data = detail_json(detail, score, mask=masks_pii(principal))
    can_review = allowed(principal.roles, QA_REVIEWERS)
    lang_used = pick_lang(lang, request.cookies.get(LANG_COOKIE))
    config = {"call_id": call_id, "can_review": can_review, "t": table(lang_used), "lang": lang_used}
    return _page(
        request,
        principal,
        "qa_call.html",
        lang,
        d=data,
        can_review=can_review,
        rules=RULE_IDS,
        severities=SEVERITIES,
        config_json=json.dumps(config, ensure_ascii=False).replace("</", "<\\/"),
    )


def periods(period: Period, since: datetime, until: datetime) -> list[date]:
    """Every day or week (its Monday) that ``[since, until)`` touches, oldest first."""
    out: list[date] = []
    day = period_start(since, period)
    step = timedelta(days=1 if period == "day" else 7)
    while day < until.date() or (day == until.date() and until.time() != datetime.min.time()):
        out.append(day)
        day += step
    return out


def build_charts(
    reports: dict[str, list[Any]], period: Period, since: datetime, until: datetime, t: dict[str, str]
) -> dict[str, Any]:
    """The analytics page's SVG charts from the report rows (see :func:`run_report`)."""
    days = periods(period, since, until)
    x = [d.strftime("%m-%d") for d in days]
    index = {d: i for i, d in enumerate(days)}
    empty = t["qa.no_data"]

    totals: Counter[str] = Counter()
    titles: dict[str, str] = {}
    for r in reports["reasons"]:
        totals[r.reason] += r.calls
        titles[r.reason] = r.title
    top = [k for k, _ in totals.most_common(TOP_SERIES)]
    series: dict[str, list[float]] = {titles[k]: [0.0] * len(days) for k in top}
    other = [0.0] * len(days)
    for r in reports["reasons"]:
        target = series[titles[r.reason]] if r.reason in top else other
        if r.period_start in index:
            target[index[r.period_start]] += r.calls
    if any(other):
        series[t["qa.other"]] = other

    trend = {r.period_start: r for r in reports["trends"]}
    calls = [float(trend[d].calls) if d in trend else 0.0 for d in days]
    mean = [trend[d].mean_score if d in trend else None for d in days]
    flagged = [round(trend[d].flagged_share * 100, 1) if d in trend else None for d in days]

    rules = Counter[str]()
    for a in reports["agreement"]:
        rules[a.rule_id] += a.confirmed + a.rejected + a.added
    agreement: dict[str, list[float | None]] = {rule: [None] * len(days) for rule, _ in rules.most_common(8)}
    for a in reports["agreement"]:
        if a.rule_id in agreement and a.period_start in index:
            agreement[a.rule_id][index[a.period_start]] = a.agreement

    def scores(rows: list[Any]) -> list[tuple[str, float]]:
        return [(g.key, g.mean_score) for g in rows if g.mean_score is not None][:15]

    def complaints(group: str) -> list[tuple[str, float]]:
        return [(c.title, float(c.complaints)) for c in reports["complaints"] if c.group == group][:12]

    return {
        "reasons": stacked_bar_chart(x, series, name="reasons", title=t["qa.chart.reasons"], empty_text=empty),
        "calls": line_chart(x, {t["qa.chart.calls"]: calls}, name="calls", title=t["qa.chart.calls"], empty_text=empty),
        "quality": line_chart(
            x,
            {t["qa.chart.mean_score"]: mean, t["qa.chart.flagged_pct"]: flagged},
            name="quality",
            title=t["qa.chart.quality"],
            y_max=100,
            empty_text=empty,
        ),
        "agents": bar_chart(
            scores(reports["agents"]), name="agents", title=t["qa.chart.agents"], max_value=100, empty_text=empty
        ),
        "teams": bar_chart(
            scores(reports["teams"]), name="teams", title=t["qa.chart.teams"], max_value=100, empty_text=empty
        ),
        "complaints": bar_chart(
            complaints("phrase"), name="complaints", title=t["qa.chart.complaints"], empty_text=empty
        ),
        "complaint_reasons": bar_chart(
            complaints("reason"), name="complaint_reasons", title=t["qa.chart.complaint_reasons"], empty_text=empty
        ),
        "topics": bar_chart(
            [(c.label, float(c.size)) for c in reports["topics"]],
            name="topics",
            title=t["qa.chart.topics"],
            empty_text=empty,
        ),
        "agreement": line_chart(
            x, agreement, name="agreement", title=t["qa.chart.agreement"], y_max=1, empty_text=empty
        ),
    }


def _all_reports(
    container: Container, period: Period, since: datetime, until: datetime, lang: str
) -> dict[str, list[Any]]:
    return {name: run_report(container, name, period, since, until, lang)[0] for name in REPORTS}


@router.get("/qa/analytics", response_class=HTMLResponse)
async def qa_analytics_page(
    request: Request,
    principal: Reader,
    container: ContainerDep,
    period: str = "day",
    since: Annotated[str | None, Query(max_length=10)] = None,
    until: Annotated[str | None, Query(max_length=10)] = None,
    lang: Annotated[str | None, Query(max_length=2)] = None,
) -> Response:
    """Charts of reasons, trends, agents, teams, complaints, topics and agreement, with CSV links. ``until`` is
    inclusive on the page (the whole day)."""
    chosen: Period = "week" if period == "week" else "day"
    until_day = _day(until)
    start, end = window(
        chosen, _day(since), until_day + timedelta(days=1) if until_day else None, container.clock.now()
    )
    ui = pick_lang(lang, request.cookies.get(LANG_COOKIE))
    reports = await run_in_threadpool(_all_reports, container, chosen, start, end, ui)
    t = table(ui)
    query = {"period": chosen, "since": start.isoformat(), "until": end.isoformat(), "lang": ui, "format": "csv"}
    csv_links = {name: f"/api/qa/analytics/{name}?" + urlencode(query) for name in REPORTS}
    return _page(
        request,
        principal,
        "qa_analytics.html",
        lang,
        period=chosen,
        since=start.date().isoformat(),
        until=(end - timedelta(days=1)).date().isoformat(),
        charts=build_charts(reports, chosen, start, end, t),
        reports=reports,
        csv_links=csv_links,
    )
