"""The catch-up after a restart: escalated tickets that never made it to the group.

A ticket whose posting was interrupted (a shutdown while its topic was queued, an event the
bus lost) is found at start-up (``telegram_links.unposted_handoffs``) and handed to the
poster as a ``CATCH_UP`` event — posted then instead of never.
"""

from __future__ import annotations

from storage import telegram_links
from storage.events import BusEvent
from storage.tickets import TicketStore

CATCH_UP = "telegram_catch_up"  # internal event kind: post a ticket found unposted at start-up


async def missed_tickets(tickets: TicketStore) -> list[BusEvent]:
    """One ``CATCH_UP`` event per escalated ticket not (fully) posted yet, oldest first."""
    async with tickets.session() as tx:
        missing = await telegram_links.unposted_handoffs(tx)
    return [BusEvent(kind=CATCH_UP, ticket_id=ticket_id, ticket_number=number, actor="deskbot")
            for ticket_id, number in missing]
