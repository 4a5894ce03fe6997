"""Due times told to customers name the shop's time zone (item 11): a customer in another
zone must know which 17:00 is meant. The calendar gives ``{due}``, ``{zone}`` and ``{utc}``;
each language's template words them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from bot.app import App
from desk.sla import BusinessCalendar
from tests.factories import Chat

WEEK = {d: (time(9), time(17)) for d in ("mon", "tue", "wed", "thu", "fri")}


def calendar(zone: str) -> BusinessCalendar:
    return BusinessCalendar(ZoneInfo(zone), WEEK, frozenset())


def test_due_params_are_local_with_the_zone_and_its_offset_at_that_moment() -> None:
    ams = calendar("Europe/Amsterdam")
    assert ams.due_params(datetime(2026, 12, 2, 13, 30, tzinfo=UTC)) == {
        "due": "2026-12-02 14:30", "zone": "Europe/Amsterdam", "utc": "UTC+1"
    }
    # Summer time: the offset of the due moment, not of today.
    assert ams.due_params(datetime(2026, 7, 1, 13, 30, tzinfo=UTC))["utc"] == "UTC+2"
    assert calendar("Asia/Kolkata").utc_offset(datetime(2026, 12, 2, tzinfo=UTC)) == "UTC+5:30"
    assert calendar("America/New_York").utc_offset(datetime(2026, 7, 1, tzinfo=UTC)) == "UTC-4"
    assert calendar("UTC").utc_offset(datetime(2026, 7, 1, tzinfo=UTC)) == "UTC"
    assert ams.due_params(None)["due"] == "-"


def _shown(app: App, due: datetime) -> tuple[str, str]:
    cal = app.pipeline.services.policy.calendar
    return cal.local(due).strftime("%Y-%m-%d %H:%M"), cal.utc_offset(due)


async def _complaint_due(app: App, chat: Chat) -> datetime:
    number = re.search(r"T-\d{4,}", chat.text)
    assert number, chat.text
    async with app.tickets.session() as tx:
        ticket = await tx.ticket_by_number(number.group(0))
    assert ticket is not None and ticket.first_response_due is not None
    return ticket.first_response_due


async def test_complaint_due_time_names_the_time_zone_in_english(app: App) -> None:
    chat = Chat(app, "henry")
    await chat.say("THIS IS UNACCEPTABLE, my parcel arrived damaged and nobody answers!!!")
    due, utc = _shown(app, await _complaint_due(app, chat))
    assert f"by {due} (Europe/Amsterdam time, {utc})." in chat.text, chat.text


async def test_complaint_due_time_names_the_time_zone_in_chinese(app: App) -> None:
    chat = Chat(app, "zhao", language="zh")
    await chat.say("你们太坑人了！！！衣服破了个洞，我要投诉")
    due, utc = _shown(app, await _complaint_due(app, chat))
    assert f"{due}（Europe/Amsterdam 时间，{utc}）前回复您" in chat.text, chat.text


async def test_queue_position_due_time_names_the_time_zone(app: App) -> None:
    chat = Chat(app, "ivy")
    await chat.say("I want to talk to a human")
    await chat.say("hello? anyone there?")
    assert re.search(r"expect an answer by \d{4}-\d\d-\d\d \d\d:\d\d \(Europe/Amsterdam time, UTC\+\d\)", chat.text), (
        chat.text
    )
