"""The agents' queue: filtered, SLA-ordered ticket pages that stay fast at a million tickets.

Design (measured by ``bench/agents_queue.py``):

* **Order without computing.** The default order is SLA urgency: the deadline that matters
  now (first-response due while nobody answered, else resolution due). It is stored in
  ``Ticket.sla_due_at`` (kept by a mapper event, NULL once resolved/closed), so the order
  is an index scan of ``(sla_due_at, id)`` — or ``(status|assignee_id, sla_due_at, id)``
  with those filters — that stops after one page.
* **Keyset pages, never OFFSET.** The cursor holds the last row's sort key; the next page
  starts strictly after it, so page 1,000 costs what page 1 costs and a ticket that changes
  meanwhile is neither skipped twice nor repeated. ``sla`` order has two phases: open
  tickets by deadline, then closed ones newest first (``sla_due_at IS NULL``); the cursor
  records the phase.
* **Text search** matches the subject and the customer's display name (case-insensitive
  substring) and, when the text is a ticket number (``T-1042``), that ticket. Substring
  indexes answer it: trigram GIN (``pg_trgm``) on PostgreSQL, FTS5 tables with the trigram
  tokenizer on SQLite (``storage.models.sqlite_search_tables``). A selective term (at most
  ``SEARCH_CAP`` matching tickets) becomes ``id IN (matches)``, sorted like any page; a
  common one instead filters the ordered index scan, which stops after one page because
  matches are dense. Either way no query reads the whole table.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, literal, literal_column, or_, select, text, tuple_
from sqlalchemy.orm import joinedload

from common.errors import DeskbotError
from storage.models import (
    CLOSED_STATUSES,
    MAX_TICKET_ID,
    Customer,
    Priority,
    Ticket,
    TicketKind,
    TicketStatus,
    UtcDateTime,
    parse_ticket_number,
)
from storage.tickets import TicketSession

SortOrder = Literal["sla", "newest", "updated"]
SORTS: tuple[SortOrder, ...] = ("sla", "newest", "updated")
MAX_LIMIT = 200
MAX_SEARCH_LENGTH = 200
# A search term with at most this many matching tickets is answered from the substring
# indexes (trigram GIN / FTS5) and sorted; a more common one filters the ordered scan.
SEARCH_CAP = 2000
MIN_INDEXED_SEARCH = 3  # trigram indexes cannot answer shorter terms
# A deadline closer than this is shown as a warning before it is breached.
SLA_WARNING_WINDOW = timedelta(hours=1)
MAX_ROW_ID = MAX_TICKET_ID  # ids are 32-bit INTEGER columns
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")


class InvalidQuery(DeskbotError, ValueError):
    """A queue filter or cursor that cannot be honoured (shown to the caller as a 400)."""


@dataclass(frozen=True)
class QueueQuery:
    """Filters of the queue; ``None`` means "any". ``assignee``: mine, unassigned or an id."""

    status: TicketStatus | None = None
    kind: TicketKind | None = None
    priority: Priority | None = None
    assignee: str | None = None
    channel: str | None = None
    q: str | None = None
    sort: SortOrder = "sla"
    cursor: str | None = None
    limit: int = 50


@dataclass(frozen=True)
class QueuePage:
    items: list[Ticket]
    next_cursor: str | None


@dataclass(frozen=True)
class SlaStatus:
    """What the queue shows about a ticket's SLA right now."""

    state: Literal["ok", "warning", "breached"]
    due_at: datetime | None
    target: Literal["first_response", "resolution"] | None


def sla_status(ticket: Ticket, now: datetime, warning: timedelta = SLA_WARNING_WINDOW) -> SlaStatus:
    """The current target (first response until answered, then resolution) and its state."""
    if not ticket.is_open:
        return SlaStatus("ok", None, None)
    target: Literal["first_response", "resolution"] | None
    if ticket.first_response_at is None and ticket.first_response_due is not None:
        target, due = "first_response", ticket.first_response_due
    elif ticket.resolution_due is not None:
        target, due = "resolution", ticket.resolution_due
    else:
        return SlaStatus("ok", None, None)
    if due <= now:
        return SlaStatus("breached", due, target)
    return SlaStatus("warning" if due - now <= warning else "ok", due, target)


