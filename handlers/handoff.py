"""Who answers the customer: the conversation-owner state machine.

``bot → queued → agent → (bot | resolved)``. The owner is stored on the customer row
(durable, unlike dialogue state) and every transition writes a ticket event, so agents
are notified and the audit log tells who moved the conversation where, and when.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from common.errors import Conflict
from handlers.context import Policy, Turn
from storage.models import Agent, Customer, Owner, Priority, Ticket, TicketKind, TicketStatus, utcnow
from storage.tickets import TicketSession

ALLOWED: dict[Owner, set[Owner]] = {
    Owner.BOT: {Owner.QUEUED},
    Owner.QUEUED: {Owner.AGENT, Owner.BOT},
    Owner.AGENT: {Owner.BOT},
}


REUSABLE_KINDS = (TicketKind.HANDOFF, TicketKind.COMPLAINT)


class InvalidTransition(Conflict):
    def __init__(self, current: Owner, wanted: Owner) -> None:
        super().__init__(f"conversation owner cannot go from {current.value} to {wanted.value}")
        self.current = current
        self.wanted = wanted


async def transition(
    tx: TicketSession, customer: Customer, ticket: Ticket, wanted: Owner, actor: str, reason: str | None = None
) -> None:
    """Move the conversation to ``wanted``; raises InvalidTransition for illegal moves."""
    current = customer.owner
    if wanted == current:
        return
    if wanted not in ALLOWED[current]:
        raise InvalidTransition(current, wanted)
    customer.owner = wanted
    customer.handoff_ticket_id = None if wanted == Owner.BOT else ticket.id
    data: dict[str, str] = {"from": current.value, "to": wanted.value}
    if reason:
        data["reason"] = reason
    await tx.add_event(ticket, actor, "owner_changed", data)


def sla_due(policy: Policy, priority: Priority, start: datetime) -> tuple[datetime, datetime]:
    first, resolution = policy.sla_minutes[priority]
    return (
        policy.calendar.add_business_minutes(start, first),
        policy.calendar.add_business_minutes(start, resolution),
    )


async def escalate(
    turn: Turn,
    *,
    kind: TicketKind,
    subject: str,
    reason: str,
    priority: Priority = Priority.NORMAL,
    order_id: str | None = None,
    fields: dict[str, object] | None = None,
    reuse_open: bool = False,
) -> Ticket:
    """Queue the conversation for a human on a ticket: reuse the open handoff ticket or open one.

    ``reuse_open``: a plain "talk to a person" continues the customer's latest open
    conversation ticket (handed back earlier, say) instead of opening a duplicate.
    """
    tx, customer = turn.tx, turn.customer
    ticket: Ticket | None = None
    if customer.handoff_ticket_id is not None:
        ticket = await tx.get_ticket(customer.handoff_ticket_id)
        if ticket is not None and not ticket.is_open:
            ticket = None
    if ticket is None and reuse_open:
        conversational = [t for t in await tx.open_tickets(customer.id) if t.kind in REUSABLE_KINDS]
        ticket = conversational[-1] if conversational else None
    if ticket is None:
        first_due, resolution_due = sla_due(turn.services.policy, priority, turn.now())
        ticket = await tx.open_ticket(
            customer,
            kind=kind,
            subject=subject,
            channel=turn.msg.channel,
            actor="bot",
            priority=priority,
            order_id=order_id,
            fields=dict(fields or {}),
            reason=reason,
            first_response_due=first_due,
            resolution_due=resolution_due,
        )
    if customer.owner == Owner.BOT:
        await transition(tx, customer, ticket, Owner.QUEUED, "bot", reason)
    turn.ticket_id = ticket.id
    return ticket


async def acknowledge_queued(turn: Turn, ticket: Ticket) -> None:
    """Tell a waiting customer where they stand, instead of the bot answering."""
    position = await turn.tx.queue_position(ticket)
    due = turn.services.policy.calendar.due_params(ticket.first_response_due)  # with the shop's time zone
    turn.say("handoff_waiting", number=ticket.number, position=position, **due)


class AlreadyClaimed(InvalidTransition):
    def __init__(self, number: str, holder: str) -> None:
        super().__init__(Owner.AGENT, Owner.AGENT)
        self.args = (f"ticket {number} is already taken by {holder}",)


class TicketClosed(Conflict):
    def __init__(self, ticket: Ticket) -> None:
        super().__init__(f"ticket {ticket.number} is {ticket.status.value}; reopen it first")


async def take_ticket(tx: TicketSession, ticket: Ticket, agent: Agent) -> None:
    """Make ``agent`` the assignee unless a colleague already is — decided by the database.

    Of two agents claiming at the same moment (two workers, two PostgreSQL transactions)
    exactly one wins (see ``assign_unless_taken``); the loser gets AlreadyClaimed.
    """
    if not await tx.assign_unless_taken(ticket.id, agent.id):
        holder = await tx.assignee_name(ticket.id)
        raise AlreadyClaimed(ticket.number, holder or "another agent")
    ticket.assignee_id = agent.id


async def claim(tx: TicketSession, ticket: Ticket, agent: Agent) -> None:
    """The agent takes the ticket and its conversation (the bot falls silent)."""
    customer = ticket.customer
    if not ticket.is_open:
        raise TicketClosed(ticket)
    await take_ticket(tx, ticket, agent)
    if ticket.status == TicketStatus.NEW:
        ticket.status = TicketStatus.OPEN
    await tx.add_event(ticket, agent.email, "claimed", {"agent": agent.email})
    if customer.owner == Owner.BOT:
        await transition(tx, customer, ticket, Owner.QUEUED, agent.email)
    await transition(tx, customer, ticket, Owner.AGENT, agent.email)


async def hand_back(tx: TicketSession, ticket: Ticket, actor: str) -> None:
    """Return the conversation to the bot without resolving (no rating asked)."""
    customer = ticket.customer
    if customer.handoff_ticket_id != ticket.id or customer.owner == Owner.BOT:
        raise InvalidTransition(customer.owner, Owner.BOT)
    ticket.status = TicketStatus.PENDING
    await transition(tx, customer, ticket, Owner.BOT, actor, "handed back")


async def resolve(tx: TicketSession, ticket: Ticket, actor: str) -> None:
    """Resolve the ticket; a conversation handed off on it returns to the bot."""
    if not ticket.is_open:
        raise InvalidTransition(Owner.BOT, Owner.BOT)
    now = utcnow()
    ticket.status = TicketStatus.RESOLVED
    ticket.resolved_at = now
    await tx.add_event(ticket, actor, "resolved", {})
    customer = ticket.customer
    if customer.handoff_ticket_id == ticket.id and customer.owner != Owner.BOT:
        customer.owner = Owner.BOT
        customer.handoff_ticket_id = None
        await tx.add_event(ticket, actor, "owner_changed", {"from": "agent", "to": "bot", "reason": "resolved"})


async def human_handoff(turn: Turn) -> None:
    """The customer asked for a person."""
    ticket = await escalate(
        turn,
        kind=TicketKind.HANDOFF,
        subject=turn.msg.text[:120] or "Customer asked for a human",
        reason="customer asked for a human",
        reuse_open=True,
    )
    turn.say("handoff_queued", number=ticket.number)
    await acknowledge_queued(turn, ticket)


# Messages that continue a problem: what the bot would otherwise pass to a person or not
# understand. A pre-sale question, a status check or a "thanks!" after the resolution is
# answered by the bot and leaves the resolved ticket alone.
REOPENING_INTENTS = frozenset({"complaint", "human_handoff", "out_of_scope"})


async def reopen_on_return(turn: Turn) -> Ticket | None:
    """The customer writes again soon after an agent resolved their ticket: reopen it.

    The ticket goes back to the queue (its assignee kept, so it is in their "mine" list),
    the message is forwarded to it, and the customer is told. Button presses (ratings) and
    closing remarks never reopen.
    """
    window = turn.services.policy.reopen_hours
    if window <= 0 or turn.msg.payload or not turn.msg.text.strip():
        return None
    if turn.prediction.intent not in REOPENING_INTENTS:
        return None
    since = turn.now() - timedelta(hours=window)
    ticket = await turn.tx.latest_resolved_ticket(turn.customer.id, since)
    if ticket is None:
        return None
    ticket.status = TicketStatus.OPEN
    ticket.resolved_at = None
    await turn.tx.add_event(ticket, "customer", "reopened", {"reason": "customer wrote again"})
    if turn.customer.owner == Owner.BOT:
        await transition(turn.tx, turn.customer, ticket, Owner.QUEUED, "customer", "customer wrote again")
    turn.ticket_id = ticket.id
    await turn.tx.add_event(ticket, "customer", "customer_message", {"text": turn.msg.text[:500]})
    turn.say("ticket_reopened", number=ticket.number)
    return ticket
