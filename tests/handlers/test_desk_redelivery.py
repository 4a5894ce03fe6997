"""An agent's reply redelivered with the same delivery key is ``DuplicateDelivery``, on both databases.

The agents' Telegram group passes ``agents:{update_id}``; a resent update must neither reach
the customer twice nor surface as a database error the group cannot tell apart.
"""

from __future__ import annotations

from common.errors import DuplicateDelivery
from desk.agent_desk import AgentDesk
from handlers.responses import Responses
from storage.models import Direction, TicketKind
from storage.tickets import SqlTicketStore


async def test_a_reply_redelivered_is_a_duplicate_and_stores_nothing(ticket_store: SqlTicketStore) -> None:
    async with ticket_store.session() as tx:
        customer, _ = await tx.resolve_customer("rest", "c1", "c1", display_name="Ada")
        ticket = await tx.open_ticket(customer, kind=TicketKind.RETURN, subject="return", channel="rest", actor="bot")
        await tx.add_agent("sam@example.com", "Sam")
        number, customer_id = ticket.number, customer.id
    desk = AgentDesk(ticket_store, Responses({"en": {}}))

    first = await desk.reply(number, "Hi Ada", "sam@example.com", delivery_key="agents:7")
    try:
        await desk.reply(number, "Hi Ada", "sam@example.com", delivery_key="agents:7")
    except DuplicateDelivery as exc:
        assert "agents:7" in str(exc)
    else:
        raise AssertionError("a redelivered reply was stored twice")

    async with ticket_store.session() as tx:
        outbound = [m for m in await tx.conversation(customer_id) if m.direction == Direction.OUTBOUND]
        assert [(m.id, m.text) for m in outbound] == [(first.message_id, "Hi Ada")]
        replies = [e for e in await tx.ticket_events(ticket.id) if e.kind == "agent_reply"]
        assert len(replies) == 1
