"""The long poll confirms an update only after the sink stored it — with aiogram and PTB.

Each test runs the real library against the fake Bot API and puts two things on one
timeline: the sink returning (the update is stored) and every ``getUpdates`` the fake
receives with its ``offset`` (which confirms everything below it). ``Timeline.check``
asserts that no offset ever confirmed an update the sink had not returned from.

Regression: python-telegram-bot's ``Updater`` moved the offset as soon as a batch was
queued, so any stop lost every fetched update not yet handled (140 of 200 under kill -9).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.channels.telegram.api import ClientOptions, Unauthorized
from bot.channels.telegram.client import TelegramClient, open_client
from bot.channels.telegram.intake import PollingIntake
from bot.config import load_settings
from common.errors import ConfigError
from tests.channels.telegram.conftest import ROOT
from tests.fakes.telegram_server import TOKEN, Call, FakeTelegram

LIBRARIES = ["aiogram", "python-telegram-bot"]


@dataclass
class Timeline:
    """Stored updates and confirming offsets, in the order they happened."""

    pushed: list[int] = field(default_factory=list)
    events: list[tuple[str, int | None]] = field(default_factory=list)

    def observe(self, call: Call) -> None:
        if call.method == "getUpdates":
            offset = call.params.get("offset")
            self.events.append(("offset", None if offset in (None, "") else int(offset)))

    def stored(self) -> set[int]:
        return {int(v) for k, v in self.events if k == "stored" and v is not None}

    def check(self) -> None:
        """Every offset sent confirmed only updates the sink had returned from before."""
        done: set[int] = set()
        for kind, value in self.events:
            if kind == "stored" and value is not None:
                done.add(value)
            elif kind == "offset" and value is not None:
                early = [u for u in self.pushed if u < value and u not in done]
                assert not early, f"offset {value} confirmed {early} before they were stored"


class Sink:
    """deskbot's sink stand-in: slow, and holding updates of some chats until ``release``."""

    def __init__(self, timeline: Timeline, *, hold_chats: set[int] | None = None, fail_once: set[int] | None = None,
                 fake: FakeTelegram | None = None) -> None:
        self.timeline = timeline
        self.hold_chats = hold_chats or set()
        self.fail_once = set(fail_once or ())
        self.release = asyncio.Event()
        self.received: list[int] = []
        self.fake = fake
        self.passes: list[tuple[int, int]] = []  # (how many getUpdates so far, update_id)

    async def __call__(self, raw: dict[str, Any]) -> None:
        update_id = int(raw["update_id"])
        self.received.append(update_id)
        if self.fake is not None:
            self.passes.append((len(self.fake.calls_of("getUpdates")), update_id))
        chat = raw["message"]["chat"]["id"]
        if chat in self.hold_chats:
            await self.release.wait()
        await asyncio.sleep(0.002)  # a slow turn: other chats interleave
        if update_id in self.fail_once:
            self.fail_once.discard(update_id)
            raise RuntimeError("database unavailable")
        self.timeline.events.append(("stored", update_id))


