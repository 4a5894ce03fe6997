"""Support analytics for a date range, computed by the database on SQLite and PostgreSQL.

Definitions (what every figure means; the analytics page and CSV repeat them):

* **Range.** ``since``/``until`` are UTC calendar days, both included. Days are UTC days.
* **Messages per day**: stored messages by author — customer (inbound), bot, agent.
* **Tickets per day**: tickets opened that day, and tickets resolved that day.
* **Intents**: classified inbound customer messages by predicted intent (``out_of_scope``
  included; button presses count as their intent; form answers without a prediction do not).
* **Conversation**: one customer's messages on one channel on one UTC day, with at least
  one message from the customer. It is **contained** (solved without a human) when that
  day neither a ticket of that customer was handed to a human (an ``owner_changed`` event
  to ``queued`` or ``agent``) nor an agent wrote to that customer. **Containment rate** =
  contained / conversations. Tickets the bot opens and a human works later (a return
  request checked by the warehouse) do not break containment: the conversation ended
  without a person.
* **Ticket figures** (response and resolution times, SLA, CSAT, per agent) describe the
  tickets *opened* in the range (a cohort), whenever they were answered or rated.
  First-response time = ``first_response_at - created_at``; resolution time =
  ``resolved_at - created_at``; wall-clock seconds. Percentiles use the nearest-rank
  method (p-th percentile = the ⌈p·n/100⌉-th smallest value), computed with window
  functions, so no row leaves the database.
* **SLA breach**: a first response later than ``first_response_due`` (or none yet and the
  due time passed by ``now``); likewise resolution against ``resolution_due``. A ticket
  breached on either counts once in ``breached``.
* **CSAT**: the customers' 1–5 ratings of those tickets: count, average, distribution.
* **Per agent**: tickets by assignee; **per channel**: by the ticket's (or conversation's)
  channel.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from common.errors import DeskbotError
from storage.models import Agent, Author, Message, Ticket, TicketEvent, UtcDateTime
from storage.tickets import TicketSession

PERCENTILES = (50, 90, 99)
MAX_RANGE_DAYS = 366
RATING_SCORES = (1, 2, 3, 4, 5)


class InvalidRange(DeskbotError, ValueError):
    """A date range the report refuses (reversed or too long)."""


# -- portable SQL pieces -----------------------------------------------------------------
class utc_day(FunctionElement[str]):  # noqa: N801 - reads like the SQL function it renders
    """``YYYY-MM-DD`` of a stored UTC timestamp."""

    type = String()
    inherit_cache = True


@compiles(utc_day, "postgresql")
def _utc_day_pg(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char(timezone('UTC', {compiler.process(element.clauses, **kw)}), 'YYYY-MM-DD')"


@compiles(utc_day)
def _utc_day_sqlite(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps UtcDateTime as 'YYYY-MM-DD HH:MM:SS.ffffff' text, always in UTC.
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 10)"


class seconds_between(FunctionElement[float]):  # noqa: N801
    """``later - earlier`` in seconds (float)."""

    type = Float()
    inherit_cache = True


@compiles(seconds_between, "postgresql")
def _seconds_pg(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    return f"EXTRACT(EPOCH FROM ({compiler.process(later, **kw)} - {compiler.process(earlier, **kw)}))::float"


@compiles(seconds_between)
def _seconds_sqlite(element: seconds_between, compiler: SQLCompiler, **kw: Any) -> str:
    later, earlier = list(element.clauses)
    return f"((julianday({compiler.process(later, **kw)}) - julianday({compiler.process(earlier, **kw)})) * 86400.0)"


# -- the report ----------------------------------------------------------------------------
@dataclass
class DayRow:
    day: str
    customer_messages: int = 0
    bot_messages: int = 0
    agent_messages: int = 0
    tickets_opened: int = 0
    tickets_resolved: int = 0


@dataclass
class Durations:
    """Seconds; None when there is no value to measure."""

    count: int = 0
    average: float | None = None
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None


@dataclass
class Csat:
    count: int = 0
    average: float | None = None
    distribution: dict[str, int] = field(default_factory=lambda: {str(s): 0 for s in RATING_SCORES})


@dataclass
class Sla:
    tickets: int = 0
    first_response_breached: int = 0
    resolution_breached: int = 0
    breached: int = 0

    @property
    def breach_rate(self) -> float | None:
        return self.breached / self.tickets if self.tickets else None


@dataclass
class Containment:
    conversations: int = 0
    contained: int = 0

    @property
    def rate(self) -> float | None:
        return self.contained / self.conversations if self.conversations else None


@dataclass
class Group:
    """Ticket figures of one agent or one channel (``key`` = agent id or channel name)."""

    key: str
    label: str
    tickets: int = 0
    resolved: int = 0
    first_response: Durations = field(default_factory=Durations)
    resolution: Durations = field(default_factory=Durations)
    sla: Sla = field(default_factory=Sla)
    csat: Csat = field(default_factory=Csat)
    containment: Containment | None = None
    customer_messages: int | None = None


@dataclass
class Report:
    since: date
    until: date
    days: list[DayRow]
    intents: list[tuple[str, int]]
    containment: Containment
    first_response: Durations
    resolution: Durations
    sla: Sla
    csat: Csat
    agents: list[Group]
    channels: list[Group]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: dates as ISO strings, rates included."""

        def with_rates(data: dict[str, Any], source: Any) -> dict[str, Any]:
            if isinstance(source, Sla):
                data["breach_rate"] = source.breach_rate
            if isinstance(source, Containment):
                data["rate"] = source.rate
            return data

        def group(g: Group) -> dict[str, Any]:
            data = asdict(g)
            data["sla"] = with_rates(data["sla"], g.sla)
            if g.containment is not None:
                data["containment"] = with_rates(data["containment"], g.containment)
            return data

        total = sum(count for _, count in self.intents)
        return {
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "days": [asdict(d) for d in self.days],
            "intents": [
                {"intent": name, "count": count, "share": count / total if total else None}
                for name, count in self.intents
            ],
            "containment": with_rates(asdict(self.containment), self.containment),
            "first_response": asdict(self.first_response),
            "resolution": asdict(self.resolution),
            "sla": with_rates(asdict(self.sla), self.sla),
            "csat": asdict(self.csat),
            "agents": [group(g) for g in self.agents],
            "channels": [group(g) for g in self.channels],
        }


