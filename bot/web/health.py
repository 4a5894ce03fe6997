"""``/healthz`` (liveness) and ``/readyz`` (readiness) for load balancers and orchestrators.

- ``/healthz`` answers 200 while the process serves HTTP, whatever its stores do: a
  restart would not bring a database back, so an outage must not get deskbot killed.
- ``/readyz`` says whether deskbot can do its work now: the database answers, and Redis
  (when the state store or the event bus use it) answers, each within ``CHECK_TIMEOUT``
  seconds, checked at the same time. 200 ``{"status": "ready", "checks": {...}}`` or 503
  with ``Retry-After`` and the checks that failed, so traffic moves elsewhere until the
  stores are back; deskbot reconnects by itself, without a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from bot.app import App
from common.errors import DeskbotError

log = logging.getLogger("deskbot.web.health")

CHECK_TIMEOUT = 2.0
RETRY_AFTER_SECONDS = 5

Check = Callable[[], Awaitable[None]]


def readiness_checks(app: App) -> dict[str, Check]:
    """What ``/readyz`` probes: the ticket store, and each Redis client deskbot holds."""
    checks: dict[str, Check] = {}
    ping_db = getattr(app.tickets, "ping", None)
    if ping_db is not None:
        checks["database"] = ping_db
    redis_users = [("redis_state", app.state), ("redis_events", app.bus)]
    for name, store in redis_users:
        ping = getattr(store, "ping", None)
        if ping is not None:  # only the Redis implementations have one
            checks[name] = ping
    return checks


async def _run(check: Check) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await check()
    except TimeoutError:
        return "timeout"
    except DeskbotError as exc:
        return f"unavailable ({exc.__class__.__name__})"
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; said, not raised
        return f"error ({exc.__class__.__name__})"
    return "ok"


def build_router(app: App) -> APIRouter:
    router = APIRouter(tags=["health"])
    checks = readiness_checks(app)

    @router.get("/healthz", summary="Liveness: the process serves HTTP")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})

    @router.get("/readyz", summary="Readiness: the database and Redis (when configured) answer")
    async def readyz() -> JSONResponse:
        names = list(checks)
        results = dict(zip(names, await asyncio.gather(*(_run(checks[n]) for n in names)), strict=True))
        failed = sorted(name for name, result in results.items() if result != "ok")
        headers = {"Cache-Control": "no-store"}
        if failed:
            log.warning("not ready", extra={"failed": ",".join(failed)})
            headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
            body = {"status": "unavailable", "failed": failed, "checks": results}
            return JSONResponse(body, status_code=503, headers=headers)
        return JSONResponse({"status": "ready", "failed": [], "checks": results}, headers=headers)

    return router
