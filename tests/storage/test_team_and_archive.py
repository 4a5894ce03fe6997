"""The reads the agents' workspace asks the store for (storage/records/team.py and
customer_archive.py), on SQLite and PostgreSQL."""

from __future__ import annotations

from storage.models import TicketKind
from storage.tickets import SqlTicketStore


async def test_agents_by_id_finds_those_that_exist_in_one_go(ticket_store: SqlTicketStore) -> None:
    async with ticket_store.session() as tx:
        ann = await tx.add_agent("ann@example.com", "Ann")
        bob = await tx.add_agent("bob@example.com", "Bob")
        await tx.add_agent("cy@example.com", "Cy")
    async with ticket_store.session() as tx:
        found = await tx.agents_by_id([ann.id, bob.id, bob.id, 999_999])
        assert {agent_id: agent.name for agent_id, agent in found.items()} == {ann.id: "Ann", bob.id: "Bob"}
        assert await tx.agents_by_id([]) == {}


async def test_active_agents_in_role_counts_the_others_still_active(ticket_store: SqlTicketStore) -> None:
    async with ticket_store.session() as tx:
        ann = await tx.add_agent("ann@example.com", "Ann", role="admin")
        bob = await tx.add_agent("bob@example.com", "Bob", role="admin")
        await tx.add_agent("cy@example.com", "Cy", role="agent")
        assert await tx.active_agents_in_role("admin", besides=ann.id) == 1
        assert await tx.active_agents_in_role("agent", besides=ann.id) == 1
        bob.active = False
    async with ticket_store.session() as tx:
        assert await tx.active_agents_in_role("admin", besides=ann.id) == 0
        assert await tx.active_agents_in_role("admin", besides=bob.id) == 1


async def test_customer_tickets_newest_first_limited_and_leaving_one_out(ticket_store: SqlTicketStore) -> None:
    async with ticket_store.session() as tx:
        ann, _ = await tx.resolve_customer("telegram", "1", chat_id="1", display_name="Ann")
        bea, _ = await tx.resolve_customer("telegram", "2", chat_id="2", display_name="Bea")
        agent = await tx.add_agent("agent@example.com", "Agent")
        mine = [
            await tx.open_ticket(ann, kind=TicketKind.QUESTION, subject=f"q{i}", channel="telegram", actor="bot")
            for i in range(4)
        ]
        mine[1].assignee_id = agent.id
        await tx.open_ticket(bea, kind=TicketKind.QUESTION, subject="other", channel="telegram", actor="bot")
        ann_id, ids = ann.id, [t.id for t in mine]
    async with ticket_store.session() as tx:
        newest = await tx.customer_tickets(ann_id, limit=10)
        assert [t.id for t in newest] == ids[::-1]
        assert [t.id for t in await tx.customer_tickets(ann_id, limit=2)] == ids[:1:-1]
        others = await tx.customer_tickets(ann_id, limit=10, besides=ids[2])
        assert [t.id for t in others] == [ids[3], ids[1], ids[0]]
        # Customer and assignee come loaded: reading them after the query needs no I/O.
        assert {t.customer.display_name for t in others} == {"Ann"}
        assert [t.assignee.name if t.assignee else None for t in others] == [None, "Agent", None]
