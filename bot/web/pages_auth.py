"""The login and logout pages of the agents' workspace.

The login form has no session yet to tie a CSRF token to, so it uses a double-submit
token: a random value in an ``HttpOnly``, ``SameSite=Strict`` cookie scoped to the login
path and the same value in a hidden field. A cross-site page can make a browser post the
form but can neither read nor set that cookie, so it cannot log a victim into the
attacker's account (login CSRF). Logout posts the session's own CSRF token.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData
from starlette.responses import Response

from bot.app import App
from bot.web.auth import CSRF_HEADER, LOGIN_PATH, SESSION_COOKIE, accounts_of, client_ip, csrf_matches, safe_next
from desk.accounts import LoginFailed, LoginLocked, PasswordCheckBusy

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES = Jinja2Templates(directory=WEB_DIR / "templates")
LOGIN_CSRF_COOKIE = "deskbot_login_csrf"
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)

BUSY_PAGE = (
    '<!doctype html><meta charset="utf-8"><title>Busy</title>'
    f'<p>Too many logins at once. Please <a href="{LOGIN_PATH}">try again</a> in a few seconds.</p>'
)


def _form_text(form: FormData, name: str, max_chars: int) -> str:
    value = form.get(name)
    return value[:max_chars] if isinstance(value, str) else ""


def build_router(app: App) -> APIRouter:
    settings = app.settings
    secure = settings.web.secure_cookies
    router = APIRouter(tags=["login"], include_in_schema=False)

    def render(
        request: Request, status: int, *, csrf: str, next_url: str, error: str = "", notice: str = "", email: str = ""
    ) -> Response:
        response = TEMPLATES.TemplateResponse(
            request,
            "desk/login.html",
            {
                "shop_name": settings.shop.name,
                "csrf_token": csrf,
                "next_url": next_url,
                "error": error,
                "notice": notice,
                "email": email,
            },
            status_code=status,
            headers={"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-store"},
        )
        response.set_cookie(
            LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="strict", secure=secure, path=LOGIN_PATH, max_age=3600
        )
        return response

    def login_csrf(request: Request) -> str:
        existing = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        return existing if 20 <= len(existing) <= 100 and existing.isascii() else secrets.token_urlsafe(32)

    @router.get(LOGIN_PATH, response_class=HTMLResponse)
    async def login_page(request: Request, next: str | None = None) -> Response:  # noqa: A002 - the query name
        next_url = safe_next(next)
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie and await accounts_of(request).session_principal(cookie) is not None:
            return RedirectResponse(next_url, status_code=303)
        notice = "You have been logged out." if request.query_params.get("logged_out") else ""
        return render(request, 200, csrf=login_csrf(request), next_url=next_url, notice=notice)

    @router.post(LOGIN_PATH, response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        if accounts_of(request).pool.full:
            # A login flood: refused before parsing or rendering anything, so the flood costs
            # the event loop (and the customers' chat) as little as possible.
            return HTMLResponse(
                BUSY_PAGE,
                status_code=503,
                headers={"Retry-After": "2", "Cache-Control": "no-store", "Content-Security-Policy": PAGE_CSP},
            )
        form = await request.form()
        next_url = safe_next(_form_text(form, "next", 2000))
        email = _form_text(form, "email", 320).strip()
        password = _form_text(form, "password", 1024)
        cookie_token = request.cookies.get(LOGIN_CSRF_COOKIE)
        if not csrf_matches(cookie_token, _form_text(form, "csrf_token", 200)):
            error = "The login form expired. Please try again."
            return render(request, 403, csrf=secrets.token_urlsafe(32), next_url=next_url, error=error, email=email)
        csrf = login_csrf(request)
        if not email or not password:
            return render(request, 422, csrf=csrf, next_url=next_url, error="Enter your e-mail and password.",
                          email=email)
        try:
            session = await accounts_of(request).login(
                email, password, client_ip(request), request.headers.get("user-agent")
            )
        except LoginLocked as exc:
            response = render(request, 429, csrf=csrf, next_url=next_url, error=str(exc).capitalize() + ".",
                              email=email)
            response.headers["Retry-After"] = str(int(exc.retry_after) + 1)
            return response
        except PasswordCheckBusy as exc:
            # A login flood: refused at once rather than queued behind it (see desk/accounts.py).
            response = render(request, 503, csrf=csrf, next_url=next_url,
                              error="Too many logins at once. Please try again in a few seconds.", email=email)
            response.headers["Retry-After"] = str(max(1, round(exc.retry_after)))
            return response
        except LoginFailed:
            return render(request, 401, csrf=csrf, next_url=next_url, error="Wrong e-mail or password.", email=email)
        response = RedirectResponse(next_url, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            session.token,
            max_age=int(settings.web.session_hours * 3600),
            httponly=True,
            samesite="lax",
            secure=secure,
            path="/",
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=LOGIN_PATH)
        return response

    @router.post("/desk/logout")
    async def logout(request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        accounts = accounts_of(request)
        principal = await accounts.session_principal(token) if token else None
        if principal is not None:
            form = await request.form()
            given = request.headers.get(CSRF_HEADER) or _form_text(form, "csrf_token", 200)
            if not csrf_matches(principal.csrf_token, given):
                return Response("missing or wrong CSRF token", status_code=403, media_type="text/plain")
            assert token is not None
            await accounts.logout(token)
        response = RedirectResponse(f"{LOGIN_PATH}?logged_out=1", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=secure)
        return response

    @router.get("/desk/login.css")
    async def login_css() -> FileResponse:
        return FileResponse(WEB_DIR / "static" / "login.css", media_type="text/css")

    return router