# -- cursor ------------------------------------------------------------------------------
_DATETIME = UtcDateTime()


def _encode_cursor(sort: SortOrder, phase: int, key: Sequence[Any]) -> str:
    values = [v.isoformat() if isinstance(v, datetime) else v for v in key]
    raw = json.dumps({"s": sort, "p": phase, "k": values}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: SortOrder) -> tuple[int, list[Any]]:
    """(phase, key) of a cursor made by this module for the same sort order."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
        phase, key = int(data["p"]), list(data["k"])
        if data["s"] != sort or phase not in (0, 1):
            raise ValueError("cursor from another sort order")
        if sort == "newest" or phase == 1:
            (ticket_id,) = key
            return phase, [_row_id(ticket_id)]
        at, ticket_id = key
        return phase, [datetime.fromisoformat(str(at)), _row_id(ticket_id)]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidQuery("invalid cursor; start again without one") from exc


def _row_id(value: object) -> int:
    """A cursor's ticket id: an integer the 32-bit id column can hold (a forged one is no id)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ROW_ID:
        raise ValueError("not a ticket id")
    return value


def _check_text(query: QueueQuery) -> None:
    """No control characters in the text filters: PostgreSQL refuses a NUL (a 503 before),
    SQLite reads it as the end of the pattern (every ticket matched)."""
    for name in ("assignee", "channel", "q", "cursor"):
        value = getattr(query, name)
        if value is not None and CONTROL_CHARACTER.search(value):
            raise InvalidQuery(f"{name} must not contain control characters")


