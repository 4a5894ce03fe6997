"""What agents do to tickets — shared by the CLI and the workspace's REST API.

Replies are stored as outbound messages with status ``queued``, in the same transaction as
the change they belong to: the customer's channel picks them up (REST/web chat on the next
poll, Telegram through its outbox reader, ``bot/channels/outbox.py``), so an agent's reply
reaches the customer's own channel even from another process.

Every action is one transaction and writes its audit event (published on the event bus
after the commit, so colleagues' dashboards update live). A change that contradicts the
ticket's state raises :class:`~common.errors.Conflict` (HTTP 409) and changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from common.errors import Conflict, DeskbotError, NotFound
from common.messages import Button, buttons_payload
from handlers.context import Policy
from handlers.handoff import TicketClosed, claim, hand_back, resolve, sla_due, take_ticket, transition
from handlers.rating import rating_buttons
from handlers.responses import Responses
from storage.models import (
    Agent,
    Author,
    DeliveryStatus,
    Direction,
    Message,
    Owner,
    Priority,
    Ticket,
    TicketStatus,
    utcnow,
)
from storage.tickets import TicketSession, TicketStore

SYSTEM_AGENT_EMAIL = "cli@deskbot.local"
MAX_NOTE_CHARS = 10_000
MAX_REPLY_CHARS = 10_000


def _checked_text(text: str, what: str, limit: int) -> str:
    """An agent's text without surrounding blanks; empty or over ``limit`` is refused by name."""
    text = text.strip()
    if not text:
        raise DeskbotError(f"{what} needs some text")
    if len(text) > limit:
        raise DeskbotError(f"{what} is at most {limit} characters")
    return text


@dataclass(frozen=True, slots=True)
class DeskResult:
    ticket_number: str
    status: str
    owner: str
    message_id: int | None = None


