"""``/api/v1/tickets`` and ``/api/v1/messages``: the queue, the ticket view and agents' actions.

Every action answers with the whole ticket as it is after the action (one more read), so
a dashboard renders what is stored, not what it guessed. Conflicts (a colleague claimed
it first, resolving a resolved ticket) are 409 and change nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query

from bot.app import App
from bot.web.api.schemas import (
    AssignIn,
    MergeIn,
    PriorityIn,
    RenderCannedIn,
    RenderedCanned,
    RowId,
    StatusIn,
    TextIn,
    TicketDetail,
    TicketPage,
    customer_out,
    event_out,
    merged_into,
    message_out,
    note_out,
    order_out,
    ticket_summary,
)
from bot.web.auth import CurrentAgent
from desk import canned
from desk.agent_desk import DeskResult
from storage.models import Priority, TicketKind, TicketStatus
from storage.queue import CONTROL_CHARACTER, MAX_LIMIT, MAX_SEARCH_LENGTH, QueueQuery, queue_page
from storage.tickets import TicketSession

OTHER_TICKETS_SHOWN = 50
TicketNumber = Annotated[str, Path(max_length=40, description="a ticket number such as T-1042")]


async def ticket_detail(tx: TicketSession, number: str, now: datetime) -> TicketDetail:
    """Everything the ticket view shows, in a handful of queries."""
    ticket = await tx.ticket_by_number(number)
    customer = ticket.customer
    messages = await tx.ticket_messages(ticket.id)
    events = await tx.ticket_events(ticket.id)
    notes = [e for e in events if e.kind == "note"]
    agent_ids = {m.agent_id for m in messages if m.agent_id is not None}
    agent_ids |= {n.data["agent_id"] for n in notes if isinstance(n.data.get("agent_id"), int)}
    agents = await tx.agents_by_id(agent_ids)
    others = await tx.customer_tickets(customer.id, limit=OTHER_TICKETS_SHOWN, besides=ticket.id)
    order = await tx.get_order(ticket.order_id) if ticket.order_id else None
    summary = ticket_summary(ticket, now)
    return TicketDetail(
        **summary.model_dump(exclude={"customer"}),
        customer=customer_out(customer, await tx.identities(customer.id), others, now),
        fields=dict(ticket.fields or {}),
        order_id=ticket.order_id,
        order=order_out(order),
        escalation_reason=ticket.escalation_reason,
        rating_comment=ticket.rating_comment,
        merged_into=merged_into(ticket),
        messages=[message_out(m, agents) for m in messages],
        notes=[note_out(n, agents) for n in notes],
        events=[event_out(e) for e in events],
    )


def build_router(app: App) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["tickets"])
    desk = app.desk

    async def detail(number: str) -> TicketDetail:
        async with app.tickets.session() as tx:
            return await ticket_detail(tx, number, app.services.clock())

    async def act(action: Callable[[], Awaitable[DeskResult | int]], number: str) -> TicketDetail:
        result = await action()
        return await detail(result.ticket_number if isinstance(result, DeskResult) else number)

    @router.get("/tickets", summary="The queue: filtered, sorted by SLA urgency by default, keyset-paged")
    async def list_tickets(
        agent: CurrentAgent,
        status: TicketStatus | None = None,
        kind: TicketKind | None = None,
        priority: Priority | None = None,
        assignee: Annotated[str | None, Query(max_length=20, description="mine, unassigned or an agent id")] = None,
        channel: Annotated[str | None, Query(max_length=32)] = None,
        q: Annotated[str | None, Query(max_length=MAX_SEARCH_LENGTH, description="subject, customer, T-number")] = None,
        sort: Literal["sla", "newest", "updated"] = "sla",
        cursor: Annotated[str | None, Query(max_length=1000)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    ) -> TicketPage:
        for name, value in (("assignee", assignee), ("channel", channel), ("q", q), ("cursor", cursor)):
            if value is not None and CONTROL_CHARACTER.search(value):
                # A NUL was a 503 on PostgreSQL and matched every ticket on SQLite.
                raise HTTPException(422, f"'{name}' must not contain control characters")
        query = QueueQuery(
            status=status, kind=kind, priority=priority, assignee=assignee, channel=channel, q=q, sort=sort,
            cursor=cursor, limit=limit,
        )
        now = app.services.clock()
        async with app.tickets.session() as tx:
            page = await queue_page(tx, query, agent_id=agent.id, now=now)
            return TicketPage(items=[ticket_summary(t, now) for t in page.items], next_cursor=page.next_cursor)

    @router.get("/tickets/{number}", summary="One ticket: conversation, fields, order, customer, notes, audit log")
    async def get_ticket(number: TicketNumber, _agent: CurrentAgent) -> TicketDetail:
        return await detail(number)

    @router.post("/tickets/{number}/claim", summary="Take the ticket and its conversation (409 if taken)")
    async def claim(number: TicketNumber, agent: CurrentAgent) -> TicketDetail:
        return await act(lambda: desk.claim(number, agent.email), number)

    @router.post("/tickets/{number}/assign", summary="Assign to an agent (null: unassign)")
    async def assign(number: TicketNumber, body: AssignIn, agent: CurrentAgent) -> TicketDetail:
        return await act(lambda: desk.assign(number, body.agent_id, agent.email), number)

    @router.post("/tickets/{number}/reply", summary="Reply to the customer on their own channel")
    async def reply(number: TicketNumber, body: TextIn, agent: CurrentAgent) -> TicketDetail:
        return await act(lambda: desk.reply(number, body.text, agent.email), number)

    @router.post("/tickets/{number}/notes", summary="Add an internal note (never sent to the customer)")
    async def add_note(number: TicketNumber, body: TextIn, agent: CurrentAgent) -> TicketDetail:
        return await act(lambda: desk.add_note(number, body.text, agent.email), number)

    @router.post("/tickets/{number}/priority", summary="Change the priority (SLA due times follow)")
    async def set_priority(number: TicketNumber, body: PriorityIn, agent: CurrentAgent) -> TicketDetail:
        return await act(lambda: desk.set_priority(number, body.priority, agent.email), number)

    @router.post("/tickets/{number}/status", summary="Change the status (resolved asks for a rating)")
    async def set_status(number: TicketNumber, body: StatusIn, agent: CurrentAgent) -> TicketDetail:
        return await act(lambda: desk.set_status(number, body.status, agent.email), number)

    @router.post("/tickets/{number}/merge", summary="Merge this duplicate into another ticket of the customer")
    async def merge(number: TicketNumber, body: MergeIn, agent: CurrentAgent) -> TicketDetail:
        return await act(lambda: desk.merge(number, body.into, agent.email), number)

    @router.post("/tickets/{number}/hand-back", summary="Give the conversation back to the bot (no rating)")
    async def hand_back(number: TicketNumber, agent: CurrentAgent) -> TicketDetail:
        return await act(lambda: desk.hand_back(number, agent.email), number)

    @router.post("/tickets/{number}/resolve", summary="Resolve and ask the customer for a rating")
    async def resolve(number: TicketNumber, agent: CurrentAgent) -> TicketDetail:
        return await act(lambda: desk.resolve(number, agent.email), number)

    @router.post("/tickets/{number}/reopen", summary="Open a resolved or closed ticket again")
    async def reopen(number: TicketNumber, agent: CurrentAgent) -> TicketDetail:
        return await act(lambda: desk.reopen(number, agent.email), number)

    @router.post("/messages/{message_id}/retry", summary="Queue a failed delivery again")
    async def retry(message_id: RowId, agent: CurrentAgent) -> TicketDetail:
        result = await desk.retry_delivery(message_id, agent.email)
        return await detail(result.ticket_number)

    @router.post("/tickets/{number}/render-canned", summary="A canned response with this ticket's placeholders")
    async def render_canned(number: TicketNumber, body: RenderCannedIn, agent: CurrentAgent) -> RenderedCanned:
        async with app.tickets.session() as tx:
            ticket = await tx.ticket_by_number(number)
            row = await canned.get_canned(tx, body.id)
            return RenderedCanned(text=canned.render(row.text, ticket, agent))

    return router