async def until(condition: Callable[[], bool], within: float = 30.0) -> None:
    """Wait for the loop to get somewhere; the limit only ends a broken test."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - the sink and the loop change many things; a short poll reads them
            await asyncio.sleep(0.005)


@pytest.fixture(params=LIBRARIES)
def library(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def timeline(fake_telegram: FakeTelegram) -> Timeline:
    line = Timeline()
    fake_telegram.observers.append(line.observe)
    return line


Opener = Callable[..., Awaitable[tuple[TelegramClient, PollingIntake]]]


@pytest.fixture
async def open_intake(library: str, fake_telegram: FakeTelegram) -> AsyncIterator[Opener]:
    """``await open_intake(sleep=..., **options)``: a client of the library and an intake on it."""
    opened: list[tuple[TelegramClient, PollingIntake]] = []

    async def make(sleep: Callable[[float], Any] | None = None, **options: Any) -> tuple[TelegramClient, PollingIntake]:
        settings = ClientOptions(**({"token": TOKEN, "api_base": fake_telegram.base, "request_timeout": 5,
                                     "polling_timeout": 1} | options))
        client = open_client(library, settings)
        intake = PollingIntake(client.api, settings, sleep=sleep) if sleep else PollingIntake(client.api, settings)
        opened.append((client, intake))
        return client, intake

    yield make
    for client, intake in opened:
        await intake.stop()
        await client.api.close()


def recording_sleep(waits: list[float]) -> Callable[[float], Any]:
    async def sleep(seconds: float) -> None:
        waits.append(seconds)  # the loop's waits are checked, not slept
        await asyncio.sleep(0)

    return sleep


async def push_burst(fake: FakeTelegram, timeline: Timeline, chats: range, per_chat: int) -> list[int]:
    """One batch: ``per_chat`` messages from each chat, interleaved as customers write."""
    updates = []
    for n in range(per_chat):
        for chat in chats:
            update_id = fake.next_update_id()
            updates.append({"update_id": update_id, "message": fake.message(chat, f"message {n}")})
    await fake.push_batch(updates)
    ids = [u["update_id"] for u in updates]
    timeline.pushed.extend(ids)
    return ids


# -- confirmation ------------------------------------------------------------------------------
async def test_stop_confirms_only_what_was_stored_and_a_restart_fetches_the_rest(
    fake_telegram: FakeTelegram, timeline: Timeline, open_intake: Opener
) -> None:
    fake = fake_telegram
    _, intake = await open_intake(concurrency=4, grace_seconds=0.2)
    sink = Sink(timeline, hold_chats={107, 108})
    first = await push_burst(fake, timeline, range(100, 106), 3)
    await intake.start_polling(sink)
    await until(lambda: timeline.stored() >= set(first))
    second = await push_burst(fake, timeline, range(100, 110), 4)
    await until(lambda: len(timeline.stored() & set(second)) == 32 and len(sink.received) == len(first) + 34)
    await intake.stop()  # SIGTERM: the held chats' turns do not finish within the grace period

    timeline.check()
    stored = timeline.stored()
    unstored = sorted(set(second) - stored)
    assert len(unstored) == 8 and {u for u in unstored if u in sink.received} == {min(unstored), sorted(unstored)[1]}
    # The first batch was confirmed by the long poll that fetched the second; the stop's own
    # getUpdates(timeout=0) confirmed the second up to the first update not stored.
    assert fake.offsets()[0] is None and max(first) + 1 in fake.offsets()
    assert fake.offsets()[-1] == unstored[0] == fake.confirmed_below
    assert fake.calls_of("getUpdates")[-1].params["timeout"] in (0, "0")

    # Restart: the unconfirmed updates come again (the stored ones among them are the
    # delivery key's to drop), and once stored they are confirmed.
    _, again = await open_intake()
    sink2 = Sink(timeline)
    await again.start_polling(sink2)
    await until(lambda: set(unstored) <= set(sink2.received) and set(timeline.pushed) <= timeline.stored())
    await again.stop()
    timeline.check()
    assert min(sink2.received) == unstored[0] and fake.confirmed_below == max(second) + 1
    assert not set(sink2.received) & set(first)  # confirmed before the stop: never handed over again


async def test_a_cancelled_loop_confirms_nothing_more(
    fake_telegram: FakeTelegram, timeline: Timeline, open_intake: Opener
) -> None:
    fake = fake_telegram
    _, intake = await open_intake(concurrency=3)
    sink = Sink(timeline, hold_chats={202})
    ids = await push_burst(fake, timeline, range(200, 204), 5)
    task = asyncio.create_task(intake.run(sink))
    await until(lambda: len(timeline.stored()) == 15)  # chats 200, 201, 203 done; 202 held
    task.cancel()  # the process is going away without a stop (e.g. the event loop is closing)
    with pytest.raises(asyncio.CancelledError):
        await task

    timeline.check()
    assert fake.offsets() == [None] and fake.confirmed_below == 0
    _, again = await open_intake()
    sink2 = Sink(timeline)
    await again.start_polling(sink2)
    await until(lambda: set(ids) <= set(sink2.received))
    await again.stop()
    timeline.check()
    assert sorted(sink2.received) == ids and fake.confirmed_below == max(ids) + 1


async def test_each_chat_in_order_and_a_failed_update_is_fetched_again(
    fake_telegram: FakeTelegram, timeline: Timeline, open_intake: Opener
) -> None:
    fake = fake_telegram
    waits: list[float] = []
    _, intake = await open_intake(sleep=recording_sleep(waits), concurrency=2)
    ids = await push_burst(fake, timeline, range(300, 305), 4)
    failing = ids[7]  # chat 302's second message
    sink = Sink(timeline, fail_once={failing}, fake=fake)
    await intake.start_polling(sink)
    await until(lambda: set(ids) <= timeline.stored())
    await intake.stop()

    timeline.check()
    assert sink.received.count(failing) == 2 and waits == [1.0]  # a pause before fetching it again
    passes = sorted({p for p, _ in sink.passes})
    assert len(passes) == 2
    for number in passes:
        handed = [u for p, u in sink.passes if p == number]
        for chat in range(300, 305):
            mine = [u for u in handed if u in ids[chat - 300::5]]
            assert mine == sorted(mine)  # a conversation is never reordered
    first, second = ([u for p, u in sink.passes if p == n] for n in passes)
    # Chat 302 stopped at the failure (its later messages waited for it); the next fetch
    # starts at the failed update: everything below it was stored and is confirmed.
    assert ids[12] not in first and ids[17] not in first and len(first) == len(ids) - 2
    assert min(second) == failing and fake.offsets()[1] == failing


# -- errors on getUpdates ------------------------------------------------------------------------------
async def test_429_on_get_updates_waits_retry_after(
    fake_telegram: FakeTelegram, timeline: Timeline, open_intake: Opener
) -> None:
    waits: list[float] = []
    _, intake = await open_intake(sleep=recording_sleep(waits))
    fake_telegram.fault("getUpdates", 429, retry_after=3, times=2)
    ids = await push_burst(fake_telegram, timeline, range(400, 401), 1)
    sink = Sink(timeline)
    await intake.start_polling(sink)
    await until(lambda: set(ids) <= timeline.stored())
    assert waits == [3, 3]  # aiogram's own poller ignored retry_after (1 s)


async def test_5xx_and_409_back_off_capped_and_polling_goes_on(
    fake_telegram: FakeTelegram, timeline: Timeline, open_intake: Opener, caplog: pytest.LogCaptureFixture
) -> None:
    waits: list[float] = []
    _, intake = await open_intake(sleep=recording_sleep(waits), max_backoff_seconds=4)
    fake_telegram.fault("getUpdates", 500, times=2)
    fake_telegram.fault("getUpdates", 502, times=2)
    fake_telegram.fault("getUpdates", 409, times=1, description="Conflict: terminated by other getUpdates request")
    ids = await push_burst(fake_telegram, timeline, range(500, 502), 1)
    sink = Sink(timeline)
    with caplog.at_level(logging.WARNING, logger="deskbot.telegram.intake"):
        await intake.start_polling(sink)
        await until(lambda: set(ids) <= timeline.stored())
    assert waits == [1, 2, 4, 4, 4]
    conflict = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(conflict) == 1 and "another process polls with the same token" in conflict[0].getMessage()


async def test_a_refused_token_stops_polling_with_a_clear_message(
    fake_telegram: FakeTelegram, timeline: Timeline, open_intake: Opener, caplog: pytest.LogCaptureFixture
) -> None:
    _, intake = await open_intake()
    fake_telegram.fault("getUpdates", 401, description="Unauthorized")
    with caplog.at_level(logging.ERROR, logger="deskbot.telegram.intake"):
        await intake.run(Sink(timeline))  # returns: no retry loop against a revoked token
    assert "refused the bot token (secrets.telegram_token)" in caplog.text

    _, wrong = await open_intake(token="999:AAH-not-the-token-of-the-fake")
    with pytest.raises(Unauthorized, match=r"refused the bot token .*secrets\.telegram_token") as refused:
        await wrong.start_polling(Sink(timeline))  # deleteWebhook is the first call
    assert "not-the-token" not in str(refused.value)  # PTB's own message quotes the token


@pytest.mark.parametrize("token", ["not-a-token", "123456 :abc", "abc:def", "123456:"])
def test_a_malformed_token_fails_at_start_with_one_clear_message(library: str, token: str) -> None:
    with pytest.raises(ConfigError, match=r"secrets\.telegram_token is not a Telegram bot token"):
        load_settings(ROOT / "config.yaml", environ={
            "DESKBOT_SECRETS__TELEGRAM_TOKEN": token, "DESKBOT_CHANNELS__TELEGRAM__ENABLED": "true",
            "DESKBOT_CHANNELS__TELEGRAM__LIBRARY": library})
    with pytest.raises(Unauthorized, match=r"secrets\.telegram_token is not a Telegram bot token"):
        open_client(library, ClientOptions(token))  # aiogram raised a bare TokenValidationError here


# -- the agents' group set-up help --------------------------------------------------------------------
async def test_groups_are_announced_once_and_chatid_answers_with_the_id(
    fake_telegram: FakeTelegram, timeline: Timeline, open_intake: Opener, caplog: pytest.LogCaptureFixture
) -> None:
    fake = fake_telegram
    _, intake = await open_intake(agents_chat_id=-100999)
    handed: list[dict[str, Any]] = []

    async def sink(raw: dict[str, Any]) -> None:
        handed.append(raw)

    with caplog.at_level(logging.INFO, logger="deskbot.telegram.intake"):
        await intake.start_polling(sink)
        fake.make_forum(-100999, "Agents")
        await fake.text(7, "hello", chat_id=-100999, chat_type="supergroup")  # the configured group
        await fake.added_to_group(-100555, "Shop helpers", by=8)
        await fake.text(8, "hi all", chat_id=-100555, chat_type="supergroup")
        await fake.text(8, "/chatid@someone_elses_bot", chat_id=-100555, chat_type="supergroup")
        last = await fake.text(8, "/chatid", chat_id=-100555, chat_type="supergroup")
        await fake.settled(last)
    announced = [r.getMessage() for r in caplog.records if "bot is in group" in r.getMessage()]
    assert announced == ["bot is in group Shop helpers (chat id -100555): set channels.telegram.agents_chat_id "
                         "to this id to make it the agents' group"]
    assert "Alice" not in caplog.text  # nothing about the people in the group
    assert fake.texts(-100555) == ["This chat's id is <code>-100555</code> (channels.telegram.agents_chat_id)."]
    assert sorted(r["message"]["text"] for r in handed if "message" in r) == [
        "/chatid@someone_elses_bot", "hello", "hi all"]  # /chatid itself is answered, not handed on
