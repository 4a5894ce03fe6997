"""The HTTP front: one FastAPI app assembled from one router per concern.

``create_web_app(app)`` receives an already-open :class:`~bot.app.App` (the caller owns
its lifecycle with ``async with build_app(...)``), so nothing here reads settings or opens
an engine at import time. ``serve(settings)`` is the whole thing for the CLI: open the
app, run uvicorn, close the app.

Written once, outermost first:

1. :class:`SecurityHeadersMiddleware` — ``nosniff``, no referrer, no framing, no camera or
   microphone (``Permissions-Policy``), HSTS when ``web.secure_cookies``, on every answer (the
   413 of the next layer included); ``Cache-Control: no-store`` on the JSON APIs.
2. :class:`BodyLimitMiddleware` — refuses a body over ``settings.web.max_body_bytes`` with a
   413 before any route parses it, whether or not the client declared its length.
3. The routes; their errors become JSON ``{"error": "..."}`` in :func:`install_error_handlers`.
   A store that cannot be reached (``StoreUnavailable``: the database or Redis is down) is a
   503 with ``Retry-After`` on every route, never a 500.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.app import App, build_app
from bot.config import Settings
from bot.leader import leading
from bot.web import analytics_page, health, metrics, pages_auth, rest_channel, webchat
from bot.web.api import build_api_routers
from bot.web.auth import install_auth
from bot.web.pages import install_pages
from common.errors import (
    ChannelError,
    ConfigError,
    Conflict,
    DeskbotError,
    NotFound,
    StorageError,
    StoreUnavailable,
    TicketNotFound,
)
from desk.accounts import InvalidAccount, LoginFailed, LoginLocked, PasswordCheckBusy
from knowledge.additions import InvalidAddition

log = logging.getLogger("deskbot.web")

STATIC_DIR = Path(__file__).parent / "static"
# When a 503 says to come back: about the time a database restart or a Redis failover takes.
UNAVAILABLE_RETRY_AFTER = 5

# Most specific first: the first class in an error's MRO found here picks the status.
DOMAIN_STATUS: dict[type[DeskbotError], int] = {
    TicketNotFound: 404,
    NotFound: 404,
    Conflict: 409,
    LoginFailed: 401,
    LoginLocked: 429,
    PasswordCheckBusy: 503,
    InvalidAccount: 422,
    InvalidAddition: 422,
    ChannelError: 502,
    StoreUnavailable: 503,
    StorageError: 503,
    ConfigError: 500,
    DeskbotError: 400,
}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The one error shape of the whole HTTP surface."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


# -- middleware -----------------------------------------------------------------------
class BodyLimitMiddleware:
    """Buffer the request body up to ``max_bytes``; answer 413 beyond that.

    A declared ``Content-Length`` over the limit is refused without reading; a chunked body
    is counted as it arrives, so a client that lies or omits the length is stopped too.
    Bodies are small JSON documents here, so buffering them costs nothing.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not (declared.strip().isascii() and declared.strip().isdigit()):  # "²" is no digit to int()
                await error_response(400, "invalid Content-Length header")(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left; nobody to answer
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                await self._too_large(scope, receive, send)
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        buffered: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return buffered
            return await receive()  # after the body: wait for the disconnect, as usual

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, f"request body is larger than {self.max_bytes} bytes")
        await response(scope, receive, send)