def parse_range(since: str | None, until: str | None, today: date, default_days: int = 30) -> tuple[date, date]:
    """``YYYY-MM-DD`` strings (either may be missing) → an inclusive day range."""
    try:
        end = date.fromisoformat(until) if until else today
        start = date.fromisoformat(since) if since else end - timedelta(days=default_days - 1)
        _bounds(start, end)  # the day after ``until`` must exist too (not after 9999-12-31)
    except ValueError as exc:
        raise InvalidRange("since and until must be dates like 2026-11-23") from exc
    except OverflowError as exc:
        raise InvalidRange(f"dates must lie between {date.min.isoformat()} and {_LAST_DAY.isoformat()}") from exc
    if start > end:
        raise InvalidRange("since must not be after until")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise InvalidRange(f"a report covers at most {MAX_RANGE_DAYS} days")
    return start, end


_LAST_DAY = date.max - timedelta(days=1)


def _bounds(since: date, until: date) -> tuple[datetime, datetime]:
    return datetime.combine(since, time(), UTC), datetime.combine(until + timedelta(days=1), time(), UTC)


def _within(column: Any, start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(column >= start, column < end)


async def build_report(tx: TicketSession, since: date, until: date, *, now: datetime) -> Report:
    """Every figure of the analytics page for ``since``..``until`` (inclusive UTC days)."""
    if since > until or (until - since).days + 1 > MAX_RANGE_DAYS:
        raise InvalidRange("invalid range")
    start, end = _bounds(since, until)
    cohort = _within(Ticket.created_at, start, end)
    agents = await _ticket_groups(tx, Ticket.assignee_id, cohort, now)
    names = await _agent_names(tx, [int(k) for k in agents if k is not None])
    channels = await _ticket_groups(tx, Ticket.channel, cohort, now)
    conversations = await _containment(tx, start, end)
    customer_messages = await _customer_messages_by_channel(tx, start, end)
    overall = (await _ticket_groups(tx, None, cohort, now)).get("all") or Group("all", "all")
    for channel in set(conversations) | set(customer_messages):
        channels.setdefault(channel, Group(channel, channel))
    for channel, group in channels.items():
        group.containment = conversations.get(str(channel), Containment())
        group.customer_messages = customer_messages.get(str(channel), 0)
    total_containment = Containment(
        sum(c.conversations for c in conversations.values()), sum(c.contained for c in conversations.values())
    )
    agent_groups = []
    for key, group in agents.items():
        if key is None:
            group.key, group.label = "", "unassigned"
        else:
            group.label = names.get(int(key), f"agent {key}")
        agent_groups.append(group)
    agent_groups.sort(key=lambda g: (g.key == "", g.label.lower()))
    return Report(
        since=since,
        until=until,
        days=await _days(tx, since, until, start, end),
        intents=await _intents(tx, start, end),
        containment=total_containment,
        first_response=overall.first_response,
        resolution=overall.resolution,
        sla=overall.sla,
        csat=overall.csat,
        agents=agent_groups,
        channels=sorted(channels.values(), key=lambda g: g.key),
    )


async def _days(tx: TicketSession, since: date, until: date, start: datetime, end: datetime) -> list[DayRow]:
    rows = {
        (since + timedelta(days=i)).isoformat(): DayRow((since + timedelta(days=i)).isoformat())
        for i in range((until - since).days + 1)
    }
    day = utc_day(Message.created_at)
    by_author = select(day, Message.author, func.count()).where(_within(Message.created_at, start, end))
    for key, author, count in await tx.db.execute(by_author.group_by(day, Message.author)):
        row = rows.get(key)
        if row is None:
            continue
        if author == Author.CUSTOMER:
            row.customer_messages += count
        elif author == Author.BOT:
            row.bot_messages += count
        elif author == Author.AGENT:
            row.agent_messages += count
    opened = utc_day(Ticket.created_at)
    for key, count in await tx.db.execute(
        select(opened, func.count()).where(_within(Ticket.created_at, start, end)).group_by(opened)
    ):
        if key in rows:
            rows[key].tickets_opened = count
    resolved = utc_day(Ticket.resolved_at)
    for key, count in await tx.db.execute(
        select(resolved, func.count()).where(_within(Ticket.resolved_at, start, end)).group_by(resolved)
    ):
        if key in rows:
            rows[key].tickets_resolved = count
    return list(rows.values())


async def _intents(tx: TicketSession, start: datetime, end: datetime) -> list[tuple[str, int]]:
    count = func.count().label("n")
    query = (
        select(Message.intent, count)
        .where(Message.author == Author.CUSTOMER, Message.intent.is_not(None), _within(Message.created_at, start, end))
        .group_by(Message.intent)
        .order_by(count.desc(), Message.intent)
    )
    return [(str(name), int(n)) for name, n in await tx.db.execute(query)]


async def _customer_messages_by_channel(tx: TicketSession, start: datetime, end: datetime) -> dict[str, int]:
    query = (
        select(Message.channel, func.count())
        .where(Message.author == Author.CUSTOMER, _within(Message.created_at, start, end))
        .group_by(Message.channel)
    )
    return {str(channel): int(n) for channel, n in await tx.db.execute(query)}


async def _containment(tx: TicketSession, start: datetime, end: datetime) -> dict[str, Containment]:
    """Conversations and contained ones per channel (see the module docstring).

    Conversations (flag 0) and handovers (flag 1) are stacked and a window takes the
    highest flag per customer and day: one sort, no correlated subquery, so it stays
    linear in the range's rows on both databases.
    """
    day = utc_day(Message.created_at)
    conversations = (
        select(Message.customer_id.label("customer_id"), Message.channel.label("channel"), day.label("day"),
               literal(0).label("human"))
        .where(Message.author == Author.CUSTOMER, _within(Message.created_at, start, end))
        .distinct()
    )
    handed_to_agent = select(
        Ticket.customer_id, literal(None, String()), utc_day(TicketEvent.created_at), literal(1)
    ).join(Ticket, Ticket.id == TicketEvent.ticket_id).where(
        TicketEvent.kind == "owner_changed",
        TicketEvent.data["to"].as_string().in_(["queued", "agent"]),
        _within(TicketEvent.created_at, start, end),
    )
    agent_wrote = select(Message.customer_id, literal(None, String()), day, literal(1)).where(
        Message.author == Author.AGENT, _within(Message.created_at, start, end)
    )
    stacked = union_all(conversations, handed_to_agent, agent_wrote).subquery("stacked")
    flagged = select(
        stacked.c.channel,
        stacked.c.human,
        func.max(stacked.c.human).over(partition_by=[stacked.c.customer_id, stacked.c.day]).label("any_human"),
    ).subquery("flagged")
    query = (
        select(flagged.c.channel, func.count(), func.sum(case((flagged.c.any_human == 0, 1), else_=0)))
        .where(flagged.c.human == 0)
        .group_by(flagged.c.channel)
    )
    return {
        str(channel): Containment(int(total), int(contained or 0))
        for channel, total, contained in await tx.db.execute(query)
    }


async def _agent_names(tx: TicketSession, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await tx.db.execute(select(Agent.id, Agent.name, Agent.email).where(Agent.id.in_(ids)))
    return {int(i): name or email for i, name, email in rows}


async def _ticket_groups(
    tx: TicketSession, key: Any, cohort: ColumnElement[bool], now: datetime
) -> dict[Any, Group]:
    """Counts, SLA, CSAT and time percentiles of the cohort, grouped by ``key`` (None: one
    group ``"all"``); a NULL key (unassigned) is the group ``None``."""
    at_now = literal(now, UtcDateTime())
    first_late = and_(
        Ticket.first_response_due.is_not(None),
        func.coalesce(Ticket.first_response_at, at_now) > Ticket.first_response_due,
    )
    resolution_late = and_(
        Ticket.resolution_due.is_not(None), func.coalesce(Ticket.resolved_at, at_now) > Ticket.resolution_due
    )
    one = literal(1)

    def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((condition, one), else_=0)), 0)

    grouped = (key if key is not None else literal_column("'all'")).label("k")

    def by_key(query: Any) -> Any:
        return query.group_by(grouped) if key is not None else query

    counts = select(
        grouped,
        func.count(),
        count_if(Ticket.resolved_at.is_not(None)),
        count_if(first_late),
        count_if(resolution_late),
        count_if(or_(first_late, resolution_late)),
        func.count(Ticket.rating),
        func.avg(cast(Ticket.rating, Float)),
        *(count_if(Ticket.rating == score) for score in RATING_SCORES),
    ).where(cohort)
    groups: dict[Any, Group] = {}
    for row in await tx.db.execute(by_key(counts)):
        k, tickets, resolved, first_breached, resolution_breached, breached, rated, average, *scores = row
        groups[None if k is None else str(k)] = Group(
            key=str(k) if k is not None else "",
            label=str(k) if k is not None else "",
            tickets=int(tickets),
            resolved=int(resolved),
            sla=Sla(int(tickets), int(first_breached), int(resolution_breached), int(breached)),
            csat=Csat(
                int(rated),
                float(average) if average is not None else None,
                {str(score): int(n) for score, n in zip(RATING_SCORES, scores, strict=True)},
            ),
        )
    for attr, later in (("first_response", Ticket.first_response_at), ("resolution", Ticket.resolved_at)):
        for k, durations in (await _percentiles(tx, key, seconds_between(later, Ticket.created_at), cohort)).items():
            group = groups.get(k)
            if group is not None:
                setattr(group, attr, durations)
    return groups


