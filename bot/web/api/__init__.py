"""The REST API under ``/api/v1``: one router per resource, assembled here.

Every route requires an agent (session + CSRF, or an API token — see ``bot.web.auth``);
``tests/web/api/test_security.py`` enumerates the routes to prove it.
"""

from __future__ import annotations

from fastapi import APIRouter

from bot.app import App
from bot.web.api import agents, analytics, canned, customers, data_rights, events, missed, tickets

API_PREFIX = "/api/v1"  # each resource router carries it, so it can be mounted alone in tests


def build_api_router(app: App) -> APIRouter:
    router = APIRouter()
    router.include_router(agents.build_router(app))
    router.include_router(tickets.build_router(app))
    router.include_router(canned.build_router(app))
    router.include_router(customers.build_router(app))
    router.include_router(events.build_router(app))
    router.include_router(analytics.build_router(app))
    router.include_router(data_rights.build_router(app))
    router.include_router(missed.build_router(app))
    return router
