"""Ticket and order status: only the customer's own tickets and orders are shown."""

from __future__ import annotations

from handlers.context import Turn
from knowledge.order_ids import order_key
from storage.models import parse_ticket_number


async def ticket_status(turn: Turn) -> None:
    wanted = turn.prediction.entity("ticket")
    if wanted:
        ticket_id = parse_ticket_number(wanted)
        ticket = await turn.tx.get_ticket(ticket_id) if ticket_id else None
        if ticket is None or ticket.customer_id != turn.customer.id:
            turn.say("ticket_not_found", number=wanted.upper())
            return
        tickets = [ticket]
    else:
        tickets = list(await turn.tx.list_tickets(customer_id=turn.customer.id, limit=5))
    if not tickets:
        turn.say("no_tickets")
        return
    lines = [
        turn.t(
            "ticket_line",
            number=t.number,
            kind=turn.t(f"kind_{t.kind.value}"),
            status=turn.t(f"status_{t.status.value}"),
            date=t.created_at.strftime("%Y-%m-%d"),
        )
        for t in tickets
    ]
    turn.say("ticket_list", lines="\n".join(lines))


async def order_status(turn: Turn) -> None:
    raw = turn.prediction.entity("order_id")
    orders = list(await turn.tx.orders_for(turn.customer))
    if raw:
        wanted = turn.services.shop.order_ids.canonical(raw)  # as the shop spells it
        mine = [o for o in orders if order_key(o.order_id) == order_key(wanted)]
        if not mine:
            order = await turn.tx.get_order(wanted)
            # Someone else's order: confirm only that it exists, never its details.
            turn.say("order_not_yours" if order is not None else "order_not_found", order_id=wanted)
            return
        orders = mine
    if not orders:
        example = turn.services.shop.order_ids.example()
        turn.say("no_orders" if example else "no_orders_plain", example=example)
        return
    lines = [
        turn.t(
            "order_line",
            order_id=o.order_id,
            status=turn.t(f"order_{o.status}") if o.status else "-",
            date=o.ordered_at.strftime("%Y-%m-%d"),
            items=", ".join(str(i.get("name")) for i in o.items),
        )
        for o in orders[:5]
    ]
    turn.say("order_list", lines="\n".join(lines))


ROUTES = {"ticket_status": ticket_status, "order_status": order_status}
