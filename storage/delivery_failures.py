"""A reply that could not be delivered, recorded the one way whoever gave up on it.

The row is FAILED; a customer who blocked the bot is marked unreachable (their next message
clears it); the ticket gets a ``delivery_failed`` event, which agents see. Written by the
outbox reader (``bot/channels/outbox.py``: a permanent error, too many attempts, a send cut
off by a crash) and by the pipeline (a reply it could not hand over), in the transaction
that fails the row.
"""

from __future__ import annotations

from storage.models import Message
from storage.tickets import TicketSession, TicketStore


async def record_failure(
    tx: TicketSession, message: Message, error: str, *, unreachable: bool = False
) -> None:
    """The ``delivery_failed`` side of a failed row: the customer marked unreachable when they
    blocked the bot (their next message clears it), the event on the ticket for agents."""
    if unreachable:
        customer = await tx.get_customer(message.customer_id)
        if customer is not None:
            customer.unreachable = True
    if message.ticket_id is not None:
        ticket = await tx.get_ticket(message.ticket_id)
        if ticket is not None:
            await tx.add_event(ticket, "system", "delivery_failed", {"message_id": message.id, "error": error[:500]})


async def fail_delivery(store: TicketStore, message_id: int, error: str, *, unreachable: bool = False) -> None:
    """Mark a row FAILED whatever its status, with ``record_failure``'s event, in one transaction."""
    async with store.session() as tx:
        await tx.mark_failed(message_id, error[:1000])
        message = await tx.get_message(message_id)
        if message is not None:
            await record_failure(tx, message, error, unreachable=unreachable)
