"""Canned responses: replies agents reuse, with placeholders filled from the ticket.

Placeholders: ``{customer_name}``, ``{ticket_number}``, ``{order_id}``, ``{agent_name}``.
Anything else in braces is left as written (a typo shows up in the preview instead of
failing), and the values are inserted as plain text — a customer's name containing
``{agent_name}`` is not expanded a second time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlalchemy import select

from common.errors import Conflict, NotFound
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
    return (await tx.db.execute(select(CannedResponse).order_by(CannedResponse.title))).scalars().all()


async def get_canned(tx: TicketSession, canned_id: int) -> CannedResponse:
    row = await tx.db.get(CannedResponse, canned_id)
    if row is None:
        raise NotFound(f"no canned response with id {canned_id}")
    return row


async def add_canned(tx: TicketSession, title: str, text: str, author: Agent) -> CannedResponse:
    title = title.strip()
    exists = (await tx.db.execute(select(CannedResponse.id).where(CannedResponse.title == title))).first()
    if exists is not None:
        raise Conflict(f"a canned response titled {title!r} exists already")
    row = CannedResponse(title=title, text=text, created_by_id=author.id, created_at=utcnow())
    tx.db.add(row)
    await tx.db.flush()
    return row


async def delete_canned(tx: TicketSession, canned_id: int) -> None:
    await tx.db.delete(await get_canned(tx, canned_id))
