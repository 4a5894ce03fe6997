"""What agents do to tickets — shared by the CLI today and the dashboard tomorrow.

Replies are stored as outbound messages with status ``queued``: the customer's channel
picks them up (REST/web chat on the next poll, push channels through their sender), so
an agent's reply reaches the customer's own channel even from another process.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.messages import Button
from handlers.context import Policy
from handlers.handoff import claim, hand_back, resolve, sla_due
from handlers.rating import rating_buttons
from handlers.responses import Responses
from storage.errors import DeskbotError
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
MAX_NOTE_CHARS = 4000


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
        # With a policy, a priority change moves the SLA due times to the new priority's targets.
        self.policy = policy

    async def _agent(self, tx: TicketSession, email: str | None) -> Agent:
        agent = await tx.agent_by_email(email or SYSTEM_AGENT_EMAIL)
        if agent is None:
            if email and email != SYSTEM_AGENT_EMAIL:
                raise DeskbotError(f"no agent with e-mail {email}")
            agent = await tx.add_agent(SYSTEM_AGENT_EMAIL, "Terminal agent", role="agent")
        return agent

    async def _queue_to_customer(
        self, tx: TicketSession, ticket: Ticket, text: str, author: Author, agent: Agent | None,
        buttons: tuple[Button, ...] = (),
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
            payload={"buttons": [[b.title, b.payload] for b in buttons]} if buttons else None,
        )

    async def reply(self, number: str, text: str, agent_email: str | None = None) -> DeskResult:
        """Send an agent's words to the customer; the first reply claims a queued conversation."""
        text = text.strip()
        if not text:
            raise DeskbotError("a reply needs some text")
        async with self.tickets.session() as tx:
            ticket = await tx.ticket_by_number(number)
            agent = await self._agent(tx, agent_email)
            customer = ticket.customer
            if customer.handoff_ticket_id == ticket.id and customer.owner != Owner.AGENT:
                await claim(tx, ticket, agent)
            elif ticket.assignee_id is None:
                ticket.assignee_id = agent.id
            if ticket.status in (TicketStatus.NEW, TicketStatus.PENDING, TicketStatus.RESOLVED):
                ticket.status = TicketStatus.OPEN
            if ticket.first_response_at is None:
                ticket.first_response_at = utcnow()
            message = await self._queue_to_customer(tx, ticket, text, Author.AGENT, agent)
            await tx.db.flush()
            await tx.add_event(ticket, agent.email, "agent_reply", {"message_id": message.id})
            return DeskResult(ticket.number, ticket.status.value, customer.owner.value, message.id)

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
                await tx.db.flush()
                message_id = message.id
            return DeskResult(ticket.number, ticket.status.value, ticket.customer.owner.value, message_id)

    async def resolve(self, number: str, agent_email: str | None = None) -> DeskResult:
        """Resolve, hand the conversation back to the bot and ask the customer for a rating."""

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
        return await self._change(number, agent_email, claim)

    async def add_note(self, number: str, text: str, agent_email: str | None = None) -> DeskResult:
        """An internal note for colleagues: stored as a ``note`` event, never sent to the customer."""
        text = text.strip()
        if not text:
            raise DeskbotError("a note needs some text")
        if len(text) > MAX_NOTE_CHARS:
            raise DeskbotError(f"a note has at most {MAX_NOTE_CHARS} characters")
        async with self.tickets.session() as tx:
            ticket = await tx.ticket_by_number(number)
            agent = await self._agent(tx, agent_email)
            await tx.add_event(ticket, agent.email, "note", {"text": text})
            return DeskResult(ticket.number, ticket.status.value, ticket.customer.owner.value)

    async def set_priority(self, number: str, priority: Priority | str, agent_email: str | None = None) -> DeskResult:
        """Change the priority (``priority_changed {from, to}``); unchanged priority records nothing.

        SLA due times still ahead (no first response yet; not resolved) are recomputed from
        the ticket's creation with the new priority's targets, so "urgent" really is sooner.
        """
        try:
            wanted = Priority(str(priority.value if isinstance(priority, Priority) else priority).strip().lower())
        except ValueError:
            choices = ", ".join(p.value for p in Priority)
            raise DeskbotError(f"unknown priority {str(priority)[:20]!r}; choose one of {choices}") from None
        async with self.tickets.session() as tx:
            ticket = await tx.ticket_by_number(number)
            agent = await self._agent(tx, agent_email)
            previous = ticket.priority
            if wanted != previous:
                ticket.priority = wanted
                if self.policy is not None and ticket.is_open:
                    first_due, resolution_due = sla_due(self.policy, wanted, ticket.created_at)
                    if ticket.first_response_at is None:
                        ticket.first_response_due = first_due
                    ticket.resolution_due = resolution_due
                change = {"from": previous.value, "to": wanted.value}
                await tx.add_event(ticket, agent.email, "priority_changed", change)
            return DeskResult(ticket.number, ticket.status.value, ticket.customer.owner.value)
