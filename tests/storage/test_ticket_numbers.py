"""Regression: a customer typing an absurdly long ticket number crashed the turn (int32 overflow)."""

from __future__ import annotations

import pytest

from storage.models import MAX_TICKET_ID, TICKET_NUMBER_OFFSET, parse_ticket_number
from storage.tickets import SqlTicketStore


@pytest.mark.parametrize(
    ("typed", "ticket_id"),
    [("T-1042", 42), ("t1042", 42), ("1042", 42), ("T-1000", None), ("T-12ab", None), ("T-" + "9" * 40, None),
     (f"T-{MAX_TICKET_ID + TICKET_NUMBER_OFFSET}", MAX_TICKET_ID), (f"T-{MAX_TICKET_ID + TICKET_NUMBER_OFFSET + 1}", None)],
)
def test_parse_ticket_number(typed: str, ticket_id: int | None) -> None:
    assert parse_ticket_number(typed) == ticket_id


async def test_the_largest_number_is_a_lookup_not_an_error(ticket_store: SqlTicketStore) -> None:
    largest = parse_ticket_number(f"T-{MAX_TICKET_ID + TICKET_NUMBER_OFFSET}")
    assert largest is not None
    async with ticket_store.session() as tx:
        assert await tx.get_ticket(largest) is None
