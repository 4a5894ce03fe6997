"""Who is calling: FastAPI dependencies that authenticate every workspace and API request.

Two ways in:
- a browser session: cookie ``deskbot_session`` (HttpOnly, SameSite=Lax, Secure when
  ``web.secure_cookies``), looked up server-side. Unsafe methods (POST/PUT/PATCH/DELETE)
  must echo the session's CSRF token in ``X-CSRF-Token``: SameSite alone leaves older
  browsers and same-site subdomains open, and the token costs nothing.
- ``Authorization: Bearer <api token>`` for integrations (``deskbot agents token``). Such a
  request carries no ambient credential a third-party page could borrow, so no CSRF check.

Use the typed aliases in route signatures: ``agent: CurrentAgent``, ``admin: AdminAgent``,
``principal: CurrentPrincipal``; HTML pages use ``agent: PageAgent`` (unauthenticated
visitors are redirected to the login page instead of getting a 401).
"""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import RedirectResponse
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import Response

from bot.app import App
from bot.config import Settings
from desk.accounts import Accounts, LoginPolicy, Principal
from storage.models import Agent

SESSION_COOKIE = "deskbot_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOGIN_PATH = "/desk/login"

# auto_error=False: the dependency below decides (and answers JSON); these only document
# the two schemes in the OpenAPI schema.
bearer_scheme = HTTPBearer(auto_error=False, description="An API token from `deskbot agents token EMAIL`")
session_scheme = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="Browser session; unsafe methods also need X-CSRF-Token"
)


class LoginRequired(Exception):
    """An HTML page was asked for without a session: redirect to the login page."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def login_policy(settings: Settings) -> LoginPolicy:
    web = settings.web
    return LoginPolicy(
        session_lifetime=timedelta(hours=web.session_hours),
        idle_timeout=timedelta(minutes=web.session_idle_minutes),
        max_failures=web.login_max_failures,
        ip_max_failures=web.login_ip_max_failures,
        lockout=timedelta(minutes=web.login_lockout_minutes),
        failure_delay=web.login_failure_delay_seconds,
    )


def install_auth(api: FastAPI, app: App) -> Accounts:
    """Attach the accounts service to the web app and redirect page requests without a login."""
    accounts = Accounts(app.tickets, login_policy(app.settings), clock=app.services.clock)
    api.state.accounts = accounts

    async def to_login(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        return RedirectResponse(f"{LOGIN_PATH}?next={quote(exc.next_url, safe='/')}", status_code=303)

    api.add_exception_handler(LoginRequired, to_login)
    return accounts


def accounts_of(request: Request) -> Accounts:
    accounts: Accounts = request.app.state.accounts
    return accounts


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _unauthorised(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def csrf_matches(expected: str | None, given: str | None) -> bool:
    return bool(expected and given) and hmac.compare_digest(str(expected).encode(), str(given).encode())


async def _authenticate(request: Request, bearer: HTTPAuthorizationCredentials | None) -> Principal | None:
    """The caller, or None without credentials; 401 for credentials that are wrong."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    accounts = accounts_of(request)
    principal: Principal | None
    if "authorization" in request.headers:
        if bearer is None:
            raise _unauthorised("the Authorization header must be 'Bearer <api token>'")
        principal = await accounts.token_principal(bearer.credentials)
        if principal is None:
            raise _unauthorised("invalid or revoked API token")
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            return None
        principal = await accounts.session_principal(cookie)
        if principal is None:
            return None
        if request.method not in SAFE_METHODS and not csrf_matches(
            principal.csrf_token, request.headers.get(CSRF_HEADER)
        ):
            raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header")
    request.state.principal = principal
    return principal


async def current_principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    _cookie: Annotated[str | None, Depends(session_scheme)],
) -> Principal:
    """The authenticated caller of an API route; 401 JSON without a valid session or token."""
    principal = await _authenticate(request, bearer)
    if principal is None:
        raise _unauthorised("log in or send 'Authorization: Bearer <api token>'")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def current_agent(principal: CurrentPrincipal) -> Agent:
    return principal.agent


CurrentAgent = Annotated[Agent, Depends(current_agent)]


async def require_admin(principal: CurrentPrincipal) -> Agent:
    """The caller, who must be an admin (403 otherwise)."""
    if not principal.is_admin:
        raise HTTPException(403, "only an admin may do this")
    return principal.agent


AdminAgent = Annotated[Agent, Depends(require_admin)]


async def page_principal(
    request: Request, bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
) -> Principal:
    """The logged-in agent of an HTML page; a visitor without a session goes to the login page."""
    principal = await _authenticate(request, bearer)
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return principal


PagePrincipal = Annotated[Principal, Depends(page_principal)]


async def page_agent(principal: PagePrincipal) -> Agent:
    return principal.agent


PageAgent = Annotated[Agent, Depends(page_agent)]


async def page_admin(principal: PagePrincipal) -> Agent:
    if not principal.is_admin:
        raise HTTPException(403, "only an admin may open this page")
    return principal.agent


PageAdmin = Annotated[Agent, Depends(page_admin)]


def safe_next(url: str | None, default: str = "/desk") -> str:
    """Only a local path may follow a login (no ``//evil.example`` or ``https://…``)."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url or any(ord(c) < 0x20 for c in url):
        return default
    return url
