"""The conversation-owner state machine, every transition, on both databases."""

from __future__ import annotations

import pytest

from handlers.handoff import ALLOWED, InvalidTransition, claim, hand_back, resolve, transition
from storage.models import Customer, Owner, Ticket, TicketKind, TicketStatus
from storage.tickets import SqlTicketStore, TicketSession


async def _setup(tx: TicketSession) -> tuple[Customer, Ticket]:
    customer, _ = await tx.resolve_customer("rest", "c1", "c1")
    ticket = await tx.open_ticket(customer, kind=TicketKind.HANDOFF, subject="help", channel="rest", actor="bot")
    return customer, ticket


@pytest.mark.parametrize(
    ("start", "wanted"),
    [(a, b) for a in Owner for b in Owner if a != b],
)
async def test_every_transition_is_allowed_or_refused(ticket_store: SqlTicketStore, start: Owner, wanted: Owner) -> None:
    async with ticket_store.session() as tx:
        customer, ticket = await _setup(tx)
        customer.owner = start
        customer.handoff_ticket_id = None if start == Owner.BOT else ticket.id
        if wanted in ALLOWED[start]:
            await transition(tx, customer, ticket, wanted, "tester")
            assert customer.owner == wanted
            assert customer.handoff_ticket_id == (None if wanted == Owner.BOT else ticket.id)
            events = [(e.kind, e.data) for e in await tx.ticket_events(ticket.id)]
            assert ("owner_changed", {"from": start.value, "to": wanted.value}) in events
        else:
            with pytest.raises(InvalidTransition):
                await transition(tx, customer, ticket, wanted, "tester")
            assert customer.owner == start


async def test_claim_hand_back_and_resolve(ticket_store: SqlTicketStore) -> None:
    async with ticket_store.session() as tx:
        customer, ticket = await _setup(tx)
        agent = await tx.add_agent("sam@example.com", "Sam")
        await transition(tx, customer, ticket, Owner.QUEUED, "bot")
        ticket = await tx.get_ticket(ticket.id)  # with its customer loaded
        assert ticket is not None
        await claim(tx, ticket, agent)
        assert customer.owner == Owner.AGENT and ticket.assignee_id == agent.id
        assert ticket.status == TicketStatus.OPEN
        await hand_back(tx, ticket, agent.email)
        assert customer.owner == Owner.BOT and ticket.status == TicketStatus.PENDING and ticket.is_open
        with pytest.raises(InvalidTransition):
            await hand_back(tx, ticket, agent.email)  # already with the bot
        await claim(tx, ticket, agent)
        await resolve(tx, ticket, agent.email)
        assert customer.owner == Owner.BOT and ticket.status == TicketStatus.RESOLVED
        with pytest.raises(InvalidTransition):
            await resolve(tx, ticket, agent.email)


async def test_a_second_agent_cannot_take_a_claimed_conversation(ticket_store: SqlTicketStore) -> None:
    async with ticket_store.session() as tx:
        customer, ticket = await _setup(tx)
        sam = await tx.add_agent("sam@example.com", "Sam")
        kim = await tx.add_agent("kim@example.com", "Kim")
        loaded = await tx.get_ticket(ticket.id)
        assert loaded is not None
        await claim(tx, loaded, sam)
        with pytest.raises(InvalidTransition):
            await claim(tx, loaded, kim)
        assert loaded.assignee_id == sam.id
