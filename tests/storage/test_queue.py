"""The agents' queue (storage/queue.py) on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage.models import Agent, Customer, Owner, Priority, Ticket, TicketKind, TicketStatus
from storage.queue import InvalidQuery, QueueQuery, queue_page, sla_status
from storage.tickets import SqlTicketStore, TicketSession

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def hours(n: float) -> datetime:
    return NOW + timedelta(hours=n)


async def customer(tx: TicketSession, name: str) -> Customer:
    row = Customer(display_name=name, language="en", tags=[], owner=Owner.BOT)
    tx.db.add(row)
    await tx.db.flush()
    return row


async def ticket(
    tx: TicketSession,
    who: Customer,
    subject: str,
    *,
    status: TicketStatus = TicketStatus.OPEN,
    kind: TicketKind = TicketKind.COMPLAINT,
    priority: Priority = Priority.NORMAL,
    channel: str = "webchat",
    first_due: datetime | None = None,
    resolution_due: datetime | None = None,
    answered: bool = False,
    assignee: Agent | None = None,
    created: datetime = NOW,
) -> Ticket:
    row = Ticket(
        kind=kind,
        status=status,
        priority=priority,
        subject=subject,
        fields={},
        customer_id=who.id,
        channel=channel,
        first_response_due=first_due,
        resolution_due=resolution_due,
        first_response_at=created if answered else None,
        assignee_id=assignee.id if assignee else None,
        created_at=created,
        updated_at=created,
    )
    tx.db.add(row)
    await tx.db.flush()
    return row


async def numbers(store: SqlTicketStore, query: QueueQuery, agent_id: int | None = None) -> list[str]:
    async with store.session() as tx:
        page = await queue_page(tx, query, agent_id=agent_id, now=NOW)
    return [t.number for t in page.items]


async def all_pages(store: SqlTicketStore, query: QueueQuery, agent_id: int | None = None) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        async with store.session() as tx:
            q = QueueQuery(**{**query.__dict__, "cursor": cursor})
            page = await queue_page(tx, q, agent_id=agent_id, now=NOW)
        pages.append([t.number for t in page.items])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor
        assert len(pages) < 50, "pagination does not end"


@pytest.fixture
async def desk(ticket_store: SqlTicketStore) -> dict[str, str]:
    """Seven tickets whose SLA order is known; returns name → ticket number."""
    async with ticket_store.session() as tx:
        ann, bob = await customer(tx, "Ann Lee"), await customer(tx, "Bob Stone")
        agent = Agent(email="eve@shop.test", name="Eve", role="agent")
        tx.db.add(agent)
        await tx.db.flush()
        made = {
            # unanswered: first-response due counts
            "late": await ticket(tx, ann, "Parcel damaged", first_due=hours(-1), resolution_due=hours(20)),
            "soon": await ticket(tx, bob, "Wrong size", first_due=hours(2), resolution_due=hours(3),
                                 kind=TicketKind.RETURN, priority=Priority.HIGH, assignee=agent),
            # answered: resolution due counts although its first-response due was earliest
            "answered": await ticket(tx, ann, "Invoice question", first_due=hours(-5), resolution_due=hours(5),
                                     answered=True, channel="telegram", status=TicketStatus.PENDING),
            "later": await ticket(tx, bob, "Refund 100% please", first_due=hours(8), resolution_due=hours(30),
                                  status=TicketStatus.NEW),
            # open without any target: queues by creation time
            "no_sla": await ticket(tx, ann, "General feedback", kind=TicketKind.QUESTION, created=hours(-2)),
            "resolved_old": await ticket(tx, ann, "Old parcel issue", status=TicketStatus.RESOLVED,
                                         first_due=hours(-9), created=hours(-30)),
            "closed_new": await ticket(tx, bob, "Closed question", status=TicketStatus.CLOSED,
                                       first_due=hours(-9), created=hours(-3)),
        }
        result = {name: t.number for name, t in made.items()}
        result["agent_id"] = str(agent.id)
    return result


async def test_default_order_is_sla_urgency_then_closed_newest_first(
    ticket_store: SqlTicketStore, desk: dict[str, str]
) -> None:
    expected = [desk[n] for n in ("no_sla", "late", "soon", "answered", "later", "closed_new", "resolved_old")]
    # Closed tickets: the later id first (closed_new was inserted after resolved_old).
    assert await numbers(ticket_store, QueueQuery()) == expected


@pytest.mark.parametrize("limit", [1, 2, 3, 5])
async def test_keyset_pages_cover_every_ticket_once_in_order(
    ticket_store: SqlTicketStore, desk: dict[str, str], limit: int
) -> None:
    for sort in ("sla", "newest", "updated"):
        whole = await numbers(ticket_store, QueueQuery(sort=sort, limit=200))  # type: ignore[arg-type]
        pages = await all_pages(ticket_store, QueueQuery(sort=sort, limit=limit))  # type: ignore[arg-type]
        assert [n for page in pages for n in page] == whole, sort
        assert all(len(page) == limit for page in pages[:-1])
        assert len(whole) == 7


async def test_pages_under_a_status_filter(ticket_store: SqlTicketStore, desk: dict[str, str]) -> None:
    for status in TicketStatus:
        whole = await numbers(ticket_store, QueueQuery(status=status, limit=200))
        pages = await all_pages(ticket_store, QueueQuery(status=status, limit=1))
        assert [n for page in pages for n in page] == whole, status
    open_ones = await numbers(ticket_store, QueueQuery(status=TicketStatus.OPEN))
    assert open_ones == [desk["no_sla"], desk["late"], desk["soon"]]


async def test_newest_and_updated_orders(ticket_store: SqlTicketStore, desk: dict[str, str]) -> None:
    newest = await numbers(ticket_store, QueueQuery(sort="newest"))
    assert newest == sorted(newest, key=lambda n: -int(n[2:]))
    async with ticket_store.session() as tx:
        touched = await tx.ticket_by_number(desk["resolved_old"])
        touched.updated_at = hours(1)
    assert (await numbers(ticket_store, QueueQuery(sort="updated")))[0] == desk["resolved_old"]


async def test_the_deadline_follows_the_ticket(ticket_store: SqlTicketStore, desk: dict[str, str]) -> None:
    async with ticket_store.session() as tx:
        late = await tx.ticket_by_number(desk["late"])
        late.first_response_at = NOW  # answered: now its resolution (in 20 h) counts
    order = await numbers(ticket_store, QueueQuery(status=TicketStatus.OPEN))
    assert order.index(desk["late"]) > order.index(desk["soon"])
    async with ticket_store.session() as tx:
        soon = await tx.ticket_by_number(desk["soon"])
        soon.status = TicketStatus.RESOLVED
        await tx.db.flush()
        assert soon.sla_due_at is None
    assert desk["soon"] not in await numbers(ticket_store, QueueQuery(status=TicketStatus.OPEN))


async def test_filters(ticket_store: SqlTicketStore, desk: dict[str, str]) -> None:
    agent_id = int(desk["agent_id"])
    assert await numbers(ticket_store, QueueQuery(status=TicketStatus.PENDING)) == [desk["answered"]]
    assert await numbers(ticket_store, QueueQuery(kind=TicketKind.RETURN)) == [desk["soon"]]
    assert await numbers(ticket_store, QueueQuery(priority=Priority.HIGH)) == [desk["soon"]]
    assert await numbers(ticket_store, QueueQuery(channel="telegram")) == [desk["answered"]]
    assert await numbers(ticket_store, QueueQuery(assignee="mine"), agent_id) == [desk["soon"]]
    assert await numbers(ticket_store, QueueQuery(assignee=str(agent_id))) == [desk["soon"]]
    unassigned = await numbers(ticket_store, QueueQuery(assignee="unassigned"))
    assert len(unassigned) == 6 and desk["soon"] not in unassigned
    assert await numbers(ticket_store, QueueQuery(assignee="mine"), agent_id + 1) == []
    both = QueueQuery(status=TicketStatus.OPEN, kind=TicketKind.COMPLAINT, channel="webchat")
    assert await numbers(ticket_store, both) == [desk["late"]]


@pytest.fixture(params=["indexed", "scan"])
def search_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways a term is searched: through the substring indexes (few matches) and as a
    filter of the ordered scan (a cap of 0 makes every term "too common")."""
    if request.param == "scan":
        monkeypatch.setattr("storage.queue.SEARCH_CAP", 0)
    return str(request.param)


