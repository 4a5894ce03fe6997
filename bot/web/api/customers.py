"""``/api/v1/customers/{id}``: the customer's archive (identities, tickets, tags, notes)."""

from __future__ import annotations

from fastapi import APIRouter

from bot.app import App
from bot.web.api.schemas import CustomerOut, CustomerUpdate, RowId, customer_out
from bot.web.auth import CurrentAgent
from common.errors import NotFound
from storage.models import Customer
from storage.tickets import TicketSession

TICKETS_SHOWN = 200


async def _archive(tx: TicketSession, customer: Customer, app: App) -> CustomerOut:
    tickets = await tx.customer_tickets(customer.id, limit=TICKETS_SHOWN)
    return customer_out(customer, await tx.identities(customer.id), tickets, app.services.clock())


async def _customer(tx: TicketSession, customer_id: int) -> Customer:
    customer = await tx.get_customer(customer_id)
    if customer is None:
        raise NotFound(f"no customer with id {customer_id}")
    return customer


def build_router(app: App) -> APIRouter:
    router = APIRouter(prefix="/api/v1/customers", tags=["customers"])

    @router.get("/{customer_id}", summary="A customer's archive: identities, tickets, tags, notes")
    async def get_customer(customer_id: RowId, _agent: CurrentAgent) -> CustomerOut:
        async with app.tickets.session() as tx:
            return await _archive(tx, await _customer(tx, customer_id), app)

    @router.patch("/{customer_id}", summary="Change a customer's tags or notes")
    async def update_customer(customer_id: RowId, body: CustomerUpdate, agent: CurrentAgent) -> CustomerOut:
        async with app.tickets.session() as tx:
            customer = await _customer(tx, customer_id)
            if body.tags is not None:
                # Order kept, duplicates dropped, compared case-insensitively.
                seen: dict[str, str] = {}
                for tag in (t.strip() for t in body.tags):
                    if tag and tag.lower() not in seen:
                        seen[tag.lower()] = tag
                customer.tags = list(seen.values())
            if "notes" in body.model_fields_set:
                customer.notes = body.notes.strip() if body.notes and body.notes.strip() else None
            return await _archive(tx, customer, app)

    return router
