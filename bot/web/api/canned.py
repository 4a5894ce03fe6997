"""``/api/v1/canned-responses``: every agent uses them, admins curate them."""

from __future__ import annotations

from fastapi import APIRouter, Response

from bot.app import App
from bot.web.api.schemas import CannedIn, CannedOut, RowId
from bot.web.auth import AdminAgent, CurrentAgent
from desk import canned
from storage.models import CannedResponse


def _out(row: CannedResponse) -> CannedOut:
    return CannedOut(id=row.id, title=row.title, text=row.text, created_at=row.created_at)


def build_router(app: App) -> APIRouter:
    router = APIRouter(prefix="/api/v1/canned-responses", tags=["canned responses"])

    @router.get("", summary="All canned responses, by title")
    async def list_canned(_agent: CurrentAgent) -> list[CannedOut]:
        async with app.tickets.session() as tx:
            return [_out(r) for r in await canned.list_canned(tx)]

    @router.post("", status_code=201, summary="Add a canned response (admin); placeholders: "
                 "{customer_name} {ticket_number} {order_id} {agent_name}")
    async def add_canned(body: CannedIn, admin: AdminAgent) -> CannedOut:
        async with app.tickets.session() as tx:
            return _out(await canned.add_canned(tx, body.title, body.text, admin))

    @router.delete("/{canned_id}", status_code=204, summary="Delete a canned response (admin)")
    async def delete_canned(canned_id: RowId, _admin: AdminAgent) -> Response:
        async with app.tickets.session() as tx:
            await canned.delete_canned(tx, canned_id)
        return Response(status_code=204)

    return router
