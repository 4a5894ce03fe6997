"""deskbot's ticket operations for a Rasa assistant, without Rasa: the action server's core.

Each operation is one turn of deskbot's pipeline (``Pipeline.run_turn``) for the customer
behind Rasa's ``sender_id`` on channel ``rasa``: the same customer archive, conversation
state and language, storage of the message and the replies, handlers and response texts
as deskbot's own dialogue, in one transaction — only the understanding is Rasa's. This
module maps Rasa's request onto that turn (the action's intent, entities from the message
and the slots) and the turn onto what to say and the slot values to set;
``bot.rasa_actions.server`` turns those into Rasa SDK events. Nothing here imports
``rasa_sdk``, so it is testable and importable without it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bot.app import App
from common.errors import DeskbotError
from common.messages import Incoming, Outgoing, stored_buttons
from handlers.complaints import complaint
from handlers.context import Turn
from handlers.rating import rate
from handlers.returns import submit_return
from handlers.router import forward_to_ticket
from handlers.status import ticket_status
from intents.base import Entity, IntentClassifier, Prediction
from storage.models import Owner, Ticket, parse_ticket_number

log = logging.getLogger("deskbot.rasa_actions")

CHANNEL = "rasa"
MAX_TEXT = 4000
MAX_IDENTIFIER = 64  # the order id column's width; ticket numbers are far shorter
Operation = Callable[[Turn], Awaitable[dict[str, Any]]]
"""The action's part of the turn: what it does, and the slots it sets."""


class RasaOwnsUnderstanding(IntentClassifier):
    """The action server's classifier slot: Rasa understood the message before calling us.

    ``build_app`` wants a classifier; training or loading deskbot's own would only cost
    start-up time, and an action that tried to classify would be a bug — so it refuses.
    """

    async def predict(self, text: str, language: str | None = None, known: Sequence[Entity] = ()) -> Prediction:
        raise DeskbotError("the Rasa action server does not classify messages: Rasa already did")


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """What an action needs from Rasa's tracker: who, what they said, and the slots."""

    sender_id: str
    slots: Mapping[str, Any]
    text: str = ""
    intent: str | None = None
    language: str | None = None
    entities: Mapping[str, str] = field(default_factory=dict)
    """The latest message's entities (a ``/rate{"ticket": "T-1001", "score": 5}`` button gives two)."""


@dataclass(slots=True)
class ActionOutcome:
    """What to say (the agents' queued replies first, then the turn's) and the slots to set."""

    replies: list[Outgoing] = field(default_factory=list)
    slots: dict[str, Any] = field(default_factory=dict)


