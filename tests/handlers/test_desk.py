"""AgentDesk and canned responses against the store itself, on both databases."""

from __future__ import annotations

import asyncio

import pytest

from desk.canned import render
from handlers.handoff import AlreadyClaimed, take_ticket
from storage.models import Agent, Customer, Ticket, TicketKind
from storage.tickets import SqlTicketStore, TicketSession


async def _ticket(tx: TicketSession, name: str | None = "Ada") -> tuple[Customer, Ticket]:
    customer, _ = await tx.resolve_customer("rest", "c1", "c1", display_name=name)
    ticket = await tx.open_ticket(customer, kind=TicketKind.RETURN, subject="return", channel="rest", actor="bot",
                                  order_id="A10234")
    loaded = await tx.get_ticket(ticket.id)
    assert loaded is not None
    return customer, loaded


@pytest.mark.parametrize("ticket_store", ["postgres"], indirect=True)
async def test_interleaved_claims_in_two_transactions_have_one_winner(ticket_store: SqlTicketStore) -> None:
    """Both transactions read the ticket unassigned before either writes: only the UPDATE's
    own condition, re-checked by PostgreSQL after the first commit, can stop the second."""
    async with ticket_store.session() as tx:
        _, ticket = await _ticket(tx)
        sam = await tx.add_agent("sam@example.com", "Sam")
        kim = await tx.add_agent("kim@example.com", "Kim")
        ticket_id, agents = ticket.id, (sam, kim)
    both_read = asyncio.Barrier(2)
    outcomes: dict[str, str] = {}

    async def claim_as(agent: Agent) -> None:
        try:
            async with ticket_store.session() as tx:
                loaded = await tx.get_ticket(ticket_id)
                assert loaded is not None and loaded.assignee_id is None
                await both_read.wait()
                await take_ticket(tx, loaded, agent)
            outcomes[agent.email] = "won"
        except AlreadyClaimed as exc:
            outcomes[agent.email] = str(exc)

    await asyncio.gather(*(claim_as(a) for a in agents))
    assert sorted(outcomes.values())[1] == "won"
    loser = next(v for v in outcomes.values() if v != "won")
    assert "already taken by" in loser
    async with ticket_store.session() as tx:
        final = await tx.get_ticket(ticket_id)
        assert final is not None
        winner = next(email for email, v in outcomes.items() if v == "won")
        assert final.assignee is not None and final.assignee.email == winner


async def test_canned_placeholders_are_filled_once_and_as_text(ticket_store: SqlTicketStore) -> None:
    async with ticket_store.session() as tx:
        _, ticket = await _ticket(tx, name="{agent_name} <b>Bob</b>")
        agent = await tx.add_agent("sam@example.com", "Sam")
        text = render("Hi {customer_name}, {agent_name} here about {ticket_number} / {order_id}. {unknown}",
                      ticket, agent)
    assert text == f"Hi {{agent_name}} <b>Bob</b>, Sam here about {ticket.number} / A10234. {{unknown}}"
