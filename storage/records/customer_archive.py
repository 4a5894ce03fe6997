"""A customer's archive: their tickets, newest first, as the customer card and ticket view list them.

Each ticket comes with its customer and assignee loaded, so listing them needs no more queries.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from storage.models import Ticket
from storage.records.base import Records


class CustomerArchiveRecords(Records):
    async def customer_tickets(self, customer_id: int, *, limit: int, besides: int | None = None) -> Sequence[Ticket]:
        """The customer's ``limit`` newest tickets, leaving out ticket id ``besides`` (the one on screen)."""
        query = select(Ticket).where(Ticket.customer_id == customer_id)
        if besides is not None:
            query = query.where(Ticket.id != besides)
        query = (
            query.options(joinedload(Ticket.customer), joinedload(Ticket.assignee))
            .order_by(Ticket.id.desc())
            .limit(limit)
        )
        return (await self.db.execute(query)).scalars().all()
