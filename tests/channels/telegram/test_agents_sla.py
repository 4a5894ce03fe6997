"""SLA breaches and near-breaches reach the agents' group once per ticket, target and due time."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from bot.app import App, agents_desk
from bot.channels.telegram.agents.group import AgentsGroup, AgentsGroupSettings
from desk.sla_alerts import SlaWatch
from storage.models import TicketStatus
from tests.channels.telegram.agents_support import AGENTS_CHAT, VirtualTime, desk_app, eventually
from tests.factories import Chat
from tests.fakes.recording_api import RecordingTelegramApi

__all__ = ["desk_app"]


async def _due(app: App, number: str) -> tuple[datetime, datetime]:
    async with app.tickets.session() as tx:
        ticket = await tx.ticket_by_number(number)
        assert ticket.first_response_due is not None and ticket.resolution_due is not None
        return ticket.first_response_due, ticket.resolution_due


async def test_each_alert_is_raised_once_and_recorded(desk_app: App) -> None:
    chat = Chat(desk_app, "sla-1")
    await chat.say("I want to talk to a human please")
    number = re.search(r"T-\d+", chat.text).group(0)  # type: ignore[union-attr]
    first_due, resolution_due = await _due(desk_app, number)
    now = [first_due - timedelta(hours=2)]
    watch = SlaWatch(desk_app.tickets, warn_minutes=30, clock=lambda: now[0])

    assert await watch.check() == []  # nothing due soon
    now[0] = first_due - timedelta(minutes=10)
    assert [(a.number, a.target, a.level) for a in await watch.check()] == [(number, "first_response", "near")]
    assert await watch.check() == []  # once
    now[0] = first_due + timedelta(minutes=1)
    assert [(a.target, a.level) for a in await watch.check()] == [("first_response", "breached")]
    assert await watch.check() == []
    async with desk_app.tickets.session() as tx:
        ticket = await tx.ticket_by_number(number)
        alerts = [e.data for e in await tx.ticket_events(ticket.id) if e.kind == "sla_alert"]
    assert alerts == [
        {"target": "first_response", "level": "near", "due": first_due.isoformat()},
        {"target": "first_response", "level": "breached", "due": first_due.isoformat()},
    ]

    # an answered ticket no longer alerts on first response; a resolved one not at all
    await desk_app.desk.reply(number, "Hello, on it.")
    now[0] = resolution_due + timedelta(minutes=1)
    assert [(a.target, a.level) for a in await watch.check()] == [("resolution", "breached")]
    await desk_app.desk.resolve(number)
    now[0] = resolution_due + timedelta(days=3)
    assert await watch.check() == []
    async with desk_app.tickets.session() as tx:
        assert (await tx.ticket_by_number(number)).status == TicketStatus.RESOLVED


async def test_alerts_are_posted_in_the_tickets_topic(desk_app: App) -> None:
    clock = VirtualTime()
    api = RecordingTelegramApi(forums={AGENTS_CHAT})
    group = AgentsGroup(api, agents_desk(desk_app), AgentsGroupSettings(AGENTS_CHAT, sla_warn_minutes=15), sleep=clock.sleep,
                        monotonic=clock.monotonic)
    await group.start()
    try:
        chat = Chat(desk_app, "sla-2")
        await chat.say("I want to talk to a human please")
        number = re.search(r"T-\d+", chat.text).group(0)  # type: ignore[union-attr]
        await eventually(lambda: len(api.topics) == 1 and not group.busy, "topic")
        thread = next(iter(api.topics))
        first_due, _ = await _due(desk_app, number)
        now = [first_due + timedelta(minutes=5)]
        group.sla.clock = lambda: now[0]
        await group.sla.check()
        await group.sla.check()
        await eventually(lambda: any("SLA breached" in t for t in api.in_thread(thread)), "breach in the topic")
        breaches = [t for t in api.in_thread(thread) if "SLA" in t]
        assert len(breaches) == 1 and number in breaches[0] and "first response" in breaches[0]
    finally:
        await group.close()


async def test_an_alert_for_a_ticket_not_in_the_group_goes_to_the_general_chat(desk_app: App) -> None:
    from storage.models import TicketKind, utcnow

    clock = VirtualTime()
    api = RecordingTelegramApi(forums={AGENTS_CHAT})
    group = AgentsGroup(api, agents_desk(desk_app), AgentsGroupSettings(AGENTS_CHAT), sleep=clock.sleep,
                        monotonic=clock.monotonic)
    await group.start()
    try:
        async with desk_app.tickets.session() as tx:  # a return the bot handled: never escalated
            customer, _ = await tx.resolve_customer("web", "w-1", "w-1")
            ticket = await tx.open_ticket(customer, kind=TicketKind.RETURN, subject="Return A1", channel="web",
                                          actor="bot", first_response_due=utcnow() - timedelta(minutes=5),
                                          resolution_due=utcnow() + timedelta(days=2))
            number = ticket.number
        await group.sla.check()
        await eventually(lambda: any("SLA breached" in p.text for p in api.posted), "breach posted")
        alert = next(p for p in api.posted if "SLA breached" in p.text)
        assert number in alert.text and alert.thread_id is None and alert.reply_to is None
        assert api.topics == {}  # an alert does not make a topic
    finally:
        await group.close()