async def _percentiles(
    tx: TicketSession, key: Any, value: ColumnElement[float], cohort: ColumnElement[bool]
) -> dict[Any, Durations]:
    """Nearest-rank percentiles of ``value`` per ``key``, with window functions (portable)."""
    ranked = (
        select(
            (key if key is not None else literal_column("'all'")).label("k"),
            value.label("v"),
            func.row_number().over(partition_by=key, order_by=value).label("rn"),
            func.count().over(partition_by=key).label("n"),
        )
        .where(cohort, value.is_not(None))
        .subquery("ranked")
    )

    def at(p: int) -> ColumnElement[Any]:
        # ⌈p·n/100⌉ in integer arithmetic (SQLite has no ceil() by default).
        rank = (literal(p) * ranked.c.n + literal(99)) // literal(100)
        return func.max(case((ranked.c.rn == cast(rank, Integer), ranked.c.v)))

    query = select(ranked.c.k, func.count(), func.avg(ranked.c.v), *(at(p) for p in PERCENTILES)).group_by(ranked.c.k)
    result: dict[Any, Durations] = {}
    for k, n, average, *values in await tx.db.execute(query):
        result[None if k is None else str(k)] = Durations(
            int(n), _num(average), *(_num(v) for v in values)
        )
    return result


def _num(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


# -- the same data as flat tables (CSV export) -----------------------------------------------
TABLES = ("summary", "days", "intents", "csat", "agents", "channels")
GROUP_HEADERS = [
    "tickets", "resolved", "first_response_count", "first_response_avg_s", "first_response_p50_s",
    "first_response_p90_s", "first_response_p99_s", "resolution_count", "resolution_avg_s", "resolution_p50_s",
    "resolution_p90_s", "resolution_p99_s", "sla_first_response_breached", "sla_resolution_breached",
    "sla_breached", "sla_breach_rate", "csat_count", "csat_average",
    *(f"csat_{score}" for score in RATING_SCORES),
]


def _group_row(g: Group) -> list[Any]:
    times = [g.first_response, g.resolution]
    return [
        g.tickets, g.resolved,
        *(value for d in times for value in (d.count, d.average, d.p50, d.p90, d.p99)),
        g.sla.first_response_breached, g.sla.resolution_breached, g.sla.breached, g.sla.breach_rate,
        g.csat.count, g.csat.average, *(g.csat.distribution[str(s)] for s in RATING_SCORES),
    ]


def report_tables(report: Report) -> dict[str, tuple[list[str], list[list[Any]]]]:
    """Every table of the report: name → (header, rows); the CSV export writes one of them."""
    overall = Group("all", "all", report.sla.tickets, 0, report.first_response, report.resolution, report.sla,
                    report.csat)
    overall.resolved = report.resolution.count
    summary: list[list[Any]] = [
        ["since", report.since.isoformat()],
        ["until", report.until.isoformat()],
        ["conversations", report.containment.conversations],
        ["contained", report.containment.contained],
        ["containment_rate", report.containment.rate],
        *([name, value] for name, value in zip(GROUP_HEADERS, _group_row(overall), strict=True)),
    ]
    return {
        "summary": (["metric", "value"], summary),
        "days": (
            ["day", "customer_messages", "bot_messages", "agent_messages", "tickets_opened", "tickets_resolved"],
            [[d.day, d.customer_messages, d.bot_messages, d.agent_messages, d.tickets_opened, d.tickets_resolved]
             for d in report.days],
        ),
        "intents": (["intent", "messages"], [[name, count] for name, count in report.intents]),
        "csat": (["score", "ratings"], [[score, report.csat.distribution[str(score)]] for score in RATING_SCORES]),
        "agents": (
            ["agent_id", "agent", *GROUP_HEADERS],
            [[g.key or None, g.label, *_group_row(g)] for g in report.agents],
        ),
        "channels": (
            ["channel", "conversations", "contained", "containment_rate", "customer_messages", *GROUP_HEADERS],
            [
                [
                    g.key,
                    g.containment.conversations if g.containment else 0,
                    g.containment.contained if g.containment else 0,
                    g.containment.rate if g.containment else None,
                    g.customer_messages or 0,
                    *_group_row(g),
                ]
                for g in report.channels
            ],
        ),
    }