# -- filters -----------------------------------------------------------------------------
def _like_pattern(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _fts_phrase(text: str) -> str:
    """An FTS5 phrase query matching ``text`` as a substring (trigram tokenizer)."""
    return '"' + text.replace('"', '""') + '"'


async def _has_sqlite_search(tx: TicketSession) -> bool:
    found = await tx.db.execute(
        text("SELECT count(*) FROM sqlite_master WHERE name IN ('tickets_subject_fts', 'customers_name_fts')")
    )
    return int(found.scalar_one()) == 2


ESTIMATES = {
    ("tickets", "subject"): text("EXPLAIN (FORMAT JSON) SELECT id FROM tickets WHERE subject ILIKE :p ESCAPE '\\'"),
    ("customers", "display_name"): text(
        "EXPLAIN (FORMAT JSON) SELECT id FROM customers WHERE display_name ILIKE :p ESCAPE '\\'"
    ),
}


async def _estimate(tx: TicketSession, table: str, column: str, pattern: str) -> float:
    """PostgreSQL's estimate of the rows matching ``pattern`` (planning only, ~0.3 ms)."""
    plan = (await tx.db.execute(ESTIMATES[(table, column)], {"p": pattern})).scalar_one()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return float(plan[0]["Plan"]["Plan Rows"])


async def _capped(tx: TicketSession, query: Select[Any], cap: int) -> list[int] | None:
    """The ids ``query`` selects, or None when there are more than ``cap``."""
    ids = [int(i) for i in (await tx.db.execute(query.limit(cap + 1))).scalars()]
    return None if len(ids) > cap else ids


@dataclass(frozen=True)
class _Matches:
    """What the substring indexes found; None where more than the cap matched."""

    subjects: list[int] | None  # ticket ids
    customers: list[int] | None  # customer ids


async def _index_matches(tx: TicketSession, q: str, dialect: str, cap: int) -> _Matches | None:
    """Tickets whose subject, and customers whose name, contain ``q`` (None: no index)."""
    pattern = _like_pattern(q)
    if dialect == "postgresql":
        by_subject = select(Ticket.id).where(Ticket.subject.ilike(pattern, escape="\\"))
        by_name = select(Customer.id).where(Customer.display_name.ilike(pattern, escape="\\"))
        # The planner's trigram statistics tell a clearly common term without the probe
        # (which would read thousands of rows to find out).
        common_subject = await _estimate(tx, "tickets", "subject", pattern) > 4 * cap
        common_name = await _estimate(tx, "customers", "display_name", pattern) > 4 * cap
        return _Matches(
            None if common_subject else await _capped(tx, by_subject, cap),
            None if common_name else await _capped(tx, by_name, cap),
        )
    if dialect == "sqlite" and await _has_sqlite_search(tx):
        phrase = literal(_fts_phrase(q))
        by_subject = select(literal_column("rowid")).select_from(text("tickets_subject_fts")).where(
            literal_column("tickets_subject_fts").op("MATCH")(phrase)
        )
        by_name = select(literal_column("rowid")).select_from(text("customers_name_fts")).where(
            literal_column("customers_name_fts").op("MATCH")(phrase)
        )
    else:
        return None
    return _Matches(await _capped(tx, by_subject, cap), await _capped(tx, by_name, cap))


async def _search(tx: TicketSession, q: str, dialect: str) -> ColumnElement[bool]:
    """The text filter. A selective term becomes one ``id IN (the few matches)`` found
    through the substring indexes, then ordered like any page. A common term filters rows
    during the ordered index scan instead, which stops as soon as a page is full — matches
    are dense then, so the scan is short; the side that was selective (say, the customer
    names) still comes from its index."""
    pattern = _like_pattern(q)
    ticket_id = parse_ticket_number(q) if q.upper().startswith("T") or q.isdigit() else None
    number = [ticket_id] if ticket_id is not None else []
    found = await _index_matches(tx, q, dialect, SEARCH_CAP) if len(q) >= MIN_INDEXED_SEARCH else None
    if found is None:
        found = _Matches(None, None)
    of_customers: list[int] | None = None
    if found.customers is not None:
        query = select(Ticket.id).where(Ticket.customer_id.in_(found.customers))
        of_customers = await _capped(tx, query, SEARCH_CAP) if found.customers else []
    if found.subjects is not None and of_customers is not None:
        matches = set(found.subjects) | set(of_customers) | set(number)
        if len(matches) <= SEARCH_CAP:
            return Ticket.id.in_(sorted(matches))
    conditions: list[ColumnElement[bool]] = [Ticket.id.in_(number)] if number else []
    if found.subjects is not None:
        conditions.append(Ticket.id.in_(found.subjects))
    else:
        conditions.append(Ticket.subject.ilike(pattern, escape="\\"))
    if found.customers is not None:
        conditions.append(Ticket.customer_id.in_(found.customers))
    else:
        by_name = select(Customer.id).where(Customer.display_name.ilike(pattern, escape="\\"))
        conditions.append(Ticket.customer_id.in_(by_name))
    return or_(*conditions)


def _assignee(value: str, agent_id: int | None) -> ColumnElement[bool]:
    value = value.strip().lower()
    if value == "mine":
        if agent_id is None:
            raise InvalidQuery("assignee=mine needs a signed-in agent")
        return Ticket.assignee_id == agent_id
    if value == "unassigned":
        return Ticket.assignee_id.is_(None)
    if value.isascii() and value.isdigit() and len(value) <= 10 and int(value) <= MAX_ROW_ID:
        return Ticket.assignee_id == int(value)
    raise InvalidQuery("assignee must be mine, unassigned or an agent id")


async def _filtered(tx: TicketSession, query: QueueQuery, agent_id: int | None, dialect: str) -> Select[Ticket]:
    stmt = select(Ticket).options(joinedload(Ticket.customer), joinedload(Ticket.assignee))
    if query.status is not None:
        stmt = stmt.where(Ticket.status == query.status)
    if query.kind is not None:
        stmt = stmt.where(Ticket.kind == query.kind)
    if query.priority is not None:
        stmt = stmt.where(Ticket.priority == query.priority)
    if query.channel:
        stmt = stmt.where(Ticket.channel == query.channel)
    if query.assignee:
        stmt = stmt.where(_assignee(query.assignee, agent_id))
    words = (query.q or "").strip()
    if len(words) > MAX_SEARCH_LENGTH:
        raise InvalidQuery(f"search text longer than {MAX_SEARCH_LENGTH} characters")
    if words:
        stmt = stmt.where(await _search(tx, words, dialect))
    return stmt


# -- pages -------------------------------------------------------------------------------
async def _fetch(tx: TicketSession, stmt: Select[Ticket], limit: int) -> list[Ticket]:
    return list((await tx.db.execute(stmt.limit(limit))).scalars().unique().all())


def _phase_statement(
    base: Select[Ticket], sort: SortOrder, phase: int, after: list[Any] | None, open_only: bool = False
) -> Select[Ticket]:
    if sort == "newest" or (sort == "sla" and phase == 1):
        stmt = base.order_by(Ticket.id.desc())
        if sort == "sla":
            stmt = stmt.where(Ticket.sla_due_at.is_(None))
        return stmt.where(Ticket.id < after[0]) if after else stmt
    if sort == "updated":
        stmt = base.order_by(Ticket.updated_at.desc(), Ticket.id.desc())
        if after:
            stmt = stmt.where(tuple_(Ticket.updated_at, Ticket.id) < tuple_(_at(after[0]), after[1]))
        return stmt
    stmt = base.order_by(Ticket.sla_due_at, Ticket.id)
    if not open_only:
        # With an open status filter every row has a deadline; saying so again would make
        # PostgreSQL's planner multiply two selectivities and misjudge the page's cost.
        stmt = stmt.where(Ticket.sla_due_at.is_not(None))
    if after:
        stmt = stmt.where(tuple_(Ticket.sla_due_at, Ticket.id) > tuple_(_at(after[0]), after[1]))
    return stmt


def _at(value: datetime) -> ColumnElement[Any]:
    return literal(value, _DATETIME)


def _key(ticket: Ticket, sort: SortOrder, phase: int) -> list[Any]:
    if sort == "newest" or (sort == "sla" and phase == 1):
        return [ticket.id]
    if sort == "updated":
        return [ticket.updated_at, ticket.id]
    return [ticket.sla_due_at, ticket.id]


async def queue_page(tx: TicketSession, query: QueueQuery, *, agent_id: int | None, now: datetime) -> QueuePage:
    """One page of the queue and the cursor of the next (None on the last page).

    ``now`` is accepted so callers pass the same clock they show SLA states with; the
    order itself needs no clock (deadlines sort the same at any time).
    """
    del now
    if query.sort not in SORTS:
        raise InvalidQuery(f"sort must be one of {', '.join(SORTS)}")
    if not 1 <= query.limit <= MAX_LIMIT:
        raise InvalidQuery(f"limit must be between 1 and {MAX_LIMIT}")
    _check_text(query)
    base = await _filtered(tx, query, agent_id, tx.db.get_bind().dialect.name)
    phase, after = _decode_cursor(query.cursor, query.sort) if query.cursor else (0, None)
    # A status filter tells which phase of the SLA order can hold rows at all.
    open_only = query.status is not None and query.status not in CLOSED_STATUSES
    closed_only = query.status is not None and not open_only
    if query.sort == "sla" and closed_only and phase == 0:
        phase, after = 1, None
    # One row more than asked tells whether another page exists without counting.
    want = query.limit + 1
    rows = await _fetch(tx, _phase_statement(base, query.sort, phase, after, open_only), want)
    phases = [phase] * len(rows)
    if query.sort == "sla" and phase == 0 and not open_only and len(rows) < want:
        more = await _fetch(tx, _phase_statement(base, "sla", 1, None), want - len(rows))
        rows += more
        phases += [1] * len(more)
    if len(rows) <= query.limit:
        return QueuePage(rows, None)
    last, last_phase = rows[query.limit - 1], phases[query.limit - 1]
    return QueuePage(rows[: query.limit], _encode_cursor(query.sort, last_phase, _key(last, query.sort, last_phase)))


__all__ = ["InvalidQuery", "QueuePage", "QueueQuery", "SlaStatus", "queue_page", "sla_status"]
