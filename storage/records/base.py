"""The state one ``TicketSession`` shares across its aggregates' records (see storage/tickets.py)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from storage.events import BusEvent


class Records:
    """One transaction: the SQLAlchemy session and the events to publish after its commit."""

    def __init__(self, session: AsyncSession) -> None:
        self.db = session
        self.pending_events: list[BusEvent] = []