async def test_text_search(ticket_store: SqlTicketStore, desk: dict[str, str], search_path: str) -> None:
    assert await numbers(ticket_store, QueueQuery(q="PARCEL")) == [desk["late"], desk["resolved_old"]]
    assert set(await numbers(ticket_store, QueueQuery(q="stone"))) == {
        desk["soon"], desk["later"], desk["closed_new"]
    }
    assert await numbers(ticket_store, QueueQuery(q=desk["answered"].lower())) == [desk["answered"]]
    # LIKE wildcards are literal text, not patterns.
    assert await numbers(ticket_store, QueueQuery(q="100%")) == [desk["later"]]
    assert await numbers(ticket_store, QueueQuery(q="%")) == [desk["later"]]
    assert await numbers(ticket_store, QueueQuery(q="_")) == []
    assert await numbers(ticket_store, QueueQuery(q="' OR '1'='1")) == []
    assert await numbers(ticket_store, QueueQuery(q="parcel", status=TicketStatus.RESOLVED)) == [
        desk["resolved_old"]
    ]


async def test_search_index_follows_changes(ticket_store: SqlTicketStore, desk: dict[str, str]) -> None:
    async with ticket_store.session() as tx:
        late = await tx.ticket_by_number(desk["late"])
        late.subject = "Lost voucher"
        ann = await tx.get_customer(late.customer_id)
        assert ann is not None
        ann.display_name = "Annabel Gray"
    assert await numbers(ticket_store, QueueQuery(q="parcel")) == [desk["resolved_old"]]
    assert await numbers(ticket_store, QueueQuery(q="voucher")) == [desk["late"]]
    assert len(await numbers(ticket_store, QueueQuery(q="annabel"))) == 4
    async with ticket_store.session() as tx:
        await tx.db.delete(await tx.ticket_by_number(desk["resolved_old"]))
    assert await numbers(ticket_store, QueueQuery(q="parcel")) == []


