"""Queries of the SLA checker: open tickets whose due times are near, and alerts already raised."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import selectinload

from storage.models import Ticket, TicketEvent, TicketStatus
from storage.tickets import TicketSession

SLA_ALERT = "sla_alert"


async def open_tickets_due_by(tx: TicketSession, moment: datetime, limit: int = 500) -> Sequence[Ticket]:
    """Open tickets with an unmet due time at or before ``moment``, most overdue first."""
    query = (
        select(Ticket)
        .options(selectinload(Ticket.customer))
        .where(
            Ticket.status.not_in([TicketStatus.RESOLVED, TicketStatus.CLOSED]),
            or_(
                and_(Ticket.first_response_at.is_(None), Ticket.first_response_due <= moment),
                Ticket.resolution_due <= moment,
            ),
        )
        .order_by(Ticket.first_response_due, Ticket.id)
        .limit(limit)
    )
    return (await tx.db.execute(query)).scalars().all()


async def sla_alerts_of(tx: TicketSession, ticket_ids: Sequence[int]) -> Sequence[TicketEvent]:
    if not ticket_ids:
        return []
    query = select(TicketEvent).where(TicketEvent.ticket_id.in_(ticket_ids), TicketEvent.kind == SLA_ALERT)
    return (await tx.db.execute(query)).scalars().all()
