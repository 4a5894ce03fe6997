"""A delivery key stored twice is ``DuplicateDelivery``; any other broken key stays what it is.

Run on SQLite and PostgreSQL (see ``ticket_store`` in conftest): each names the violated
key its own way.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from common.errors import DuplicateDelivery, StorageError
from storage.models import Author, DeliveryStatus, Direction
from storage.tickets import SqlTicketStore


def inbound_row(customer_id: int, text: str, delivery_key: str | None) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "channel": "rest",
        "chat_id": "ann",
        "direction": Direction.INBOUND,
        "author": Author.CUSTOMER,
        "text": text,
        "status": DeliveryStatus.RECEIVED,
        "delivery_key": delivery_key,
    }


async def test_a_stored_delivery_key_is_a_duplicate_delivery(ticket_store: SqlTicketStore) -> None:
    async with ticket_store.session() as tx:
        customer, _ = await tx.resolve_customer("rest", "ann", "ann")
        await tx.insert_messages([inbound_row(customer.id, "first", "k-1")])
    with pytest.raises(DuplicateDelivery, match="rest:k-1") as raised:
        async with ticket_store.session() as tx:
            await tx.insert_messages([inbound_row(customer.id, "again", "k-1")])
    assert isinstance(raised.value, StorageError) and isinstance(raised.value.__cause__, IntegrityError)
    async with ticket_store.session() as tx:
        assert [m.text for m in await tx.conversation(customer.id)] == ["first"]  # rolled back


async def test_another_broken_key_is_not_a_duplicate_delivery(ticket_store: SqlTicketStore) -> None:
    async with ticket_store.session() as tx:
        customer, _ = await tx.resolve_customer("rest", "ann", "ann")
        await tx.insert_messages([inbound_row(customer.id, "first", "k-1")])
    with pytest.raises(IntegrityError) as raised:  # a message without text (NOT NULL)
        async with ticket_store.session() as tx:
            await tx.insert_messages([inbound_row(customer.id, "x", "k-2") | {"text": None}])
    assert not isinstance(raised.value, DuplicateDelivery)