class TicketOperations:
    """Open returns, escalate complaints, report ticket status — for a Rasa ``sender_id``."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def open_return(self, request: ActionRequest) -> ActionOutcome:
        """Slots ``order_id``, ``item``, ``reason``, ``resolution`` (+ ``contact``/``email``/``phone``, ``wanted``)."""
        slots = request.slots
        filled = {name: slots.get(name) for name in ("order_id", "item", "reason", "resolution", "wanted")}
        filled["contact"] = slots.get("contact") or slots.get("email") or slots.get("phone")

        async def run(turn: Turn) -> dict[str, Any]:
            missing = await submit_return(turn, filled)
            if missing is not None:
                # Clear what deskbot rejected so the assistant's form asks for it again.
                return {"deskbot_missing_slot": missing, missing: None}
            return {"deskbot_missing_slot": None}

        return await self._turn(request, "request_return", run)

    async def escalate_complaint(self, request: ActionRequest) -> ActionOutcome:
        """A complaint ticket (priority from wording, repeats, order value), queued for a human."""
        text = str(request.slots.get("complaint") or request.text)

        async def run(turn: Turn) -> dict[str, Any]:
            await complaint(turn)
            return {}

        return await self._turn(request, "complaint", run, text=text)

    async def ticket_status(self, request: ActionRequest) -> ActionOutcome:
        """One ticket by the ``ticket_number`` slot (only the sender's own), else the sender's latest."""

        async def run(turn: Turn) -> dict[str, Any]:
            await ticket_status(turn)
            wanted = turn.prediction.entity("ticket")
            ticket_id = parse_ticket_number(wanted) if wanted else None
            ticket = await turn.tx.get_ticket(ticket_id) if ticket_id else None
            if ticket is not None and ticket.customer_id == turn.customer.id:
                turn.ticket_id = ticket.id  # its slots get set, and this exchange is kept on it
            return {}

        return await self._turn(request, "ticket_status", run)

    async def rate(self, request: ActionRequest) -> ActionOutcome:
        """The rating buttons deskbot sends after resolving (``/rate{"ticket": ..., "score": ...}``)."""

        async def run(turn: Turn) -> dict[str, Any]:
            await rate(turn)
            return {}

        return await self._turn(request, "rate", run)

    async def forward_to_agent(self, request: ActionRequest) -> ActionOutcome:
        """While a human owns the conversation, the message goes onto the handoff ticket.

        deskbot's own forward (``handlers.router.forward_to_ticket``): queued → the customer
        hears where they stand; agent → silence (the agent answers). Run it from a rule while
        ``deskbot_owner`` is not ``bot``; without a handoff it changes nothing.
        """

        async def run(turn: Turn) -> dict[str, Any]:
            if turn.customer.owner != Owner.BOT and turn.customer.handoff_ticket_id is not None:
                await forward_to_ticket(turn, turn.msg.text)
            return {}

        return await self._turn(request, "forward_to_agent", run)

    async def agent_replies(self, request: ActionRequest) -> ActionOutcome:
        """Only what agents wrote meanwhile (every action delivers those first anyway)."""

        async def run(turn: Turn) -> dict[str, Any]:
            return {}

        return await self._turn(request, "agent_replies", run, text="")

    def apology(self, request: ActionRequest) -> str:
        """What the customer hears when an operation failed (nothing of it was stored)."""
        language = self.app.pipeline.language_of(request.text, request.language) or self.app.settings.default_language
        return self.app.services.responses.text(language, "error_apology")

    # -- one deskbot turn ------------------------------------------------------------
    async def _turn(
        self, request: ActionRequest, intent: str, operation: Operation, text: str | None = None
    ) -> ActionOutcome:
        """The pipeline's turn with Rasa's understanding; the agents' replies queued meanwhile
        (channel ``rasa`` has no push) come first, handed over in the same transaction."""
        text = (text if text is not None else request.text)[:MAX_TEXT]
        msg = Incoming(CHANNEL, request.sender_id, request.sender_id, text, language=request.language,
                       replies_in_answer=True)
        entities = _message_entities(request.entities) + _slot_entities(request.slots)
        outcome = ActionOutcome()

        async def handler(turn: Turn) -> None:
            queued = await turn.tx.hand_over_replies(turn.customer.id, CHANNEL, None)
            outcome.replies = [Outgoing(CHANNEL, m.chat_id, m.text, stored_buttons(m.payload), message_id=m.id)
                               for m in queued]
            outcome.slots = await operation(turn)
            ticket = await turn.tx.get_ticket(turn.ticket_id) if turn.ticket_id is not None else None
            if ticket is not None:
                outcome.slots |= _ticket_slots(ticket)
            outcome.slots["deskbot_owner"] = turn.customer.owner.value
            # The whole exchange is kept on the ticket the action worked on.
            turn.replies[:] = [replace(r, ticket_id=r.ticket_id or turn.ticket_id) for r in turn.replies]

        replies = await self.app.pipeline.run_turn(msg, Prediction(intent, 1.0, entities=entities), handler)
        outcome.replies += replies  # after the turn: the handler put the queued replies first
        log.info(
            "rasa action handled",
            extra={"action": intent, "ticket": outcome.slots.get("ticket_number"), "replies": len(outcome.replies)},
        )
        return outcome


def _slot_entities(slots: Mapping[str, Any]) -> tuple[Entity, ...]:
    """Rasa slots as deskbot entities (what the handlers read), ``ticket_number`` as ``ticket``.

    Slots hold whatever the customer typed: an identifier longer than any order or ticket
    number is dropped here rather than failing the database write later.
    """
    names = {"order_id": "order_id", "ticket_number": "ticket", "ticket": "ticket"}
    out = []
    for slot, etype in names.items():
        value = slots.get(slot)
        if isinstance(value, str | int) and 0 < len(str(value).strip()) <= MAX_IDENTIFIER:
            out.append(Entity(etype, str(value).strip(), 0, 0, str(value)))
    return tuple(out)


def _message_entities(entities: Mapping[str, str]) -> tuple[Entity, ...]:
    """Entities of the message itself win over older slot values (a button just pressed)."""
    wanted = {"ticket": "ticket", "ticket_number": "ticket", "score": "score", "order_id": "order_id"}
    return tuple(
        Entity(wanted[name], value.strip(), 0, 0, value)
        for name, value in entities.items()
        if name in wanted and 0 < len(value.strip()) <= MAX_IDENTIFIER
    )


def _ticket_slots(ticket: Ticket) -> dict[str, Any]:
    return {
        "ticket_number": ticket.number,
        "ticket_status": ticket.status.value,
        "ticket_kind": ticket.kind.value,
        "ticket_priority": ticket.priority.value,
    }
