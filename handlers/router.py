"""Where a customer message goes: the router's ordered guards, then intent → handler.

Before a message is routed by its intent, guards in a fixed order may answer it: a human
owns the conversation (the message goes onto the handoff ticket), a rating comment is
awaited, files arrived, the message is empty, a form is in progress. Each guard says
whether it handled the turn; the first that did ends the routing, and the fallback
answers whatever none did. The intents' handlers are assembled in one place from each
feature module's ROUTES.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from common.errors import DeskbotError
from common.messages import stored_buttons
from handlers import attachments, complaints, fallback, handoff, presale, rating, returns, status
from handlers.context import Turn
from intents.base import OUT_OF_SCOPE
from storage.models import Author, Direction, Owner

Handler = Callable[[Turn], Awaitable[None]]
GuardCheck = Callable[[Turn, str], Awaitable[bool]]
"""``async (turn, text) -> handled``: ``text`` is the message's cleaned text."""


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


# -- the guards, in the order the router asks them ----------------------------------------
@dataclass(frozen=True, slots=True)
class Guard:
    """One step of the routing: ``check`` answers the turn (True) or passes it on (False)."""

    name: str
    check: GuardCheck


async def forward_to_ticket(turn: Turn, text: str) -> bool:
    """While a human owns (or is about to own) the conversation the bot stays quiet: the
    message goes onto the handoff ticket. Queued, the customer hears where they stand (or
    cancels the handoff); with an agent, silence — the agent answers.

    False when that ticket is no longer open: the conversation is the bot's again, and the
    message is routed like any other.
    """
    ticket_id = turn.customer.handoff_ticket_id
    if ticket_id is None:
        raise DeskbotError("forward_to_ticket needs a conversation handed off to a ticket")
    ticket = await turn.tx.get_ticket(ticket_id)
    if ticket is None or not ticket.is_open:
        turn.customer.owner, turn.customer.handoff_ticket_id = Owner.BOT, None
        return False
    turn.ticket_id = ticket.id
    data: dict[str, object] = {"text": text[:500]}
    files = [{"kind": a.kind, "file_id": a.file_id, "name": a.name} for a in turn.msg.attachments
             if a.file_id and not a.refused]
    if files:
        data["attachments"] = files  # agents open them through the channel's file route
    await turn.tx.add_event(ticket, "customer", "customer_message", data)
    if turn.customer.owner == Owner.QUEUED:
        if turn.prediction.intent == "cancel":
            await handoff.transition(turn.tx, turn.customer, ticket, Owner.BOT, "customer", "customer cancelled")
            turn.say("handoff_cancelled", number=ticket.number)
            return True
        await handoff.acknowledge_queued(turn, ticket)
    return True


async def _handed_off(turn: Turn, text: str) -> bool:
    if turn.customer.owner == Owner.BOT or turn.customer.handoff_ticket_id is None:
        return False
    await attachments.explain_refused(turn)
    return await forward_to_ticket(turn, text)


async def _rating_comment(turn: Turn, text: str) -> bool:
    return turn.state.awaiting_comment_for is not None and await rating.rating_comment(turn)


async def _files(turn: Turn, text: str) -> bool:
    return bool(turn.msg.attachments) and await attachments.receive(turn, text)


async def _attachment_only(turn: Turn, text: str) -> bool:
    """A sticker, a voice message, a location: please write it as text."""
    if not turn.msg.attachments or text or turn.msg.payload:
        return False
    turn.say("attachment_as_text")
    return True


async def _reopen_on_return(turn: Turn, text: str) -> bool:
    return turn.state.form is None and await handoff.reopen_on_return(turn) is not None


async def _empty_message(turn: Turn, text: str) -> bool:
    if text or turn.msg.payload:
        return False
    turn.say("empty_message")
    return True


async def _form_in_progress(turn: Turn, text: str) -> bool:
    """A form answers what it asked; ``cancel`` ends it; a message that may escape it ends
    it and goes on to its own intent."""
    state = turn.state
    if state.form is None:
        return False
    if turn.prediction.intent == "cancel":
        state.end_form()
        turn.say("form_cancelled")
        return True
    if FORM_ANSWERS[state.form](turn) or not FORM_ESCAPES[state.form](turn):
        await FORMS[state.form](turn)
        return True
    state.end_form()
    return False


async def _fallback(turn: Turn, text: str) -> bool:
    await FALLBACK(turn)
    return True


ROUTED = "intent"
"""The name of the guard that routes by intent: the turn was answered by its intent's handler."""


class Router:
    """The guards every message passes, in order, until one handles it."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = build_routes()
        self.guards: tuple[Guard, ...] = (
            Guard("handoff", _handed_off),
            Guard("rating comment", _rating_comment),
            Guard("attachments", _files),
            Guard("attachment as text", _attachment_only),
            Guard("reopen on return", _reopen_on_return),
            Guard("empty message", _empty_message),
            Guard("form", _form_in_progress),
            Guard(ROUTED, self._route_by_intent),
            Guard("fallback", _fallback),
        )

    async def dispatch(self, turn: Turn) -> Guard:
        """Route the turn; returns the guard that handled it."""
        text = turn.msg.text
        for guard in self.guards:
            if await guard.check(turn, text):
                return guard
        raise DeskbotError("no guard handled the message (the fallback handles every one)")

    async def _route_by_intent(self, turn: Turn, text: str) -> bool:
        intent = turn.prediction.intent
        handler = self.routes.get(intent)
        if handler is None or intent == OUT_OF_SCOPE:
            return False
        turn.state.misunderstood = 0
        await handler(turn)
        # After the handler, which sees the previous one and may read a follow-up ("and the
        # armchair?") as the question before it.
        turn.state.last_intent = turn.prediction.intent
        return True
