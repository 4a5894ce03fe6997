"""Ticket and order status: only the customer's own tickets and orders are shown.

An order that is not linked to the customer is shown once they give the e-mail or phone
written on it (in the same message or the next one, which links it to them); until then the
bot confirms only that the order exists.
"""

from __future__ import annotations

from handlers.context import Turn
from handlers.fallback import answer_from_faq
from handlers.order_access import contact_matches, link, owns
from knowledge.order_ids import order_key
from storage.models import Order, parse_ticket_number


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


FORM = "order_status"
"""The status question waiting for the e-mail or phone that proves the order (slot ``order_id``)."""


def _contact(turn: Turn) -> str | None:
    return turn.prediction.entity("email") or turn.prediction.entity("phone")


def gives_contact(turn: Turn) -> bool:
    """Whether the message answers "which e-mail or phone is on the order?"."""
    return _contact(turn) is not None


async def order_status(turn: Turn) -> None:
    raw = turn.prediction.entity("order_id")
    orders = list(await turn.tx.orders_for(turn.customer))
    if raw:
        wanted = turn.services.shop.order_ids.canonical(raw)  # as the shop spells it
        mine = [o for o in orders if order_key(o.order_id) == order_key(wanted)]
        if not mine:
            await _someone_elses(turn, wanted)
            return
        orders = mine
    if not orders:
        # "When will my package arrive if I order today?" reads as order status as well as a
        # shipping question: with no order to show, the FAQ's confident answer comes first.
        answer_from_faq(turn, confident=True)
        example = turn.services.shop.order_ids.example()
        turn.say("no_orders" if example else "no_orders_plain", example=example)
        return
    _list(turn, orders)


async def continue_order_status(turn: Turn) -> None:
    """The e-mail or phone after "which e-mail or phone is on order …?" (an id given with it wins)."""
    raw = turn.prediction.entity("order_id")
    wanted = turn.services.shop.order_ids.canonical(raw) if raw else str(turn.state.slots.get("order_id", ""))
    turn.state.end_form()
    await _someone_elses(turn, wanted)


async def _someone_elses(turn: Turn, wanted: str) -> None:
    """An order not linked to the customer: its status only with the e-mail or phone on it."""
    order = await turn.tx.get_order(wanted)
    if order is None:
        turn.say("order_not_found", order_id=wanted)
        return
    contact = _contact(turn)
    if owns(turn.customer, order) or (contact is not None and contact_matches(order, contact)):
        if contact is not None:
            link(order, turn.customer, contact)
        _list(turn, [order])
        return
    # Someone else's order, or not proven yet: confirm only that it exists, never its details.
    if contact is not None:
        turn.say("order_contact_mismatch", order_id=order.order_id)
        return
    turn.state.end_form()
    turn.state.form, turn.state.requested_slot = FORM, "contact"
    turn.state.slots = {"order_id": order.order_id}
    turn.say("order_not_yours", order_id=order.order_id)


def _list(turn: Turn, orders: list[Order]) -> None:
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
