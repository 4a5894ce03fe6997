"""The agents' workspace pages: queue, ticket, missed questions, agents (admin) under ``/desk``.

The pages are thin server-rendered shells (layout, navigation, the agent, the CSRF token in
``<meta name="csrf-token">``); ``/desk/static/desk.js`` fills them from ``/api/v1`` and keeps
them live over ``/api/v1/events``. One API serves the dashboard and integrations alike, so
anything an agent can do here a script can do with a token.

Every page answers with a strict Content-Security-Policy: scripts and styles only from this
server, nothing inline. Together with the scripts' rule of inserting customer text only as
text (never as HTML), an injected ``<script>`` in a message stays a string on screen.

Other page owners (the analytics page) render through :func:`render_desk_page`, so every
workspace page has the same layout, headers and asset versions.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from bot.app import App
from bot.web.auth import PagePrincipal
from desk.accounts import Principal

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES = Jinja2Templates(directory=WEB_DIR / "templates")
DESK_STATIC = WEB_DIR / "static" / "desk"
STATIC_URL = "/desk/static"
TICKET_NUMBER = re.compile(r"T-\d{1,18}")

DESK_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def asset_versions(directory: Path = DESK_STATIC) -> dict[str, str]:
    """A content hash per asset (``?v=``), so a deploy never mixes a new page with an old script."""
    versions: dict[str, str] = {}
    for path in sorted(directory.glob("*")):
        if path.is_file():
            versions[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    return versions


def render_desk_page(
    request: Request,
    principal: Principal,
    template: str,
    *,
    title: str,
    nav: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    """A workspace page: ``template`` extends ``desk/base.html``.

    ``nav`` names the active navigation entry (``queue``, ``analytics``, ``agents``); the
    page's script reads ``data-page`` (the same name unless ``context`` sets ``page``).
    """
    app: App = request.app.state.deskbot
    versions: dict[str, str] = getattr(request.app.state, "desk_asset_versions", None) or asset_versions()
    agent = principal.agent
    values: dict[str, Any] = {
        "title": title,
        "nav": nav,
        "page": nav,
        "shop_name": app.settings.shop.name,
        "agent": agent,
        "is_admin": principal.is_admin,
        "csrf_token": principal.csrf_token or "",
        "static_url": STATIC_URL,
        "versions": versions,
        **(context or {}),
    }
    return TEMPLATES.TemplateResponse(
        request,
        template,
        values,
        status_code=status_code,
        headers={"Content-Security-Policy": DESK_CSP, "Cache-Control": "no-store"},
    )


def build_router() -> APIRouter:
    router = APIRouter(prefix="/desk", include_in_schema=False)

    @router.get("", response_class=HTMLResponse)
    async def queue(request: Request, principal: PagePrincipal) -> Response:
        return render_desk_page(request, principal, "desk/queue.html", title="Queue", nav="queue")

    @router.get("/tickets/{number}", response_class=HTMLResponse)
    async def ticket(request: Request, number: str, principal: PagePrincipal) -> Response:
        number = number.upper()
        if not TICKET_NUMBER.fullmatch(number):
            raise HTTPException(404, "no such ticket")
        context = {"page": "ticket", "number": number}
        return render_desk_page(request, principal, "desk/ticket.html", title=number, nav="queue", context=context)

    @router.get("/agents", response_class=HTMLResponse)
    async def agents(request: Request, principal: PagePrincipal) -> Response:
        if not principal.is_admin:
            return render_desk_page(
                request,
                principal,
                "desk/forbidden.html",
                title="Agents",
                nav="agents",
                context={"page": "forbidden"},
                status_code=403,
            )
        return render_desk_page(request, principal, "desk/agents.html", title="Agents", nav="agents")

    @router.get("/missed", response_class=HTMLResponse)
    async def missed(request: Request, principal: PagePrincipal) -> Response:
        # Every agent sees what the bot missed; only admins get the buttons that teach it.
        return render_desk_page(request, principal, "desk/missed.html", title="Missed questions", nav="missed")

    return router


def install_pages(api: FastAPI) -> None:
    """The workspace pages and their static files (served even when the web chat is off)."""
    api.state.desk_asset_versions = asset_versions()
    api.mount(STATIC_URL, StaticFiles(directory=DESK_STATIC), name="desk-static")
    api.include_router(build_router())