class SecurityHeadersMiddleware:
    """Headers every answer carries; the chat page adds its own Content-Security-Policy.

    ``Strict-Transport-Security`` only with ``secure_cookies`` (that setting says the shop
    serves deskbot over HTTPS; HSTS over plain HTTP would lock a test set-up out). JSON APIs
    get ``Cache-Control: no-store`` unless a route chose otherwise: their answers carry
    customers' messages and tickets, which no browser or proxy cache should keep.
    """

    HEADERS: tuple[tuple[bytes, bytes], ...] = (
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (
            b"permissions-policy",
            b"camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), bluetooth=(), "
            b"midi=(), magnetometer=(), gyroscope=(), accelerometer=(), display-capture=()",
        ),
    )
    HSTS: tuple[bytes, bytes] = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
    NO_STORE: tuple[bytes, bytes] = (b"cache-control", b"no-store")
    JSON_API_PREFIXES: tuple[str, ...] = ("/api", "/webhooks", "/chat/api")

    def __init__(self, app: ASGIApp, hsts: bool = False) -> None:
        self.app = app
        self.headers = (*self.HEADERS, self.HSTS) if hsts else self.HEADERS

    @classmethod
    def is_json_api(cls, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in cls.JSON_API_PREFIXES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = (*self.headers, self.NO_STORE) if self.is_json_api(scope.get("path", "")) else self.headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in headers if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- errors ---------------------------------------------------------------------------
def status_for(exc: DeskbotError) -> int:
    for cls in type(exc).__mro__:
        if cls in DOMAIN_STATUS:
            return DOMAIN_STATUS[cls]
    return 400


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_error_handlers(api: FastAPI) -> None:
    """Domain and HTTP errors → JSON ``{"error": ...}``; the single place that maps them."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail, ensure_ascii=False)
        return error_response(exc.status_code, detail, dict(exc.headers or {}))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(422, _describe_validation(exc))

    async def domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DeskbotError)
        status = status_for(exc)
        if status == 503:
            # An outage (the database or Redis down) or a full password pool: expected, said
            # in one line without a traceback, and the client is told when to try again.
            retry_after = getattr(exc, "retry_after", None) or UNAVAILABLE_RETRY_AFTER
            # Only StoreUnavailable's own text (store + driver error class): a StorageError's
            # text may quote SQL parameters, i.e. customers' messages.
            detail = str(exc) if isinstance(exc, StoreUnavailable) else ""
            where = {"path": request.url.path, "error": exc.__class__.__name__, "detail": detail}
            log.warning("service unavailable", extra=where)
            message = str(exc) if isinstance(exc, PasswordCheckBusy) else "the service is temporarily unavailable"
            return error_response(503, message, {"Retry-After": str(max(1, round(retry_after)))})
        if status >= 500:
            log.error("request failed", extra={"path": request.url.path, "error": exc.__class__.__name__})
            return error_response(status, "internal error")
        return error_response(status, str(exc))

    async def unexpected_error(request: Request, exc: Exception) -> Response:
        # Starlette's ServerErrorMiddleware calls this, then re-raises for the server to log.
        return error_response(500, "internal error")

    api.add_exception_handler(StarletteHTTPException, http_error)
    api.add_exception_handler(RequestValidationError, validation_error)
    api.add_exception_handler(DeskbotError, domain_error)
    api.add_exception_handler(Exception, unexpected_error)


def create_web_app(app: App) -> FastAPI:
    """The ASGI app over an open deskbot ``App``; the caller owns ``app``'s lifecycle."""
    settings = app.settings
    api = FastAPI(
        title=f"deskbot — {settings.shop.name}",
        summary="Customer-service chat and ticketing bot",
        version="0.1.0",
        # Swagger UI and ReDoc load from a CDN, which an offline shop cannot reach.
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    api.state.deskbot = app
    install_error_handlers(api)
    install_auth(api, app)
    api.include_router(health.build_router(app))
    if settings.web.metrics.enabled:
        api.include_router(metrics.build_router(app))
    for router in build_api_routers(app):
        api.include_router(router)
    api.include_router(pages_auth.build_router(app))
    api.include_router(analytics_page.build_router(app))
    install_pages(api)
    if settings.channels.rest.enabled:
        api.include_router(rest_channel.build_router(app))
    if settings.channels.web.enabled:
        api.include_router(webchat.build_router(app))
        api.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    if app.telegram is not None:
        from bot.web.telegram import build_router as telegram_router

        api.include_router(
            telegram_router(app.telegram, settings.secrets.get("telegram_webhook_secret"), app.intake)
        )
    # Middleware order, outermost first (add_middleware puts each new one outside).
    api.add_middleware(BodyLimitMiddleware, max_bytes=settings.web.max_body_bytes)
    api.add_middleware(SecurityHeadersMiddleware, hsts=settings.web.secure_cookies)
    return api


class GracefulServer(uvicorn.Server):
    """uvicorn, minus the re-raise of SIGTERM/SIGINT once HTTP has stopped.

    uvicorn re-raises a captured signal with the default handler when its own shutdown is
    done, which kills the process before ``serve``'s ``finally`` runs: the Telegram intake
    would never confirm what it stored, and sends in flight would be cut (and later marked
    failed) instead of finishing. Here the signal only asks to stop; deskbot then stops its
    channels and outbox within their grace periods and returns normally.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)
        if self._captured_signals:
            log.info("stopping on a signal", extra={"signal": signal.Signals(self._captured_signals[-1]).name})


def uvicorn_server(web_app: FastAPI, settings: Settings) -> uvicorn.Server:
    """A uvicorn server for ``web_app`` on ``settings.web.host:port``, deskbot's way."""
    config = uvicorn.Config(
        web_app,
        host=settings.web.host,
        port=settings.web.port,
        lifespan="off",  # the caller's ``async with build_app(...)`` is the lifecycle
        log_config=None,  # keep deskbot's logging setup
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    return GracefulServer(config)


async def serve(settings: Settings, **build_kwargs: Any) -> None:
    """Open the app, serve HTTP on ``settings.web.host:port`` until stopped, close the app.

    Extra keyword arguments go to :func:`~bot.app.build_app` (``classifier``, ``create_schema``).
    """
    async with build_app(settings, **build_kwargs) as app, AsyncExitStack() as queued:
        if settings.intake.queue == "redis":  # a front: `deskbot worker` processes run the turns
            from bot.intake import open_queued_intake

            app.intake = await queued.enter_async_context(open_queued_intake(settings))
        server = uvicorn_server(create_web_app(app), settings)
        if app.telegram is not None:
            # The webhook and the outbox here; the long poll and the agents' group's posting
            # in the elected leader only (bot/leader.py), as is retention.
            await app.telegram.start(singletons=False)
        log.info("serving", extra={"host": settings.web.host, "port": settings.web.port})
        try:
            async with leading(app):
                await server.serve()
        finally:
            if app.telegram is not None:
                await app.telegram.stop()
