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


FORMS: dict[str, Handler] = {returns.FORM: returns.continue_return, status.FORM: status.continue_order_status}
FORM_ANSWERS: dict[str, Callable[[Turn], bool]] = {
    returns.FORM: returns.answers_requested_slot,
    status.FORM: status.gives_contact,
}
"""Per form: does this message answer what the form asked? (Then no intent may interrupt it.)"""
STATUS_QUESTIONS = frozenset({"order_status", "ticket_status"})
ESCAPE_CONFIDENCE = 0.9
"""A status question this sure leaves the return form (which would otherwise read it as the reason)."""


def _leaves_returns(turn: Turn) -> bool:
    intent, confidence = turn.prediction.intent, turn.prediction.confidence
    return intent == "human_handoff" or (intent in STATUS_QUESTIONS and confidence >= ESCAPE_CONFIDENCE)


FORM_ESCAPES: dict[str, Callable[[Turn], bool]] = {returns.FORM: _leaves_returns, status.FORM: lambda turn: True}
"""Per form: may a message that does not answer it leave the form for its own intent? The
order-status question asks only for a contact: anything else is a new request."""
FALLBACK: Handler = fallback.fallback
