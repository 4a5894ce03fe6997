"""A ticket's event as one line in its topic (or None: nothing to show).

Customer messages, replies agents wrote elsewhere (web workspace, CLI), notes, claims,
priority changes: each is worded by ``cards.py``; here the names behind them are looked up
(the customer's display name, the agent's name for an e-mail). A reply typed in the group
is visible there already and is not repeated.
"""

from __future__ import annotations

from bot.channels.telegram.agents import cards
from bot.channels.telegram.agents.ledger import typed_in_group
from storage.events import BusEvent
from storage.models import Owner
from storage.tickets import TicketSession


async def line_for(tx: TicketSession, event: BusEvent) -> str | None:
    number = event.ticket_number or ""
    if event.kind == "customer_message":
        ticket = await tx.get_ticket(event.ticket_id or 0)
        name = (ticket.customer.display_name if ticket else None) or "Customer"
        files = event.data.get("attachments")
        return cards.customer_line(number, name, str(event.data.get("text") or ""),
                                   files if isinstance(files, list) else None)
    if event.kind == "agent_reply":
        message_id = event.data.get("message_id")
        replied = [m for m in await tx.ticket_messages(event.ticket_id or 0) if m.id == message_id]
        if not replied or typed_in_group(replied[0].delivery_key):
            return None  # gone, or typed in this group: already visible here
        return cards.agent_reply_line(number, await actor_name(tx, event.actor), replied[0].text)
    if event.kind == "owner_changed" and event.data.get("to") == Owner.QUEUED.value:
        return f"🔔 {number} is waiting for an agent again"
    return cards.event_line(event, await actor_name(tx, event.actor))


async def actor_name(tx: TicketSession, actor: str) -> str:
    """An agent's name for their e-mail; anything else (``deskbot``, a customer) as it is."""
    if "@" in actor:
        agent = await tx.agent_by_email(actor)
        if agent is not None:
            return agent.name
    return actor
