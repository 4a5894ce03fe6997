"""AgentDesk.add_note and set_priority: stored as events, never sent; SLA follows priority."""

from __future__ import annotations

import re

import pytest

from bot.app import App
from common.errors import DeskbotError
from storage.models import Priority
from tests.factories import Chat


def _number(text: str) -> str:
    found = re.search(r"T-\d{4,}", text)
    assert found, f"no ticket number in {text!r}"
    return found.group(0)


async def test_a_note_is_stored_and_never_reaches_the_customer(app: App) -> None:
    chat = Chat(app, "nora")
    await chat.say("I want to talk to a human please")
    number = _number(chat.text)
    await app.desk.add_note(number, "  Customer called twice already, be nice  ")
    assert await chat.inbox() == []
    async with app.tickets.session() as tx:
        ticket = await tx.ticket_by_number(number)
        notes = [e.data["text"] for e in await tx.ticket_events(ticket.id) if e.kind == "note"]
        messages = [m.text for m in await tx.ticket_messages(ticket.id)]
    assert notes == ["Customer called twice already, be nice"]
    assert not any("called twice" in m for m in messages)


async def test_an_empty_or_huge_note_is_refused(app: App) -> None:
    chat = Chat(app, "olga")
    await chat.say("I want to talk to a human please")
    number = _number(chat.text)
    with pytest.raises(DeskbotError, match="needs some text"):
        await app.desk.add_note(number, "   ")
    with pytest.raises(DeskbotError, match="at most"):
        await app.desk.add_note(number, "x" * 10_001)


async def test_priority_change_is_an_event_and_moves_the_due_times(app: App) -> None:
    chat = Chat(app, "paul")
    await chat.say("I want to complain, the delivery was late")
    number = _number(chat.text)
    async with app.tickets.session() as tx:
        before = await tx.ticket_by_number(number)
    assert before.priority == Priority.NORMAL
    result = await app.desk.set_priority(number, "URGENT")
    assert result.ticket_number == number
    await app.desk.set_priority(number, Priority.URGENT)  # unchanged: no second event
    async with app.tickets.session() as tx:
        after = await tx.ticket_by_number(number)
        changes = [e.data for e in await tx.ticket_events(after.id) if e.kind == "priority_changed"]
    assert after.priority == Priority.URGENT
    assert changes == [{"from": "normal", "to": "urgent"}]
    assert after.first_response_due is not None and before.first_response_due is not None
    assert after.first_response_due < before.first_response_due
    assert after.resolution_due is not None and before.resolution_due is not None
    assert after.resolution_due < before.resolution_due


async def test_an_unknown_priority_names_the_choices(app: App) -> None:
    chat = Chat(app, "quinn")
    await chat.say("I want to talk to a human please")
    with pytest.raises(DeskbotError, match="low, normal, high, urgent"):
        await app.desk.set_priority(_number(chat.text), "asap")
