"""The agents' queue and the ticket view with 1,000,000 tickets, on SQLite and PostgreSQL.

Loads a realistic shop history (default 1,000,000 tickets, ~3% still open, 200,000
customers, 2 messages and 2 events per ticket) with Core bulk inserts (SQLite) or COPY
(PostgreSQL), building the indexes afterwards, into databases outside the repository:
``/tmp/deskbot-bench-queue/queue.db`` and the PostgreSQL database ``deskbot_bench_queue``
(reused by later runs when the ticket count matches; ``--reload`` rebuilds).

Then times, through the real code (``storage.queue.queue_page``, ``TicketSession``), one
transaction per call like the API:
  * baseline      — ``get_ticket`` by primary key (the floor of any request);
  * the queue     — default SLA order and a filtered one (status + priority, an agent's
    own tickets), first page and a deep page (a cursor 100 pages in), closed tickets
    deep in the SLA order, text search (common word, rare name, ticket number);
  * ticket view   — the ticket, its messages, events, customer identities, the
    customer's other tickets and the order.
Prints p50/p99 in ms and the ratio of each p50 to the baseline's p50 (target p99 < 50 ms).

Run: ``.venv/bin/python bench/agents_queue.py [--backend sqlite|postgres|both] [--tickets N] [--runs N]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# This file is named like the standard library's ``queue`` (which aiosqlite imports):
# drop its own folder from the path so that import finds the real one.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

from sqlalchemy import Index, create_engine, insert, pool, text  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

from bot.web.api.tickets import ticket_detail  # noqa: E402
from storage.analytics import build_report  # noqa: E402
from storage.models import (  # noqa: E402
    SEARCH_INDEXES,
    Agent,
    Base,
    Customer,
    Identity,
    Message,
    Order,
    Priority,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketStatus,
    format_ticket_number,
    sqlite_search_tables,
    sqlite_search_triggers,
)
from storage.queue import QueueQuery, queue_page  # noqa: E402
from storage.tickets import SqlTicketStore  # noqa: E402

SQLITE_PATH = Path("/tmp/deskbot-bench-queue/queue.db")
POSTGRES_ADMIN = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
POSTGRES_DB = "deskbot_bench_queue"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CHANNELS = ["webchat", "telegram", "rest"]
FIRST = ["Ann", "Bob", "Chen", "Dana", "Emil", "Fatima", "Gao", "Hugo", "Ines", "Jonas", "Kim", "Lea", "Ming",
         "Nora", "Omar", "Paula", "Quinn", "Rosa", "Sven", "Tao", "Uma", "Vera", "Wei", "Xavier", "Yara", "Zoe"]
LAST = ["Lee", "Stone", "Wang", "Garcia", "Muller", "Rossi", "Dubois", "Novak", "Silva", "Kowalski", "Jensen",
        "Smith", "Tanaka", "Haddad", "Ivanova", "Okafor", "Larsen", "Moreau", "Zhang", "Costa"]
PRODUCTS = ["hoodie", "t-shirt", "sneakers", "backpack", "jacket", "cap", "socks", "jeans", "scarf", "watch"]
SUBJECTS = ["Return of the {p}", "Exchange {p} for another size", "{p} arrived damaged", "Where is my {p}?",
            "Refund for the {p}", "Question about the {p}", "Wrong colour {p}", "Invoice for the {p}"]
RARE_NAME = "Zyxwort"  # one customer carries it: the worst case for a search
DATA_VERSION = 2  # bump when the generated data changes: older databases are reloaded


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- data --------------------------------------------------------------------------------
def ticket_rows(n_tickets: int, n_customers: int, n_agents: int, seed: int = 5) -> Iterator[dict[str, Any]]:
    """Tickets over two years; the newest ~3% are still open (as in a real desk)."""
    rng = random.Random(seed)
    start = NOW - timedelta(days=730)
    step = (NOW - start) / n_tickets
    open_from = int(n_tickets * 0.97)
    for i in range(1, n_tickets + 1):
        created = start + step * i
        first_due, resolution_due = created + timedelta(hours=rng.choice([1, 4, 8])), created + timedelta(days=2)
        is_open = i > open_from
        status = rng.choice([TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING]) if is_open else (
            TicketStatus.CLOSED if rng.random() < 0.6 else TicketStatus.RESOLVED)
        answered = (not is_open) or rng.random() < 0.5
        first_at = created + timedelta(minutes=rng.randint(2, 600)) if answered else None
        resolved_at = created + timedelta(hours=rng.randint(1, 90)) if not is_open else None
        if not is_open:
            sla = None
        elif first_at is None:
            sla = first_due
        else:
            sla = resolution_due
        yield {
            "id": i,
            "kind": rng.choice(list(TicketKind)).value,
            "status": status.value,
            "priority": rng.choices(list(Priority), weights=[2, 6, 2, 1])[0].value,
            "subject": rng.choice(SUBJECTS).format(p=rng.choice(PRODUCTS)),
            "order_id": f"A{i:07d}" if rng.random() < 0.5 else None,
            "fields": {"item": rng.choice(PRODUCTS)},
            "customer_id": rng.randint(1, n_customers),
            "assignee_id": rng.randint(1, n_agents) if (not is_open or rng.random() < 0.6) else None,
            "channel": rng.choice(CHANNELS),
            "escalation_reason": None,
            "first_response_due": first_due,
            "resolution_due": resolution_due,
            "first_response_at": first_at,
            "resolved_at": resolved_at,
            "merged_into_id": None,
            "rating": rng.randint(1, 5) if resolved_at and rng.random() < 0.3 else None,
            "rating_comment": None,
            "sla_due_at": sla,
            "created_at": created,
            "updated_at": resolved_at or first_at or created,
        }


def customer_rows(n: int, seed: int = 6) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for i in range(1, n + 1):
        name = RARE_NAME if i == n // 2 else f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        yield {"id": i, "display_name": name, "email": f"c{i}@example.com", "phone": None, "language": "en",
               "tags": [], "notes": None, "unreachable": False, "owner": "bot", "handoff_ticket_id": None,
               "last_channel": "webchat", "last_chat_id": f"chat{i}", "created_at": NOW - timedelta(days=800)}


def identity_rows(n: int) -> Iterator[dict[str, Any]]:
    for i in range(1, n + 1):
        yield {"id": i, "customer_id": i, "channel": CHANNELS[i % 3], "external_id": f"user{i}", "chat_id": f"chat{i}",
               "created_at": NOW - timedelta(days=800)}


def message_rows(tickets: list[tuple[int, int, str, datetime]]) -> Iterator[dict[str, Any]]:
    n = 0
    for ticket_id, customer_id, channel, created in tickets:
        for author, direction, status, offset in (("customer", "in", "received", 0), ("bot", "out", "sent", 1)):
            n += 1
            yield {"id": n, "customer_id": customer_id, "ticket_id": ticket_id, "channel": channel,
                   "chat_id": f"chat{customer_id}", "direction": direction, "author": author,
                   "agent_id": None, "text": "my parcel has not arrived yet, can you check?", "payload": {},
                   "delivery_key": None, "intent": "order_status" if author == "customer" else None,
                   "confidence": 0.9 if author == "customer" else None, "status": status, "error": None,
                   "created_at": created + timedelta(seconds=offset)}


def event_rows(tickets: list[tuple[int, int, str, datetime]]) -> Iterator[dict[str, Any]]:
    n = 0
    for ticket_id, _, _, created in tickets:
        n += 1
        yield {"id": n, "ticket_id": ticket_id, "actor": "bot", "kind": "created",
               "data": {"kind": "complaint", "priority": "normal"}, "created_at": created}
        n += 1
        yield {"id": n, "ticket_id": ticket_id, "actor": "bot", "kind": "owner_changed",
               "data": {"from": "bot", "to": "queued"}, "created_at": created}


def order_rows(tickets: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The shop's orders behind the tickets that name one (a return checks it exists)."""
    for i in (t["id"] for t in tickets if t["order_id"]):
        yield {"id": i, "order_id": f"A{i:07d}", "email": None, "phone": None, "customer_name": None,
               "customer_id": None, "items": [{"sku": "H1", "qty": 1}], "total": 49.0, "currency": "EUR",
               "status": "delivered", "ordered_at": NOW - timedelta(days=800), "delivered_at": None}