class AgentDesk:
    def __init__(self, tickets: TicketStore, responses: Responses, policy: Policy | None = None) -> None:
        self.tickets = tickets
        self.responses = responses
        self.policy = policy

    async def _agent(self, tx: TicketSession, email: str | None) -> Agent:
        agent = await tx.agent_by_email(email or SYSTEM_AGENT_EMAIL)
        if agent is None:
            if email and email != SYSTEM_AGENT_EMAIL:
                raise DeskbotError(f"no agent with e-mail {email}")
            agent = await tx.add_agent(SYSTEM_AGENT_EMAIL, "Terminal agent", role="agent")
        if not agent.active:
            raise Conflict(f"agent {agent.email} is deactivated")
        return agent

    async def _queue_to_customer(
        self, tx: TicketSession, ticket: Ticket, text: str, author: Author, agent: Agent | None,
        buttons: tuple[Button, ...] = (),
        delivery_key: str | None = None,
    ) -> Message:
        customer = ticket.customer
        channel = customer.last_channel or ticket.channel
        chat_id = customer.last_chat_id or ""
        return await tx.add_message(
            customer,
            channel=channel,
            chat_id=chat_id,
            direction=Direction.OUTBOUND,
            author=author,
            text=text,
            status=DeliveryStatus.QUEUED,
            ticket_id=ticket.id,
            agent_id=agent.id if agent else None,
            payload=buttons_payload(buttons),
            delivery_key=delivery_key,
        )

    @staticmethod
    def _result(ticket: Ticket, message_id: int | None = None) -> DeskResult:
        return DeskResult(ticket.number, ticket.status.value, ticket.customer.owner.value, message_id)

    # -- talking to the customer ----------------------------------------------------------
    async def reply(
        self, number: str, text: str, agent_email: str | None = None, *, delivery_key: str | None = None
    ) -> DeskResult:
        """Send an agent's words to the customer; the first reply claims a queued conversation.

        ``delivery_key`` (the agents' Telegram group passes ``agents:{update_id}``) is stored on
        the reply's row, unique per channel: a redelivered update fails the whole transaction
        with :class:`~common.errors.DuplicateDelivery` instead of replying twice (see
        ``reply_relayed``).
        """
        text = _checked_text(text, "a reply", MAX_REPLY_CHARS)
        async with self.tickets.session() as tx:
            ticket = await tx.ticket_by_number(number)
            agent = await self._agent(tx, agent_email)
            if ticket.status == TicketStatus.CLOSED:
                raise TicketClosed(ticket)
            customer = ticket.customer
            if ticket.status == TicketStatus.RESOLVED:
                await self._reopen(tx, ticket, agent.email, "agent replied")
            if customer.handoff_ticket_id == ticket.id and customer.owner != Owner.AGENT:
                await claim(tx, ticket, agent)
            elif ticket.assignee_id is None:
                await take_ticket(tx, ticket, agent)  # a colleague replying at the same moment loses
            if ticket.status in (TicketStatus.NEW, TicketStatus.PENDING):
                ticket.status = TicketStatus.OPEN
            if ticket.first_response_at is None:
                ticket.first_response_at = utcnow()
            message = await self._queue_to_customer(tx, ticket, text, Author.AGENT, agent, delivery_key=delivery_key)
            message_id = await tx.save_message(message)  # a delivery key seen before fails here
            await tx.add_event(ticket, agent.email, "agent_reply", {"message_id": message_id})
            return self._result(ticket, message_id)

    async def retry_delivery(self, message_id: int, agent_email: str | None = None) -> DeskResult:
        """Queue a failed outbound message again; the customer's channel picks it up as new."""
        async with self.tickets.session() as tx:
            agent = await self._agent(tx, agent_email)
            message = await tx.get_message(message_id)
            if message is None:
                raise NotFound(f"no message with id {message_id}")
            if message.direction != Direction.OUTBOUND or message.status != DeliveryStatus.FAILED:
                raise Conflict(f"message {message_id} is not a failed delivery (status {message.status.value})")
            if message.ticket_id is None:
                raise Conflict(f"message {message_id} belongs to no ticket")
            ticket = await tx.get_ticket(message.ticket_id)
            assert ticket is not None
            previous_error = message.error
            message.status, message.error = DeliveryStatus.QUEUED, None
            # A fresh start in the outbox: its own attempts, no wait (parts already accepted
            # stay recorded in the payload, so they are not sent twice).
            message.attempts, message.not_before, message.lease_until = 0, None, None
            await tx.add_event(
                ticket, agent.email, "delivery_retried", {"message_id": message.id, "error": previous_error}
            )
            return self._result(ticket, message.id)

    # -- internal work ------------------------------------------------------------------
    async def add_note(self, number: str, text: str, agent_email: str | None = None) -> int:
        """An internal note: an audit event agents see, never a message to the customer."""
        text = _checked_text(text, "a note", MAX_NOTE_CHARS)
        async with self.tickets.session() as tx:
            ticket = await tx.ticket_by_number(number)
            agent = await self._agent(tx, agent_email)
            event = await tx.add_event(ticket, agent.email, "note", {"text": text, "agent_id": agent.id})
            await tx.write_now()  # the note's id
            return event.id

    async def assign(self, number: str, agent_id: int | None, agent_email: str | None = None) -> DeskResult:
        """Give the ticket to a colleague (or to nobody); an owned conversation follows the ticket."""
        async with self.tickets.session() as tx:
            ticket = await tx.ticket_by_number(number)
            actor = await self._agent(tx, agent_email)
            target: Agent | None = None
            if agent_id is not None:
                target = await tx.get_agent(agent_id)
                if target is None:
                    raise NotFound(f"no agent with id {agent_id}")
                if not target.active:
                    raise Conflict(f"agent {target.email} is deactivated")
            if ticket.assignee_id == (target.id if target else None):
                return self._result(ticket)
            customer = ticket.customer
            if target is None and customer.handoff_ticket_id == ticket.id and customer.owner == Owner.AGENT:
                # Nobody would answer: the conversation goes back to the queue.
                customer.owner = Owner.QUEUED
                await tx.add_event(ticket, actor.email, "owner_changed",
                                   {"from": "agent", "to": "queued", "reason": "unassigned"})
            ticket.assignee_id = target.id if target else None
            ticket.assignee = target
            await tx.add_event(
                ticket, actor.email, "assigned", {"agent": target.email if target else None, "agent_id": agent_id}
            )
            return self._result(ticket)

    async def set_priority(self, number: str, priority: Priority | str, agent_email: str | None = None) -> DeskResult:
        """Change the priority; SLA due times still ahead follow the new priority's targets.

        Accepts the enum or its name as typed by an agent (``/priority HIGH`` in Telegram);
        an unchanged priority records nothing.
        """
        try:
            wanted = Priority(str(priority.value if isinstance(priority, Priority) else priority).strip().lower())
        except ValueError:
            choices = ", ".join(p.value for p in Priority)
            raise DeskbotError(f"unknown priority {str(priority)[:20]!r}; choose one of {choices}") from None
        async with self.tickets.session() as tx:
            ticket = await tx.ticket_by_number(number)
            agent = await self._agent(tx, agent_email)
            old = ticket.priority
            if old == wanted:
                return self._result(ticket)
            ticket.priority = wanted
            if self.policy is not None and ticket.is_open:
                first_due, resolution_due = sla_due(self.policy, wanted, ticket.created_at)
                if ticket.first_response_at is None:
                    ticket.first_response_due = first_due
                ticket.resolution_due = resolution_due
            await tx.add_event(ticket, agent.email, "priority_changed", {"from": old.value, "to": wanted.value})
            return self._result(ticket)

    async def set_status(self, number: str, status: TicketStatus, agent_email: str | None = None) -> DeskResult:
        """Move between new/open/pending; ``resolved`` resolves (rating asked), ``closed`` closes silently."""
        if status == TicketStatus.RESOLVED:
            return await self.resolve(number, agent_email)
        async with self.tickets.session() as tx:
            ticket = await tx.ticket_by_number(number)
            agent = await self._agent(tx, agent_email)
            old = ticket.status
            if old == status:
                return self._result(ticket)
            if ticket.merged_into_id is not None:
                raise Conflict(f"ticket {ticket.number} was merged into another ticket")
            if status == TicketStatus.NEW and ticket.first_response_at is not None:
                raise Conflict(f"ticket {ticket.number} was answered already; it cannot be new again")
            if status == TicketStatus.CLOSED:
                await self._close(tx, ticket, agent.email)
            elif not ticket.is_open:
                await self._reopen(tx, ticket, agent.email, f"status set to {status.value}")
            ticket.status = status
            await tx.add_event(ticket, agent.email, "status_changed", {"from": old.value, "to": status.value})
            return self._result(ticket)

    async def _close(self, tx: TicketSession, ticket: Ticket, actor: str) -> None:
        """Close without a rating request; a conversation handed off on it returns to the bot."""
        ticket.status = TicketStatus.CLOSED
        ticket.resolved_at = ticket.resolved_at or utcnow()
        customer = ticket.customer
        if customer.handoff_ticket_id == ticket.id and customer.owner != Owner.BOT:
            await transition(tx, customer, ticket, Owner.BOT, actor, "closed")

    @staticmethod
    async def _reopen(tx: TicketSession, ticket: Ticket, actor: str, reason: str) -> None:
        ticket.status = TicketStatus.OPEN
        ticket.resolved_at = None
        await tx.add_event(ticket, actor, "reopened", {"reason": reason})

    async def reopen(self, number: str, agent_email: str | None = None) -> DeskResult:
        """Open a resolved or closed ticket again; its conversation waits for an agent again."""
        async with self.tickets.session() as tx:
            ticket = await tx.ticket_by_number(number)
            agent = await self._agent(tx, agent_email)
            if ticket.is_open:
                raise Conflict(f"ticket {ticket.number} is {ticket.status.value}, not resolved or closed")
            if ticket.merged_into_id is not None:
                raise Conflict(f"ticket {ticket.number} was merged into another ticket; work on that one")
            await self._reopen(tx, ticket, agent.email, "reopened by an agent")
            customer = ticket.customer
            if customer.owner == Owner.BOT:
                # The customer's next messages reach this ticket, not the bot.
                await transition(tx, customer, ticket, Owner.QUEUED, agent.email, "ticket reopened")
            return self._result(ticket)

    async def merge(self, number: str, into: str, agent_email: str | None = None) -> DeskResult:
        """Fold a duplicate into the ticket to keep: its messages and notes move, it is closed.

        The audit events stay on the duplicate (its history), which records ``merged {into}``;
        the kept ticket records ``merged_from {ticket}``. Only tickets of the same customer
        merge: replies of the kept ticket go to its customer's channel.
        """
        async with self.tickets.session() as tx:
            source = await tx.ticket_by_number(number)
            target = await tx.ticket_by_number(into)
            agent = await self._agent(tx, agent_email)
            if source.id == target.id:
                raise Conflict("a ticket cannot be merged into itself")
            if source.customer_id != target.customer_id:
                raise Conflict(f"{source.number} and {target.number} belong to different customers")
            if source.merged_into_id is not None:
                raise Conflict(f"ticket {source.number} was merged already")
            if target.merged_into_id is not None or target.status == TicketStatus.CLOSED:
                raise Conflict(f"ticket {target.number} is closed; merge into an open ticket")
            await tx.move_messages(source.id, target.id)
            await tx.move_notes(source.id, target.id)
            customer = source.customer
            if customer.handoff_ticket_id == source.id:
                customer.handoff_ticket_id = target.id
            if target.assignee_id is None and source.assignee_id is not None:
                target.assignee_id = source.assignee_id
            if not target.is_open:
                await self._reopen(tx, target, agent.email, f"{source.number} merged into it")
            source.status = TicketStatus.CLOSED
            source.resolved_at = source.resolved_at or utcnow()
            source.merged_into_id = target.id
            await tx.add_event(source, agent.email, "merged", {"into": target.number})
            await tx.add_event(target, agent.email, "merged_from", {"ticket": source.number})
            return self._result(target)

    # -- the conversation owner -----------------------------------------------------------
    async def _change(
        self,
        number: str,
        agent_email: str | None,
        change: Callable[[TicketSession, Ticket, Agent], Awaitable[None]],
        notice: Callable[[Ticket], tuple[str, tuple[Button, ...]]] | None = None,
    ) -> DeskResult:
        """Apply one owner/status change and queue the customer's notice, in one transaction."""
        async with self.tickets.session() as tx:
            ticket = await tx.ticket_by_number(number)
            agent = await self._agent(tx, agent_email)
            await change(tx, ticket, agent)
            message_id = None
            if notice is not None:
                text, buttons = notice(ticket)
                message = await self._queue_to_customer(tx, ticket, text, Author.BOT, None, buttons)
                message_id = await tx.save_message(message)
            return self._result(ticket, message_id)

    async def resolve(self, number: str, agent_email: str | None = None) -> DeskResult:
        """Resolve, hand the conversation back to the bot and ask the customer for a rating.

        The rating request goes to the customer's own channel, in the customer's language,
        with 1–5 buttons.
        """

        def rating_request(ticket: Ticket) -> tuple[str, tuple[Button, ...]]:
            text = self.responses.text(ticket.customer.language, "rating_request", number=ticket.number)
            return text, rating_buttons(ticket)

        return await self._change(
            number, agent_email, lambda tx, t, agent: resolve(tx, t, agent.email), rating_request
        )

    async def hand_back(self, number: str, agent_email: str | None = None) -> DeskResult:
        """Give the conversation back to the bot without resolving (no rating asked)."""
        return await self._change(
            number,
            agent_email,
            lambda tx, t, agent: hand_back(tx, t, agent.email),
            lambda t: (self.responses.text(t.customer.language, "handed_back"), ()),
        )

    async def claim(self, number: str, agent_email: str | None = None) -> DeskResult:
        """Take the ticket and its conversation; Conflict when a colleague has it already."""
        return await self._change(number, agent_email, claim)