async def test_search_pages_too(ticket_store: SqlTicketStore, desk: dict[str, str], search_path: str) -> None:
    pages = await all_pages(ticket_store, QueueQuery(q="ann", limit=1))
    assert [n for page in pages for n in page] == await numbers(ticket_store, QueueQuery(q="ann"))
    assert len(pages) == 4


@pytest.mark.parametrize(
    "query",
    [
        QueueQuery(cursor="not-a-cursor"),
        QueueQuery(cursor="eyJzIjoibmV3ZXN0IiwicCI6MCwiayI6WzVdfQ"),  # a "newest" cursor with sort=sla
        QueueQuery(assignee="somebody"),
        QueueQuery(assignee="mine"),  # nobody signed in
        QueueQuery(limit=0),
        QueueQuery(limit=201),
        QueueQuery(sort="oldest"),  # type: ignore[arg-type]
        QueueQuery(q="x" * 201),
    ],
)
async def test_bad_queries_are_refused(ticket_store: SqlTicketStore, query: QueueQuery) -> None:
    async with ticket_store.session() as tx:
        with pytest.raises(InvalidQuery):
            await queue_page(tx, query, agent_id=None, now=NOW)


def test_sla_status() -> None:
    open_ticket = Ticket(status=TicketStatus.OPEN, first_response_due=hours(0.5), resolution_due=hours(5))
    assert sla_status(open_ticket, NOW) == sla_status(open_ticket, NOW)
    state = sla_status(open_ticket, NOW)
    assert (state.state, state.target, state.due_at) == ("warning", "first_response", hours(0.5))
    assert sla_status(open_ticket, hours(-2)).state == "ok"
    assert sla_status(open_ticket, hours(0.5)).state == "breached"
    open_ticket.first_response_at = NOW
    state = sla_status(open_ticket, NOW)
    assert (state.state, state.target, state.due_at) == ("ok", "resolution", hours(5))
    open_ticket.status = TicketStatus.RESOLVED
    assert sla_status(open_ticket, hours(9)) == sla_status(Ticket(status=TicketStatus.CLOSED), NOW)
    assert sla_status(open_ticket, hours(9)).target is None
