"""Intent → handler, assembled in one place from each feature module's ROUTES."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from common.messages import stored_buttons
from handlers import attachments, complaints, fallback, handoff, presale, rating, returns, status
from handlers.context import Turn
from storage.models import Author, Direction

Handler = Callable[[Turn], Awaitable[None]]


def _placing_held_files(handler: Handler) -> Handler:
    """A handler after which files kept from an earlier message (a photo whose caption was
    a greeting, or the request itself) go with the ticket or form it opened."""

    async def run(turn: Turn) -> None:
        held = attachments.held(turn)
        await handler(turn)
        await attachments.place_held(turn, held)

    run.__name__ = getattr(handler, "__name__", "handler")
    return run


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
    return {intent: _placing_held_files(handler) for intent, handler in routes.items()}


STATUS_QUESTIONS = frozenset({"order_status", "ticket_status"})
ESCAPE_CONFIDENCE = 0.9
"""A status question this sure is answered inside the return form (which would otherwise
read it as the answer to its question)."""
STATUS_COMMANDS = {"/status": "ticket_status", "/ticket_status": "ticket_status", "/order_status": "order_status"}
"""Commands typed as text: the web chat and REST pass ``/status`` on as the message's text
(only the Telegram adapter turns it into a payload), and the classifier cannot be sure of it."""


def status_request(turn: Turn) -> str | None:
    """The status question (``ticket_status`` / ``order_status``) a message asks, if surely one."""
    words = turn.msg.text.split(maxsplit=1)
    if words and words[0].lower() in STATUS_COMMANDS:
        return STATUS_COMMANDS[words[0].lower()]
    intent, confidence = turn.prediction.intent, turn.prediction.confidence
    return intent if intent in STATUS_QUESTIONS and confidence >= ESCAPE_CONFIDENCE else None


async def remind_question(turn: Turn) -> None:
    """Ask the form's pending question again: the bot's last reply (with its buttons) was it."""
    for row in reversed(await turn.tx.conversation(turn.customer.id, limit=20)):
        if row.direction == Direction.OUTBOUND and row.author == Author.BOT:
            turn.say_text(turn.t("form_resume", question=row.text), stored_buttons(row.payload))
            return


async def status_aside(turn: Turn, question: str) -> None:
    """A status question inside a form: show the status, then keep the form where it was
    and ask its question again. A status answer that needs a question of its own (the
    e-mail on an order not linked to the customer) starts its form instead: the latest
    question is the one the customer answers next."""
    state = turn.state
    saved = (state.form, dict(state.slots), state.requested_slot, state.form_failures, state.form_stalls)
    await status.ROUTES[question](turn)
    if state.form is not None and state.form != saved[0]:
        return
    state.form, state.slots, state.requested_slot, state.form_failures, state.form_stalls = saved
    await remind_question(turn)


async def continue_return(turn: Turn) -> None:
    question = None if returns.answers_requested_slot(turn) else status_request(turn)
    if question is not None:
        await status_aside(turn, question)
        return
    await returns.continue_return(turn)


FORMS: dict[str, Handler] = {returns.FORM: continue_return, status.FORM: status.continue_order_status}
FORM_ANSWERS: dict[str, Callable[[Turn], bool]] = {
    returns.FORM: returns.answers_requested_slot,
    status.FORM: status.gives_contact,
}
"""Per form: does this message answer what the form asked? (Then no intent may interrupt it.)"""


def _leaves_returns(turn: Turn) -> bool:
    return turn.prediction.intent == "human_handoff"


FORM_ESCAPES: dict[str, Callable[[Turn], bool]] = {returns.FORM: _leaves_returns, status.FORM: lambda turn: True}
"""Per form: may a message that does not answer it leave the form for its own intent? The
order-status question asks only for a contact: anything else is a new request. A status
question inside the return form is answered by the form's handler (``status_aside``)."""
FALLBACK: Handler = _placing_held_files(fallback.fallback)