def chunks(rows: Iterator[dict[str, Any]], size: int = 20_000) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def secondary_indexes(dialect: str) -> list[Index]:
    """The models' indexes that this database gets (trigram GIN ones only on PostgreSQL)."""
    found = []
    for table in Base.metadata.sorted_tables:
        for index in table.indexes:
            condition = getattr(index, "_ddl_if", None)
            if condition is None or condition.dialect in (None, dialect):
                found.append(index)
    return found


def plan(n_tickets: int) -> dict[str, Any]:
    n_customers = max(10, n_tickets // 5)
    tickets = list(ticket_rows(n_tickets, n_customers, 20))
    return {
        "customers": n_customers,
        "tickets": tickets,
        "brief": [(t["id"], t["customer_id"], t["channel"], t["created_at"]) for t in tickets],
    }


AGENTS = [{"id": i, "email": f"agent{i}@shop.test", "name": f"Agent {i}", "role": "agent", "password_hash": None,
           "telegram_user_id": None, "active": True, "created_at": NOW - timedelta(days=900)} for i in range(1, 21)]


def shaped(table: Any, rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Rows with exactly the table's columns (absent ones NULL), whatever the schema has grown."""
    names = [c.name for c in table.columns]
    for row in rows:
        yield {name: row.get(name) for name in names}


def table_loads(data: dict[str, Any]) -> list[tuple[Any, Callable[[], Iterator[dict[str, Any]]]]]:
    loads: list[tuple[Any, Callable[[], Iterator[dict[str, Any]]]]] = [
        (Agent.__table__, lambda: iter(AGENTS)),
        (Customer.__table__, lambda: customer_rows(data["customers"])),
        (Identity.__table__, lambda: identity_rows(data["customers"])),
        (Ticket.__table__, lambda: iter(data["tickets"])),
        (Message.__table__, lambda: message_rows(data["brief"])),
        (TicketEvent.__table__, lambda: event_rows(data["brief"])),
        (Order.__table__, lambda: order_rows(data["tickets"])),
    ]
    return [(table, lambda t=table, r=rows: shaped(t, r())) for table, rows in loads]  # type: ignore[misc]


# -- loading -----------------------------------------------------------------------------
def load_sqlite(n_tickets: int) -> None:
    SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(str(SQLITE_PATH) + suffix).unlink(missing_ok=True)
    data = plan(n_tickets)
    engine = create_engine(f"sqlite:///{SQLITE_PATH}", poolclass=pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        Base.metadata.create_all(conn)
        for index in secondary_indexes("sqlite"):
            index.drop(conn)
        # The search tables are filled in one go after the load, not row by row by triggers.
        for fts in SEARCH_INDEXES:
            for suffix in ("ai", "ad", "au"):
                conn.exec_driver_sql(f"DROP TRIGGER {fts}_{suffix}")
    with engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA synchronous=OFF")
        for table, rows in table_loads(data):
            started = time.perf_counter()
            count = 0
            for batch in chunks(rows()):
                conn.execute(insert(table), batch)
                count += len(batch)
            log(f"sqlite: {count:>9,} rows into {table.name} in {time.perf_counter() - started:.1f} s")
    with engine.begin() as conn:
        started = time.perf_counter()
        for index in secondary_indexes("sqlite"):
            index.create(conn)
        conn.exec_driver_sql("ANALYZE")
        for statement in meta_statements(n_tickets):
            conn.exec_driver_sql(statement)
    log(f"sqlite: indexes + ANALYZE in {time.perf_counter() - started:.1f} s")
    engine.dispose()
    build_sqlite_search()


def build_sqlite_search() -> None:
    """(Re)build the FTS5 search tables from the rows and install their triggers."""
    engine = create_engine(f"sqlite:///{SQLITE_PATH}", poolclass=pool.NullPool)
    started = time.perf_counter()
    with engine.begin() as conn:
        for statement in sqlite_search_tables():
            conn.exec_driver_sql(statement)
        for fts in SEARCH_INDEXES:
            conn.exec_driver_sql(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")
        for statement in sqlite_search_triggers():
            conn.exec_driver_sql(statement)
    engine.dispose()
    log(f"sqlite: search tables (FTS5 trigram) built in {time.perf_counter() - started:.1f} s")


async def load_postgres(url: str, n_tickets: int) -> None:
    admin = create_async_engine(POSTGRES_ADMIN, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{POSTGRES_DB}" WITH (FORCE)')
        await conn.exec_driver_sql(f'CREATE DATABASE "{POSTGRES_DB}"')
    await admin.dispose()
    data = plan(n_tickets)
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        await conn.run_sync(lambda sync: [index.drop(sync) for index in secondary_indexes("postgresql")])
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        for table, rows in table_loads(data):
            started = time.perf_counter()
            columns = [c.name for c in table.columns]
            json_columns = {c.name for c in table.columns if c.type.__class__.__name__ == "JSON"}
            count = 0
            for batch in chunks(rows(), 50_000):
                records = [
                    tuple(json.dumps(r[c]) if c in json_columns else r[c] for c in columns) for r in batch
                ]
                await driver.copy_records_to_table(table.name, records=records, columns=columns)
                count += len(batch)
            log(f"postgres: {count:>9,} rows into {table.name} in {time.perf_counter() - started:.1f} s")
        await conn.commit()
    async with engine.begin() as conn:
        started = time.perf_counter()
        await conn.run_sync(lambda sync: [index.create(sync) for index in secondary_indexes("postgresql")])
        for table in Base.metadata.sorted_tables:
            await conn.exec_driver_sql(f'ANALYZE "{table.name}"')
        for statement in meta_statements(n_tickets):
            await conn.exec_driver_sql(statement)
    log(f"postgres: indexes + ANALYZE in {time.perf_counter() - started:.1f} s")
    await engine.dispose()


async def loaded(store: SqlTicketStore, n_tickets: int) -> bool:
    """Whether the database holds this bench's data (version and size), so it can be reused."""
    try:
        async with store.session() as tx:
            version = (await tx.db.execute(text("SELECT version, tickets FROM bench_meta"))).one()
            return tuple(version) == (DATA_VERSION, n_tickets)
    except Exception:  # noqa: BLE001 - no database, no table: load it
        return False


def meta_statements(n_tickets: int) -> list[str]:
    return [
        "DROP TABLE IF EXISTS bench_meta",
        "CREATE TABLE bench_meta (version INTEGER, tickets INTEGER)",
        f"INSERT INTO bench_meta VALUES ({DATA_VERSION}, {int(n_tickets)})",
    ]


# -- timing ------------------------------------------------------------------------------
def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def timed(runs: int, call: Callable[[int], Awaitable[Any]]) -> list[float]:
    for i in range(min(10, runs)):  # warm caches and statement cache
        await call(i)
    samples = []
    for i in range(runs):
        started = time.perf_counter()
        await call(i)
        samples.append((time.perf_counter() - started) * 1000)
    return samples


async def page(store: SqlTicketStore, query: QueueQuery, agent_id: int | None = None) -> Any:
    async with store.session() as tx:
        result = await queue_page(tx, query, agent_id=agent_id, now=NOW)
        assert result.items, f"empty page for {query}"
        return result


async def cursor_after(store: SqlTicketStore, query: QueueQuery, pages: int, agent_id: int | None = None) -> str:
    cursor = None
    for _ in range(pages):
        result = await page(store, QueueQuery(**{**query.__dict__, "cursor": cursor}), agent_id)
        cursor = result.next_cursor
        assert cursor is not None, "fewer pages than asked"
    return cursor


async def ticket_view(store: SqlTicketStore, ticket_id: int) -> None:
    """What GET /api/v1/tickets/{number} loads: the ticket, its messages, events and notes,
    their agents, the customer with identities and other tickets, the order."""
    async with store.session() as tx:
        detail = await ticket_detail(tx, format_ticket_number(ticket_id), NOW)
        assert detail.messages and detail.events


async def report(store: SqlTicketStore, days: int) -> None:
    async with store.session() as tx:
        result = await build_report(tx, NOW.date() - timedelta(days=days - 1), NOW.date(), now=NOW)
        assert result.sla.tickets > 0


async def measure(store: SqlTicketStore, n_tickets: int, runs: int, backend: str) -> None:
    rng = random.Random(11)
    ids = [rng.randint(1, n_tickets) for _ in range(runs + 10)]

    async def baseline(i: int) -> None:
        async with store.session() as tx:
            assert await tx.get_ticket(ids[i]) is not None

    default = QueueQuery()
    filtered = QueueQuery(status=TicketStatus.OPEN, priority=Priority.HIGH)
    mine = QueueQuery(assignee="mine")
    closed = QueueQuery(status=TicketStatus.RESOLVED)
    depth = max(1, min(100, n_tickets // 2000))  # 100 pages at a million tickets
    log(f"{backend}: walking cursors {depth} pages deep")
    deep = {
        "default": await cursor_after(store, default, depth),
        "mine": await cursor_after(store, mine, depth, 7),
        # past every open ticket, into the closed ones (phase 2 of the SLA order)
        "closed": await cursor_after(store, default, (n_tickets * 3 // 100) // 50 + depth),
    }
    cases: list[tuple[str, Callable[[int], Awaitable[Any]]]] = [
        ("baseline: ticket by primary key", baseline),
        ("queue default (SLA), page 1", lambda i: page(store, default)),
        (f"queue default, page {depth + 1} (cursor)", lambda i: page(store, QueueQuery(cursor=deep["default"]))),
        ("queue status=open&priority=high, p1", lambda i: page(store, filtered)),
        ("queue assignee=mine, page 1", lambda i: page(store, mine, 7)),
        (f"queue assignee=mine, page {depth + 1}",
         lambda i: page(store, QueueQuery(assignee="mine", cursor=deep["mine"]), 7)),
        ("queue status=resolved, page 1", lambda i: page(store, closed)),
        ("queue default, closed part (deep)", lambda i: page(store, QueueQuery(cursor=deep["closed"]))),
        ("queue newest first, page 1", lambda i: page(store, QueueQuery(sort="newest"))),
        ("search subject 'damaged', page 1", lambda i: page(store, QueueQuery(q="damaged"))),
        ("search number T-500123", lambda i: page(store, QueueQuery(q=f"T-{min(n_tickets, 499_123) + 1000}"))),
        (f"search rare name '{RARE_NAME}'", lambda i: page(store, QueueQuery(q=RARE_NAME))),
        ("ticket view (GET /api/v1/tickets/N)", lambda i: ticket_view(store, ids[i])),
    ]
    analytics: list[tuple[str, Callable[[int], Awaitable[Any]]]] = [
        ("analytics report, last 7 days", lambda i: report(store, 7)),
        ("analytics report, last 30 days", lambda i: report(store, 30)),
    ]
    results: list[tuple[str, list[float]]] = []
    for name, call in cases:
        results.append((name, await timed(runs, call)))
    for name, call in analytics:  # a report, not a page: fewer runs
        results.append((name, await timed(max(5, runs // 10), call)))
    base = statistics.median(results[0][1])
    print(f"\nqueue benchmark — {backend}, {n_tickets:,} tickets, {runs} runs each (ms)")
    print(f"  {'':38} {'p50':>8} {'p99':>8} {'p50/baseline':>13}")
    for name, samples in results:
        p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
        flag = "" if p99 < 50 or name.startswith("analytics") else "  > 50 ms target"
        print(f"  {name:38} {p50:8.2f} {p99:8.2f} {p50 / base:12.1f}x{flag}")


async def run_backend(backend: str, n_tickets: int, runs: int, reload: bool) -> None:
    from sqlalchemy import make_url

    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{SQLITE_PATH}"
    else:
        url = make_url(POSTGRES_ADMIN).set(database=POSTGRES_DB).render_as_string(hide_password=False)
    store = SqlTicketStore.from_url(url)
    if reload or not await loaded(store, n_tickets):
        await store.close()
        log(f"{backend}: loading {n_tickets:,} tickets")
        if backend == "sqlite":
            await asyncio.to_thread(load_sqlite, n_tickets)
        else:
            await load_postgres(url, n_tickets)
        store = SqlTicketStore.from_url(url)
    try:
        await measure(store, n_tickets, runs, backend)
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--reload", action="store_true", help="rebuild the databases")
    args = parser.parse_args()
    for backend in (["sqlite", "postgres"] if args.backend == "both" else [args.backend]):
        asyncio.run(run_backend(backend, args.tickets, args.runs, args.reload))


if __name__ == "__main__":
    main()
