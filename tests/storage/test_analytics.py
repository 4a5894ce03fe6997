"""Analytics figures on constructed data, on SQLite and PostgreSQL (storage/analytics.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from storage.analytics import InvalidRange, Report, build_report, parse_range
from storage.models import (
    Agent,
    Author,
    Customer,
    DeliveryStatus,
    Direction,
    Owner,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketStatus,
)
from storage.tickets import SqlTicketStore, TicketSession

NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
SINCE, UNTIL = date(2026, 11, 1), date(2026, 11, 3)


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def message(who: Customer, channel: str, author: Author, when: datetime, intent: str | None = None) -> Any:
    from storage.models import Message

    return Message(
        customer_id=who.id,
        channel=channel,
        chat_id=str(who.id),
        direction=Direction.INBOUND if author == Author.CUSTOMER else Direction.OUTBOUND,
        author=author,
        text="text",
        payload={},
        intent=intent,
        status=DeliveryStatus.RECEIVED if author == Author.CUSTOMER else DeliveryStatus.SENT,
        created_at=when,
    )


def ticket(who: Customer, channel: str, created: datetime, **values: Any) -> Ticket:
    resolved = values.get("resolved_at")
    return Ticket(
        kind=values.pop("kind", TicketKind.COMPLAINT),
        status=TicketStatus.RESOLVED if resolved else TicketStatus.OPEN,
        subject="s",
        fields={},
        customer_id=who.id,
        channel=channel,
        created_at=created,
        updated_at=created,
        **values,
    )


async def seed(tx: TicketSession) -> dict[str, int]:
    eve = Agent(email="eve@shop.test", name="Eve", role="agent")
    max_ = Agent(email="max@shop.test", name="Max", role="agent")
    c1, c2, c3, c4 = (Customer(display_name=n, language="en", tags=[], owner=Owner.BOT) for n in "ABCD")
    tx.db.add_all([eve, max_, c1, c2, c3, c4])
    await tx.db.flush()
    t1 = ticket(c2, "telegram", at(1, 10), assignee_id=eve.id, first_response_due=at(1, 11),
                first_response_at=at(1, 10, 30), resolution_due=at(1, 14), resolved_at=at(1, 15), rating=5)
    t2 = ticket(c3, "webchat", at(2, 9), assignee_id=eve.id, first_response_due=at(2, 10),
                first_response_at=at(2, 11), resolution_due=at(3, 9), resolved_at=at(2, 12), rating=3,
                kind=TicketKind.RETURN)
    t3 = ticket(c3, "webchat", at(3, 8), assignee_id=max_.id, first_response_due=at(3, 9),
                first_response_at=at(3, 8, 10), resolution_due=at(3, 20))
    t4 = ticket(c1, "webchat", at(3, 12), first_response_due=at(12, 0), resolution_due=at(20, 0))
    t5 = ticket(c1, "webchat", at(30, 9, month=10), resolved_at=at(1, 9), first_response_at=at(30, 9, month=10),
                rating=1)
    tx.db.add_all([t1, t2, t3, t4, t5])
    await tx.db.flush()
    tx.db.add_all([
        # 11-01: c1 talks to the bot only (contained); c2 is handed to Eve (not contained)
        message(c1, "webchat", Author.CUSTOMER, at(1, 8), "greet"),
        message(c1, "webchat", Author.BOT, at(1, 8, 1)),
        message(c1, "webchat", Author.CUSTOMER, at(1, 8, 2), "greet"),
        message(c1, "webchat", Author.CUSTOMER, at(1, 8, 3), "price"),
        message(c1, "webchat", Author.BOT, at(1, 8, 4)),
        message(c2, "telegram", Author.CUSTOMER, at(1, 9, 59), "complaint"),
        message(c2, "telegram", Author.AGENT, at(1, 10, 30)),
        # 11-02: c2 answers a form (no intent), nobody hands over (contained);
        # c3 opens a return with the bot; a hand-back to the bot is no handover (contained)
        message(c2, "telegram", Author.CUSTOMER, at(2, 7), None),
        message(c3, "webchat", Author.CUSTOMER, at(2, 8, 59), "return"),
        message(c3, "webchat", Author.BOT, at(2, 9)),
        # 11-03: c3 is queued for a human (not contained)
        message(c3, "webchat", Author.CUSTOMER, at(3, 7, 59), "out_of_scope"),
        # outside the range: ignored
        message(c4, "webchat", Author.CUSTOMER, at(31, 23, 59, month=10), "greet"),
        message(c4, "webchat", Author.CUSTOMER, at(4, 0), "greet"),
        TicketEvent(ticket_id=t1.id, actor="bot", kind="owner_changed", data={"from": "bot", "to": "queued"},
                    created_at=at(1, 10)),
        TicketEvent(ticket_id=t2.id, actor="eve", kind="owner_changed", data={"from": "agent", "to": "bot"},
                    created_at=at(2, 12)),
        TicketEvent(ticket_id=t3.id, actor="bot", kind="owner_changed", data={"from": "bot", "to": "queued"},
                    created_at=at(3, 8)),
    ])
    return {"eve": eve.id, "max": max_.id}


@pytest.fixture
async def report(ticket_store: SqlTicketStore) -> tuple[Report, dict[str, int]]:
    async with ticket_store.session() as tx:
        ids = await seed(tx)
    async with ticket_store.session() as tx:
        return await build_report(tx, SINCE, UNTIL, now=NOW), ids


async def test_per_day_counts(report: tuple[Report, dict[str, int]]) -> None:
    days = {d.day: d for d in report[0].days}
    assert list(days) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    one, two, three = days.values()
    assert (one.customer_messages, one.bot_messages, one.agent_messages) == (4, 2, 1)
    assert (two.customer_messages, two.bot_messages, two.agent_messages) == (2, 1, 0)
    assert (three.customer_messages, three.bot_messages, three.agent_messages) == (1, 0, 0)
    # T5 (opened in October) and T1 were resolved on the 1st.
    assert [(d.tickets_opened, d.tickets_resolved) for d in days.values()] == [(1, 2), (1, 1), (2, 0)]


async def test_intents_most_frequent_first(report: tuple[Report, dict[str, int]]) -> None:
    assert report[0].intents == [("greet", 2), ("complaint", 1), ("out_of_scope", 1), ("price", 1), ("return", 1)]
    shares = {row["intent"]: row["share"] for row in report[0].as_dict()["intents"]}
    assert shares["greet"] == pytest.approx(2 / 6)


async def test_containment(report: tuple[Report, dict[str, int]]) -> None:
    result = report[0]
    assert (result.containment.conversations, result.containment.contained) == (5, 3)
    assert result.containment.rate == pytest.approx(0.6)
    channels = {g.key: g for g in result.channels}
    assert channels["webchat"].containment is not None and channels["telegram"].containment is not None
    assert (channels["webchat"].containment.conversations, channels["webchat"].containment.contained) == (3, 2)
    assert (channels["telegram"].containment.conversations, channels["telegram"].containment.contained) == (2, 1)
    assert (channels["webchat"].customer_messages, channels["telegram"].customer_messages) == (5, 2)


async def test_response_time_percentiles(report: tuple[Report, dict[str, int]]) -> None:
    first, resolution = report[0].first_response, report[0].resolution
    # first responses of the cohort: 10 min, 30 min, 2 h (nearest rank)
    assert (first.count, first.p50, first.p90, first.p99) == (3, 1800.0, 7200.0, 7200.0)
    assert first.average == pytest.approx(3200.0)
    # resolutions: 3 h (T2), 5 h (T1); T5 is not in the cohort
    assert (resolution.count, resolution.p50, resolution.p90) == (2, 10800.0, 18000.0)
    assert resolution.average == pytest.approx(14400.0)


async def test_sla_breaches(report: tuple[Report, dict[str, int]]) -> None:
    sla = report[0].sla
    # T2 answered late; T1 resolved late; T3 still open after its resolution due; T4 not due yet.
    assert (sla.tickets, sla.first_response_breached, sla.resolution_breached, sla.breached) == (4, 1, 2, 3)
    assert sla.breach_rate == pytest.approx(0.75)


async def test_csat(report: tuple[Report, dict[str, int]]) -> None:
    csat = report[0].csat
    assert (csat.count, csat.average) == (2, 4.0)
    assert csat.distribution == {"1": 0, "2": 0, "3": 1, "4": 0, "5": 1}


async def test_per_agent_and_channel(report: tuple[Report, dict[str, int]]) -> None:
    result, ids = report
    agents = {g.label: g for g in result.agents}
    assert list(agents) == ["Eve", "Max", "unassigned"]
    eve, max_, nobody = agents["Eve"], agents["Max"], agents["unassigned"]
    assert eve.key == str(ids["eve"])
    assert (eve.tickets, eve.resolved, eve.sla.breached, eve.csat.average) == (2, 2, 2, 4.0)
    assert (eve.first_response.p50, eve.resolution.p50) == (1800.0, 10800.0)
    assert (max_.tickets, max_.resolved, max_.sla.breached, max_.csat.count) == (1, 0, 1, 0)
    assert max_.first_response.p50 == 600.0 and max_.resolution.count == 0
    assert (nobody.tickets, nobody.sla.breached) == (1, 0)
    channels = {g.key: g for g in result.channels}
    assert (channels["telegram"].tickets, channels["telegram"].csat.average) == (1, 5.0)
    assert (channels["webchat"].tickets, channels["webchat"].sla.breached) == (3, 2)
    assert channels["webchat"].csat.distribution["3"] == 1


async def test_json_shape(report: tuple[Report, dict[str, int]]) -> None:
    data = report[0].as_dict()
    assert data["since"] == "2026-11-01" and data["containment"]["rate"] == pytest.approx(0.6)
    assert data["sla"]["breach_rate"] == pytest.approx(0.75)
    assert data["agents"][0]["first_response"]["p50"] == 1800.0


async def test_an_empty_range(ticket_store: SqlTicketStore) -> None:
    async with ticket_store.session() as tx:
        empty = await build_report(tx, SINCE, SINCE, now=NOW)
    assert empty.containment.rate is None and empty.csat.average is None and empty.first_response.p50 is None
    assert [d.customer_messages for d in empty.days] == [0]
    assert empty.agents == [] and empty.sla.breach_rate is None


def test_parse_range() -> None:
    today = date(2026, 11, 23)
    assert parse_range(None, None, today) == (date(2026, 10, 25), today)
    assert parse_range("2026-11-01", "2026-11-03", today) == (SINCE, UNTIL)
    assert parse_range("2026-11-01", None, today) == (SINCE, today)
    for bad in [("2026-11-04", "2026-11-03"), ("yesterday", None), ("2020-01-01", "2026-01-01"), ("2026-13-01", None)]:
        with pytest.raises(InvalidRange):
            parse_range(*bad, today)
