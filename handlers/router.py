"""Intent → handler, assembled in one place from each feature module's ROUTES."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from handlers import complaints, fallback, handoff, presale, rating, returns, status
from handlers.context import Turn

Handler = Callable[[Turn], Awaitable[None]]


def build_routes() -> dict[str, Handler]:
    routes: dict[str, Handler] = {}
    for module_routes in (
        presale.ROUTES,
        returns.ROUTES,
        complaints.ROUTES,
        status.ROUTES,
        rating.ROUTES,
        fallback.ROUTES,
        {"human_handoff": handoff.human_handoff},
    ):
        clash = routes.keys() & module_routes.keys()
        if clash:
            raise ValueError(f"intents routed twice: {sorted(clash)}")
        routes.update(module_routes)
    return routes


FORMS: dict[str, Handler] = {returns.FORM: returns.continue_return}
FORM_ANSWERS: dict[str, Callable[[Turn], bool]] = {returns.FORM: returns.answers_requested_slot}
"""Per form: does this message answer what the form asked? (Then no intent may interrupt it.)"""
FALLBACK: Handler = fallback.fallback
