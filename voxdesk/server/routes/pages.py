"""Server-rendered pages: login, home, customers, users, audit, password."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from core.errors import AuthenticationError, VoxdeskError
from profiles.models import CONSENT_KINDS
from voxdesk.auth.roles import AUDIT_READERS, PROFILE_READERS, ROLES, USER_ADMINS, areas_for
from voxdesk.auth.service import Principal
from voxdesk.server.deps import SESSION_COOKIE, ContainerDep, PrincipalDep, client_ip, csrf_token, require
from voxdesk.server.i18n import LANG_COOKIE, UiLang, pick_lang, table

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))

TIERS = ("mass", "gold", "platinum", "diamond", "private")


def render(request: Request, name: str, principal: Principal | None, status: int = 200, **ctx: Any) -> Response:
    """Render template ``name`` with the user, their CSRF token and ``ctx`` (``lang`` defaults to ``zh``)."""
    token = request.cookies.get(SESSION_COOKIE)
    csrf = csrf_token(request.app.state.container, token) if token and principal else None
    context = {"user": principal, "csrf": csrf, "lang": "zh", **ctx}
    return templates.TemplateResponse(request, name, context, status_code=status)


def render_translated(
    request: Request,
    name: str,
    principal: Principal,
    lang_query: str | None,
    *,
    script: Callable[[UiLang, dict[str, str]], Mapping[str, object]] | None = None,
    **ctx: Any,
) -> Response:
    """Render ``name`` in the UI language (``?lang=zh|en``, remembered in a cookie; else the cookie; else Chinese)
    with that language's text table as ``t``. ``script(lang, t)`` builds what the page's script gets as JSON
    (``config_json``, safe inside a ``<script>`` element)."""
    lang = pick_lang(lang_query, request.cookies.get(LANG_COOKIE))
    text = table(lang)
    if script is not None:
        ctx["config_json"] = json.dumps(script(lang, text), ensure_ascii=False).replace("</", "<\\/")
    response = render(request, name, principal, lang=lang, t=text, **ctx)
    if lang_query in ("zh", "en"):
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/")
    return response


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths are followed after login."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", None, next=_safe_next(next))


@router.post("/login")
async def login_submit(
    request: Request,
    container: ContainerDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str, Form(max_length=512)] = "/",
) -> Response:
    try:
        principal = await run_in_threadpool(container.auth.authenticate, username, password)
    except AuthenticationError:
        return render(
            request,
            "login.html",
            None,
            status=401,
            error="Invalid username or password · 用户名或密码错误",
            next=_safe_next(next),
        )
    token = await run_in_threadpool(container.auth.create_session, principal)
    await run_in_threadpool(
        container.auth.audit, principal, "auth.login", "user", principal.username, client=client_ip(request)
    )
    target = "/password" if principal.must_change_password else _safe_next(next)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=container.settings.auth.session_ttl_s,
        httponly=True,
        samesite="lax",
        secure=container.settings.auth.cookie_secure,
        path="/",
    )
    return response


@router.post("/logout")
async def logout(request: Request, principal: PrincipalDep, container: ContainerDep) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await run_in_threadpool(container.auth.revoke, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, principal: PrincipalDep) -> Response:
    return render(request, "home.html", principal, areas=areas_for(principal.roles))


@router.get("/password", response_class=HTMLResponse)
async def password_page(request: Request, principal: PrincipalDep) -> Response:
    return render(request, "password.html", principal)


@router.post("/password")
async def password_submit(
    request: Request,
    principal: PrincipalDep,
    container: ContainerDep,
    current_password: Annotated[str, Form(max_length=256)],
    new_password: Annotated[str, Form(max_length=256)],
) -> Response:
    try:
        await run_in_threadpool(container.auth.authenticate, principal.username, current_password)
        await run_in_threadpool(container.auth.set_password, principal.username, new_password)
    except VoxdeskError as exc:
        return render(request, "password.html", principal, status=400, error=exc.message)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/customers", response_class=HTMLResponse)
async def customers_page(
    request: Request,
    principal: Annotated[Principal, require(*PROFILE_READERS)],
    container: ContainerDep,
    q: Annotated[str | None, Query(max_length=64)] = None,
    tier: str | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    page = await run_in_threadpool(
        lambda: container.profiles.search(text=q or None, tier=tier or None, offset=offset, limit=50)
    )
    await run_in_threadpool(
        container.auth.audit,
        principal,
        "profile.search",
        "customer",
        None,
        client=client_ip(request),
        data={"results": len(page.items)},
    )
    return render(request, "customers.html", principal, page=page, q=q, tier=tier, tiers=TIERS)


@router.get("/customers/{customer_id}", response_class=HTMLResponse)
async def customer_page(
    customer_id: str,
    request: Request,
    principal: Annotated[Principal, require(*PROFILE_READERS)],
    container: ContainerDep,
) -> Response:
    customer = await run_in_threadpool(container.profiles.get, customer_id)
    timeline = await run_in_threadpool(lambda: container.profiles.timeline(customer_id, limit=50))
    products = await run_in_threadpool(lambda: container.catalog.list(on_sale_only=False))
    await run_in_threadpool(
        container.auth.audit, principal, "profile.read", "customer", customer_id, client=client_ip(request)
    )
    names = {p.product_id: f"{p.name_zh} · {p.name_en}" for p in products}
    return render(
        request,
        "customer.html",
        principal,
        c=customer,
        timeline=timeline,
        product_names=names,
        consent_kinds=CONSENT_KINDS,
    )


@router.get("/users", response_class=HTMLResponse)
async def users_page(
    request: Request, principal: Annotated[Principal, require(*USER_ADMINS)], container: ContainerDep
) -> Response:
    users = await run_in_threadpool(container.auth.list_users)
    return render(request, "users.html", principal, users=users, roles=ROLES)


@router.post("/users")
async def users_submit(
    request: Request, principal: Annotated[Principal, require(*USER_ADMINS)], container: ContainerDep
) -> Response:
    form = await request.form()
    roles = [str(r) for r in form.getlist("roles")]
    try:
        created = await run_in_threadpool(
            lambda: container.auth.create_user(
                str(form.get("username", "")),
                str(form.get("password", "")),
                roles,
                display_name=str(form.get("display_name", "")),
                sip_user=str(form.get("sip_user", "")) or None,
            )
        )
    except VoxdeskError as exc:
        users = await run_in_threadpool(container.auth.list_users)
        return render(request, "users.html", principal, status=400, users=users, roles=ROLES, error=exc.message)
    await run_in_threadpool(
        container.auth.audit,
        principal,
        "user.create",
        "user",
        created.username,
        client=client_ip(request),
        data={"roles": list(created.roles)},
    )
    return RedirectResponse("/users", status_code=303)


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request, principal: Annotated[Principal, require(*AUDIT_READERS)], container: ContainerDep
) -> Response:
    entries = await run_in_threadpool(lambda: container.auth.audit_entries(limit=200))
    return render(request, "audit.html", principal, entries=entries)
