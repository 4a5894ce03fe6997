"""``GET /metrics``: this app's metrics in the Prometheus text format (``bot/metrics.py``).

Served when ``web.metrics.enabled``. With ``DESKBOT_SECRETS__METRICS_TOKEN`` set, a scrape must
send ``Authorization: Bearer <token>`` (Prometheus: ``authorization: {credentials: ...}`` in the
scrape config); without it the route is open, as Prometheus endpoints usually are: the figures
are counts, never a customer's words, but they do tell how busy the shop is, so set the token
when the port is reachable from outside.

A process that serves no other HTTP (a queued-intake worker) serves :func:`metrics_app` on a
port of its own, so its turns and sends reach Prometheus too.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import Response

from bot.app import App
from bot.metrics import CONTENT_TYPE


def build_router(app: App) -> APIRouter:
    router = APIRouter(tags=["operations"])
    token = app.settings.secrets.get("metrics_token")
    expected = token.get_secret_value().encode() if token is not None else None

    @router.get("/metrics", summary="Prometheus metrics (text format)", response_class=Response)
    async def metrics(request: Request) -> Response:
        if expected is not None:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
                raise HTTPException(
                    401,
                    "a valid 'Authorization: Bearer <token>' header is required",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        await app.metrics.refresh(app.tickets)
        return Response(app.metrics.exposition(), media_type=CONTENT_TYPE, headers={"Cache-Control": "no-store"})

    return router


def metrics_app(app: App) -> FastAPI:
    """An ASGI app with ``GET /metrics`` only (same token rule), for a process without the web front."""
    web = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    web.include_router(build_router(app))
    return web
