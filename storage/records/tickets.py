"""Tickets and their audit events (published on the bus after the commit)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.orm import joinedload, selectinload

from common.errors import TicketNotFound
from storage.events import BusEvent
from storage.models import (
    Agent,
    Customer,
    Owner,
    Priority,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketStatus,
    parse_ticket_number,
    utcnow,
)
from storage.records.base import Records

TICKET_WITH_PEOPLE = (
    select(Ticket)
    .where(Ticket.id == bindparam("ticket_id"))
    .options(joinedload(Ticket.customer), joinedload(Ticket.assignee))
)
QUEUE_AHEAD = select(func.count(Customer.id)).where(
    Customer.owner == Owner.QUEUED,
    Customer.handoff_ticket_id.is_not(None),
    Customer.handoff_ticket_id <= bindparam("ticket_id"),
)


class TicketRecords(Records):
    async def open_ticket(
        self,
        customer: Customer,
        *,
        kind: TicketKind,
        subject: str,
        channel: str,
        actor: str,
        priority: Priority = Priority.NORMAL,
        order_id: str | None = None,
        fields: dict[str, Any] | None = None,
        reason: str | None = None,
        first_response_due: datetime | None = None,
        resolution_due: datetime | None = None,
    ) -> Ticket:
        now = utcnow()
        ticket = Ticket(
            kind=kind,
            status=TicketStatus.NEW,
            priority=priority,
            subject=subject[:300],
            order_id=order_id,
            fields=dict(fields or {}),
            customer_id=customer.id,
            channel=channel,
            escalation_reason=reason,
            first_response_due=first_response_due,
            resolution_due=resolution_due,
            created_at=now,
            updated_at=now,
        )
        self.db.add(ticket)
        await self.db.flush()
        await self.add_event(
            ticket,
            actor,
            "created",
            {"kind": kind.value, "priority": priority.value, "order_id": order_id, "reason": reason},
        )
        return ticket

    async def add_event(self, ticket: Ticket, actor: str, kind: str, data: dict[str, Any] | None = None) -> TicketEvent:
        now = utcnow()
        row = TicketEvent(ticket_id=ticket.id, actor=actor, kind=kind, data=dict(data or {}), created_at=now)
        self.db.add(row)
        ticket.updated_at = now
        self.pending_events.append(
            BusEvent(kind=kind, ticket_id=ticket.id, ticket_number=ticket.number, actor=actor, data=row.data, at=now)
        )
        return row

    async def get_ticket(self, ticket_id: int) -> Ticket | None:
        """The ticket with its customer and assignee loaded (one query)."""
        return (await self.db.execute(TICKET_WITH_PEOPLE, {"ticket_id": ticket_id})).scalar_one_or_none()

    async def ticket_by_number(self, number: str) -> Ticket:
        ticket_id = parse_ticket_number(number)
        ticket = await self.get_ticket(ticket_id) if ticket_id is not None else None
        if ticket is None:
            raise TicketNotFound(number)
        return ticket

    async def list_tickets(
        self,
        *,
        status: TicketStatus | None = None,
        kind: TicketKind | None = None,
        customer_id: int | None = None,
        limit: int = 100,
    ) -> Sequence[Ticket]:
        query = select(Ticket).options(selectinload(Ticket.customer)).order_by(Ticket.id.desc()).limit(limit)
        if status is not None:
            query = query.where(Ticket.status == status)
        if kind is not None:
            query = query.where(Ticket.kind == kind)
        if customer_id is not None:
            query = query.where(Ticket.customer_id == customer_id)
        return (await self.db.execute(query)).scalars().all()

    async def open_tickets(self, customer_id: int) -> Sequence[Ticket]:
        return (
            (
                await self.db.execute(
                    select(Ticket)
                    .where(
                        Ticket.customer_id == customer_id,
                        Ticket.status.not_in([TicketStatus.RESOLVED, TicketStatus.CLOSED]),
                    )
                    .order_by(Ticket.id)
                )
            )
            .scalars()
            .all()
        )

    async def tickets_by_status(self) -> dict[TicketStatus, int]:
        """How many tickets are in each status, every status present (0 when none): for
        monitoring (``/metrics``); ``ix_tickets_status_priority`` answers it."""
        query = select(Ticket.status, func.count()).group_by(Ticket.status)
        counts = {status: 0 for status in TicketStatus}
        for status, count in await self.db.execute(query):
            counts[TicketStatus(status)] = int(count)
        return counts

    async def count_tickets_since(self, customer_id: int, kind: TicketKind, since: datetime) -> int:
        found = await self.db.execute(
            select(func.count(Ticket.id)).where(
                Ticket.customer_id == customer_id, Ticket.kind == kind, Ticket.created_at >= since
            )
        )
        return int(found.scalar_one())

    async def queue_position(self, ticket: Ticket) -> int:
        """1-based place among tickets waiting for an agent (queued customers)."""
        found = await self.db.execute(QUEUE_AHEAD, {"ticket_id": ticket.id})
        return max(1, int(found.scalar_one()))

    async def ticket_events(self, ticket_id: int) -> Sequence[TicketEvent]:
        query = select(TicketEvent).where(TicketEvent.ticket_id == ticket_id).order_by(TicketEvent.id)
        return (await self.db.execute(query)).scalars().all()

    async def assign_unless_taken(self, ticket_id: int, agent_id: int) -> bool:
        """Make the agent the assignee unless a colleague already is; False when one is.

        One conditional ``UPDATE``: of two agents taking the ticket at the same moment (two
        PostgreSQL transactions) the second one's row re-check sees the first one's assignee
        and updates nothing, so exactly one wins.
        """
        taken = await self.db.execute(
            update(Ticket)
            .where(Ticket.id == ticket_id, or_(Ticket.assignee_id.is_(None), Ticket.assignee_id == agent_id))
            .values(assignee_id=agent_id, updated_at=utcnow())
            .returning(Ticket.id)
            .execution_options(synchronize_session="fetch")
        )
        return taken.first() is not None

    async def assignee_name(self, ticket_id: int) -> str | None:
        """The name of the agent the ticket is assigned to now, as stored."""
        query = select(Agent.name).join(Ticket, Ticket.assignee_id == Agent.id).where(Ticket.id == ticket_id)
        return (await self.db.execute(query)).scalar_one_or_none()

    async def latest_resolved_ticket(self, customer_id: int, since: datetime) -> Ticket | None:
        """The customer's ticket an agent resolved most recently, at ``since`` or later
        (an assignee, not merged away): the one a returning customer reopens."""
        query = (
            select(Ticket)
            .where(
                Ticket.customer_id == customer_id,
                Ticket.status == TicketStatus.RESOLVED,
                Ticket.assignee_id.is_not(None),
                Ticket.merged_into_id.is_(None),
                Ticket.resolved_at >= since,
            )
            .order_by(Ticket.resolved_at.desc(), Ticket.id.desc())
            .limit(1)
        )
        return (await self.db.execute(query)).scalar_one_or_none()

    async def move_notes(self, from_ticket_id: int, to_ticket_id: int) -> None:
        """Agents' internal notes move to another ticket (a merge); other events stay."""
        await self.db.execute(
            update(TicketEvent)
            .where(TicketEvent.ticket_id == from_ticket_id, TicketEvent.kind == "note")
            .values(ticket_id=to_ticket_id),
            execution_options={"synchronize_session": False},
        )
