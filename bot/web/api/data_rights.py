"""Customer data rights over the API (admins only): export everything, erase a customer.

What erasing keeps and removes is defined in ``storage/data_rights.py``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks
from fastapi.responses import JSONResponse

from bot.app import App
from bot.web.api.schemas import RowId
from bot.web.auth import AdminAgent
from storage.data_rights import erase_customer, export_customer, vacuum_erased


def build_router(app: App) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["customers"])

    @router.get("/customers/{customer_id}/export", summary="Everything stored about one customer (admin)")
    async def export(customer_id: RowId, _admin: AdminAgent) -> JSONResponse:
        async with app.tickets.session() as tx:
            data = await export_customer(tx, customer_id)
        return JSONResponse(
            data,
            headers={"Content-Disposition": f'attachment; filename="deskbot-customer-{customer_id}.json"'},
        )

    @router.delete("/customers/{customer_id}", summary="Erase a customer's personal data (admin)")
    async def erase(customer_id: RowId, admin: AdminAgent, background: BackgroundTasks) -> dict[str, Any]:
        async with app.tickets.session() as tx:
            result = await erase_customer(tx, customer_id, actor=admin.email, state=app.state)
        if app.settings.retention.vacuum_after_erase:  # after the answer: VACUUM may take a while
            background.add_task(vacuum_erased, app.tickets)
        return {
            "erased": result.customer_id,
            "messages": result.messages,
            "tickets": result.tickets,
            "identities": result.identities,
            "orders": result.orders,
        }

    return router
