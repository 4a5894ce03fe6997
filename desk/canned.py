"""Canned responses: replies agents reuse, with placeholders filled from the ticket.

Placeholders: ``{customer_name}``, ``{ticket_number}``, ``{order_id}``, ``{agent_name}``.
Anything else in braces is left as written (a typo shows up in the preview instead of
failing), and the values are inserted as plain text — a customer's name containing
``{agent_name}`` is not expanded a second time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from common.errors import NotFound
from storage.models import Agent, CannedResponse, Ticket, utcnow
from storage.tickets import TicketSession

PLACEHOLDERS = ("customer_name", "ticket_number", "order_id", "agent_name")
PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")


def render(text: str, ticket: Ticket, agent: Agent) -> str:
    values = {
        "customer_name": ticket.customer.display_name or "",
        "ticket_number": ticket.number,
        "order_id": ticket.order_id or "",
        "agent_name": agent.name,
    }
    # One pass over the template: substituted values are never scanned again.
    return PLACEHOLDER.sub(lambda m: values[m.group(1)], text)


async def list_canned(tx: TicketSession) -> Sequence[CannedResponse]:
    return await tx.canned_responses()


async def get_canned(tx: TicketSession, canned_id: int) -> CannedResponse:
    row = await tx.canned_response(canned_id)
    if row is None:
        raise NotFound(f"no canned response with id {canned_id}")
    return row


async def add_canned(tx: TicketSession, title: str, text: str, author: Agent) -> CannedResponse:
    """A new canned response; Conflict when the title is taken."""
    return await tx.save_canned(title.strip(), text, author.id, utcnow())


async def delete_canned(tx: TicketSession, canned_id: int) -> None:
    await tx.delete_canned(await get_canned(tx, canned_id))
