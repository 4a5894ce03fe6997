"""deskbot's ticket operations for a Rasa assistant, without Rasa: the action server's core.

Each operation is one turn of deskbot for the customer behind Rasa's ``sender_id`` (on
channel ``rasa``): the same customer archive, conversation state, handlers, validation
and response texts as deskbot's own dialogue, in one transaction. It returns the texts to
say and the slot values to set; ``bot.rasa_actions.server`` turns them into Rasa SDK
events. Nothing here imports ``rasa_sdk``, so it is testable and importable without it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.app import App
from bot.pipeline import clean_text
from common.errors import DeskbotError
from common.messages import Incoming, buttons_payload, stored_buttons
from handlers.complaints import complaint
from handlers.context import Reply, Turn
from handlers.conversation import ConversationState
from handlers.handoff import acknowledge_queued
from handlers.rating import rate
from handlers.returns import submit_return
from handlers.status import ticket_status
from intents.base import Entity, IntentClassifier, Prediction
from intents.language import detect_language
from storage.models import Author, DeliveryStatus, Direction, Message, Owner, Ticket, parse_ticket_number, utcnow
from storage.state import StateKey

log = logging.getLogger("deskbot.rasa_actions")

CHANNEL = "rasa"
MAX_TEXT = 4000
MAX_IDENTIFIER = 64  # the order id column's width; ticket numbers are far shorter


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
    replies: list[Reply] = field(default_factory=list)
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

        As in deskbot's own pipeline: queued → the customer hears where they stand; agent →
        silence (the agent answers). Run it from a rule while ``deskbot_owner`` is not ``bot``.
        """

        async def run(turn: Turn) -> dict[str, Any]:
            customer = turn.customer
            ticket = await turn.tx.get_ticket(customer.handoff_ticket_id) if customer.handoff_ticket_id else None
            if customer.owner == Owner.BOT or ticket is None or not ticket.is_open:
                customer.owner, customer.handoff_ticket_id = Owner.BOT, None
                return {}
            turn.ticket_id = ticket.id
            if turn.msg.text:
                await turn.tx.add_event(ticket, "customer", "customer_message", {"text": turn.msg.text[:500]})
            if customer.owner == Owner.QUEUED:
                await acknowledge_queued(turn, ticket)
            return {}

        return await self._turn(request, "forward_to_agent", run)

    async def agent_replies(self, request: ActionRequest) -> ActionOutcome:
        """Only what agents wrote meanwhile (every action delivers those first anyway)."""

        async def run(turn: Turn) -> dict[str, Any]:
            return {}

        return await self._turn(request, "agent_replies", run, text="")

    def apology(self, request: ActionRequest) -> str:
        """What the customer hears when an operation failed (nothing of it was stored)."""
        language = _language(request, request.text, self.app.settings.default_language, self.app.settings.languages)
        return self.app.services.responses.text(language, "error_apology")

    # -- one deskbot turn ------------------------------------------------------------
    async def _turn(
        self,
        request: ActionRequest,
        intent: str,
        handler: Callable[[Turn], Awaitable[dict[str, Any]]],
        text: str | None = None,
    ) -> ActionOutcome:
        app = self.app
        text = clean_text(text if text is not None else request.text)[:MAX_TEXT]
        msg = Incoming(CHANNEL, request.sender_id, request.sender_id, text)
        outcome = ActionOutcome()
        async with app.tickets.session() as tx:
            customer, _ = await tx.resolve_customer(CHANNEL, request.sender_id, request.sender_id)
            key = StateKey(customer.id)
            state = ConversationState.from_dict(await app.state.get(key), customer.language)
            state.language = _language(request, text, state.language, app.settings.languages)
            customer.language = state.language
            entities = _message_entities(request.entities) + _slot_entities(request.slots)
            prediction = Prediction(intent, 1.0, entities=entities, language=state.language)
            turn = Turn(msg, customer, state, prediction, tx, app.services)
            # Agents' replies queued for this customer (channel rasa has no push): older, so first.
            outbox = [_outbox_reply(m) for m in await tx.take_outbox(customer.id, CHANNEL)]
            outcome.slots = await handler(turn)
            ticket = await tx.get_ticket(turn.ticket_id) if turn.ticket_id is not None else None
            if ticket is not None:
                outcome.slots |= _ticket_slots(ticket)
            outcome.slots["deskbot_owner"] = customer.owner.value
            outcome.replies = outbox + list(turn.replies)
            await tx.insert_messages(_rows(customer.id, request.sender_id, text, turn))
        await app.state.set(key, state.to_dict(), app.settings.state.ttl_seconds)
        log.info(
            "rasa action handled",
            extra={"action": intent, "customer": customer.id, "ticket": turn.ticket_id, "replies": len(turn.replies)},
        )
        return outcome


def _language(request: ActionRequest, text: str, current: str, enabled: Sequence[str]) -> str:
    for candidate in (request.language, detect_language(text) if text.strip() else None):
        short = candidate.split("-")[0].split("_")[0].lower() if candidate else ""
        if short in enabled:
            return short
    return current


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


def _outbox_reply(message: Message) -> Reply:
    return Reply(message.text, stored_buttons(message.payload), message.ticket_id)


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


def _rows(customer_id: int, chat_id: str, text: str, turn: Turn) -> list[dict[str, object]]:
    """The customer's words and deskbot's answers, on the ticket, as the pipeline stores them."""
    rows: list[dict[str, object]] = []
    now = utcnow()
    base = {"customer_id": customer_id, "channel": CHANNEL, "chat_id": chat_id}
    if text:
        rows.append(
            base
            | {
                "ticket_id": turn.ticket_id,
                "direction": Direction.INBOUND,
                "author": Author.CUSTOMER,
                "text": text,
                "status": DeliveryStatus.RECEIVED,
                "payload": {"rasa_action": turn.prediction.intent},
            }
        )
    for reply in turn.replies:
        rows.append(
            base
            | {
                "ticket_id": reply.ticket_id or turn.ticket_id,
                "direction": Direction.OUTBOUND,
                "author": Author.BOT,
                "text": reply.text,
                # Answered in the action server's response, like a pull channel's turn.
                "status": DeliveryStatus.SENT,
                "sent_at": now,
                "payload": buttons_payload(reply.buttons),
            }
        )
    return rows
