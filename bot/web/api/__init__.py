"""The REST API under ``/api/v1``: one router per resource, assembled here.

Every route requires an agent (session + CSRF, or an API token — see ``bot.web.auth``);
``tests/web/api/test_security.py`` enumerates the routes to prove it.
"""

from __future__ import annotations

from fastapi import APIRouter

from bot.app import App
from bot.web.api import agents, analytics, canned, customers, data_rights, events, missed, tickets

API_PREFIX = "/api/v1"  # each resource router carries it, so it can be mounted alone in tests


def build_api_routers(app: App) -> list[APIRouter]:
    """The resource routers, for the web app to include one by one: nesting them in one router
    first made FastAPI build every route's request model twice (~50 ms per app built)."""
    resources = (agents, tickets, canned, customers, events, analytics, data_rights, missed)
    return [resource.build_router(app) for resource in resources]
