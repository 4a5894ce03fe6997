"""The customer side of Telegram, end to end: real aiogram / PTB clients against the fake Bot API.

Every scenario runs for both libraries and both intake modes, on SQLite + memory and on
PostgreSQL + Redis (see ``conftest.py``).
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from typing import Any

import httpx

from bot.web.app import create_web_app
from desk.accounts import Accounts
from storage.models import DeliveryStatus, Direction, Owner, TicketKind, utcnow
from tests.channels.telegram.conftest import WEBHOOK_SECRET, TelegramBot
from tests.factories import add_orders, order

ALICE = 5001
BOB = 5002


def _number(texts: list[str]) -> str:
    found = re.search(r"T-\d{4,}", "\n".join(texts))
    assert found, f"no ticket number in {texts!r}"
    return found.group(0)


async def _ticket(bot: TelegramBot, number: str) -> tuple[Any, list[Any], list[Any]]:
    async with bot.app.tickets.session() as tx:
        ticket = await tx.ticket_by_number(number)
        events = list(await tx.ticket_events(ticket.id))
        messages = list(await tx.ticket_messages(ticket.id))
        return ticket, events, messages


async def _customer(bot: TelegramBot, user: int) -> Any:
    async with bot.app.tickets.session() as tx:
        return await tx.find_customer("telegram", str(user))


async def _handoff(bot: TelegramBot, user: int) -> str:
    replies = await bot.say(user, "/human")
    return _number(replies)


def _web(bot: TelegramBot) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_web_app(bot.app))
    return httpx.AsyncClient(transport=transport, base_url="http://deskbot.test")


# -- conversations ------------------------------------------------------------------------
async def test_presale_question(telegram_bot: TelegramBot) -> None:
    replies = await telegram_bot.say(ALICE, "/start")
    assert any("assistant" in r for r in replies)
    replies = await telegram_bot.say(ALICE, "how much is the hoodie?")
    assert any("49.90" in r for r in replies)
    sent = telegram_bot.fake.sent(ALICE)
    assert all(m["parse_mode"] == "HTML" for m in sent)
    customer = await _customer(telegram_bot, ALICE)
    assert customer.display_name == "Alice" and customer.language == "en"


async def test_start_greets_in_the_users_telegram_language(telegram_bot: TelegramBot) -> None:
    replies = await telegram_bot.say(BOB, "/start", language_code="zh-hans")
    assert any("您好" in r for r in replies)
    assert (await _customer(telegram_bot, BOB)).language == "zh"


async def test_return_with_buttons_and_a_photo_ends_in_a_ticket(telegram_bot: TelegramBot) -> None:
    bot, fake = telegram_bot, telegram_bot.fake
    await add_orders(bot.app, order("A20001"))
    assert any("order number" in r for r in await bot.say(ALICE, "I want to return something"))
    assert any("e-mail" in r for r in await bot.say(ALICE, "A20001"))
    assert any("reason" in r for r in await bot.say(ALICE, "alice@example.com"))
    photo = fake.add_file(b"\xff\xd8 a damaged hoodie", file_id="PHOTO-damaged")
    replies = await bot.do(ALICE, lambda: fake.photo(ALICE, photo))
    assert any("added the photo" in r for r in replies)
    await bot.say(ALICE, "it is too small")
    await bot.press(ALICE, "Refund")
    replies = await bot.press(ALICE, "Yes")
    ticket, _, _ = await _ticket(bot, _number(replies))
    assert ticket.kind == TicketKind.RETURN and ticket.order_id == "A20001"
    assert ticket.fields["attachments"][0]["file_id"] == "PHOTO-damaged"
    assert ticket.fields["resolution"] == "refund"
    # Every button tap was answered, so no spinner is left on the customer's screen.
    taps = [c for c in fake.calls if c.method == "answerCallbackQuery"]
    assert len(taps) == 2


async def test_agent_reply_resolve_and_rating_by_button(telegram_bot: TelegramBot) -> None:
    bot, fake = telegram_bot, telegram_bot.fake
    number = await _handoff(bot, ALICE)
    await bot.app.desk.reply(number, "Hi Alice, I'm Sam.")
    await fake.wait_until(lambda: "Hi Alice, I'm Sam." in fake.texts(ALICE))
    await bot.app.desk.resolve(number)
    await fake.wait_until(lambda: any("rate" in t for t in fake.texts(ALICE)))
    replies = await bot.press(ALICE, "5 ★★★★★")
    assert any("5/5" in r for r in replies)
    ticket, _, messages = await _ticket(bot, number)
    assert ticket.rating == 5
    outbound = [m for m in messages if m.direction == Direction.OUTBOUND]
    assert all(m.status == DeliveryStatus.SENT for m in outbound)
    assert fake.texts(ALICE).count("Hi Alice, I'm Sam.") == 1  # relayed once


async def test_cancel_leaves_the_form(telegram_bot: TelegramBot) -> None:
    bot = telegram_bot
    await bot.say(ALICE, "I want to return something")
    replies = await bot.say(ALICE, "/cancel")
    assert any("cancelled" in r for r in replies)
    replies = await bot.say(ALICE, "how much is the hoodie?")
    assert any("49.90" in r for r in replies)


async def test_status_command_lists_tickets(telegram_bot: TelegramBot) -> None:
    number = await _handoff(telegram_bot, ALICE)
    replies = await telegram_bot.say(ALICE, "/status")
    assert any(number in r for r in replies)


async def test_edited_message_is_a_correction(telegram_bot: TelegramBot) -> None:
    bot, fake = telegram_bot, telegram_bot.fake
    await add_orders(bot.app, order("A20001"))
    await bot.say(ALICE, "I want to return something")
    first = await bot.say(ALICE, "A29999")
    assert any("A29999" in r for r in first)  # not found
    typo_id = fake.sent(ALICE)[-1]["message_id"] - 1
    replies = await bot.do(ALICE, lambda: fake.edit(ALICE, typo_id, "A20001"))
    assert any("e-mail" in r for r in replies)


async def test_shared_contact_fills_the_phone(telegram_bot: TelegramBot) -> None:
    bot, fake = telegram_bot, telegram_bot.fake
    replies = await bot.do(ALICE, lambda: fake.contact(ALICE, "447700900123"))
    assert any("phone number" in r for r in replies)
    assert (await _customer(bot, ALICE)).phone == "+447700900123"


# -- what the channel must refuse or survive ------------------------------------------------
async def test_blocked_user_is_marked_unreachable_and_the_reply_failed(telegram_bot: TelegramBot) -> None:
    bot, fake = telegram_bot, telegram_bot.fake
    number = await _handoff(bot, ALICE)
    fake.block(ALICE)
    result = await bot.app.desk.reply(number, "Are you still there?")
    await bot.channel.relay_queued()  # waits for a sweep the bus may have started already
    _, events, messages = await _ticket(bot, number)
    assert any(e.kind == "delivery_failed" and e.data["message_id"] == result.message_id for e in events)
    failed_message = next(m for m in messages if m.id == result.message_id)
    assert "Forbidden" in (failed_message.error or "")
    assert (await _customer(bot, ALICE)).unreachable is True
    assert "Are you still there?" not in fake.texts(ALICE)
    fake.blocked.clear()  # they unblock the bot and write again
    await bot.say(ALICE, "sorry, I'm back")
    assert (await _customer(bot, ALICE)).unreachable is False


class _Clock:
    """The outbox reader's clock, moved by the test instead of waited for."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    async def advance(self, bot: TelegramBot, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
        await bot.channel.relay_queued()


async def test_a_burst_of_429s_holds_the_reply_then_delivers_it_once(telegram_bot: TelegramBot) -> None:
    bot, fake = telegram_bot, telegram_bot.fake
    clock = bot.channel.outbox.clock = _Clock()
    fake.fault("sendMessage", 429, retry_after=3, times=4, chat_id=ALICE)
    assert await bot.say(ALICE, "how much is the hoodie?") == []  # stored, held: the intake goes on
    async with bot.app.tickets.session() as tx:
        customer = await tx.find_customer("telegram", str(ALICE))
        assert customer is not None
        held = [m for m in await tx.conversation(customer.id) if m.direction == Direction.OUTBOUND]
    assert held and all(m.status == DeliveryStatus.QUEUED for m in held)
    assert held[0].not_before == clock.now + timedelta(seconds=3)  # exactly what Telegram asked
    for _ in range(4):
        await clock.advance(bot, 3)
    assert len([t for t in fake.texts(ALICE) if "49.90" in t]) == 1
    rejected = [c for c in fake.calls_of("sendMessage") if c.status == 429]
    assert len(rejected) == 4
    assert bot.waits == []  # nothing slept in place


async def test_server_errors_are_retried_with_backoff(telegram_bot: TelegramBot) -> None:
    bot, fake = telegram_bot, telegram_bot.fake
    clock = bot.channel.outbox.clock = _Clock()
    fake.fault("sendMessage", 502, times=2, chat_id=ALICE)
    await bot.say(ALICE, "how much is the hoodie?")
    await clock.advance(bot, 0.5)
    assert not any("49.90" in t for t in fake.texts(ALICE))
    await clock.advance(bot, 1.0)
    assert len([t for t in fake.texts(ALICE) if "49.90" in t]) == 1


async def test_duplicate_update_id_is_processed_once(telegram_bot: TelegramBot) -> None:
    bot, fake = telegram_bot, telegram_bot.fake
    # Telegram redelivers after a webhook timeout or a poll that was never confirmed:
    # the same update twice in a row.
    update = {"update_id": 777, "message": fake.message(ALICE, "how much is the hoodie?")}

    async def twice() -> int:
        await fake.push_batch([update, update])
        return 777

    await bot.deliver(twice(), times=2)
    assert len([t for t in fake.texts(ALICE) if "49.90" in t]) == 1
    async with bot.app.tickets.session() as tx:
        customer = await tx.find_customer("telegram", str(ALICE))
        inbound = [m for m in await tx.conversation(customer.id) if m.direction == Direction.INBOUND]
    assert len(inbound) == 1


async def test_forged_webhook_call_is_refused_and_changes_nothing(telegram_bot: TelegramBot) -> None:
    bot, fake = telegram_bot, telegram_bot.fake
    update = {"update_id": 9001, "message": fake.message(BOB, "I want to talk to a human")}
    async with _web(bot) as web:
        forged = await web.post("/telegram/webhook", json=update,
                                headers={"X-Telegram-Bot-Api-Secret-Token": "guess"})
        missing = await web.post("/telegram/webhook", json=update)
        assert forged.status_code == 401 and missing.status_code == 401
        assert await _customer(bot, BOB) is None
        assert fake.texts(BOB) == []
        garbage = await web.post("/telegram/webhook", content=b"\xff{not json",
                                 headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET})
        assert garbage.status_code == 400
        # An update is read as raw JSON, as in polling (intake.py): one it cannot use is ignored
        # (200, or Telegram would send it again and again), and nothing is stored.
        malformed = await web.post("/telegram/webhook", json={"update_id": 9002, "message": {"text": "hi"}},
                                   headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET})
        assert malformed.status_code == 200
        no_id = await web.post("/telegram/webhook", json={"message": {"text": "hi"}},
                               headers={"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET})
        assert no_id.status_code == 422
        assert await _customer(bot, BOB) is None


async def test_long_reply_is_split_between_words(telegram_bot: TelegramBot) -> None:
    bot, fake = telegram_bot, telegram_bot.fake
    number = await _handoff(bot, ALICE)
    words = [f"word{i}" for i in range(1100)]  # 8,789 characters: three messages
    await bot.app.desk.reply(number, " ".join(words))
    await bot.channel.relay_queued()
    parts = [t for t in fake.texts(ALICE) if t.startswith("word")]
    assert len(parts) == 3 and all(3000 < len(p) <= 4096 for p in parts[:-1])
    assert " ".join(parts).split() == words  # nothing lost, no word cut


async def test_html_is_escaped(telegram_bot: TelegramBot) -> None:
    bot, fake = telegram_bot, telegram_bot.fake
    number = await _handoff(bot, ALICE)
    await bot.app.desk.reply(number, "Use <b>code</b> R&D <5%")
    await bot.channel.relay_queued()
    sent = next(m for m in fake.sent(ALICE) if "R&amp;D" in m["text"])
    assert sent["text"] == "Use &lt;b&gt;code&lt;/b&gt; R&amp;D &lt;5%" and sent["parse_mode"] == "HTML"
    assert html.unescape(sent["text"]) == "Use <b>code</b> R&D <5%"


async def test_sticker_gets_a_polite_please_write(telegram_bot: TelegramBot) -> None:
    bot, fake = telegram_bot, telegram_bot.fake
    replies = await bot.do(ALICE, lambda: fake.sticker(ALICE))
    assert any("write your request as text" in r for r in replies)


async def test_oversize_and_unaccepted_files_are_explained_and_noted(telegram_bot: TelegramBot) -> None:
    bot, fake = telegram_bot, telegram_bot.fake
    number = await _handoff(bot, ALICE)
    big = fake.add_file(b"x", file_id="BIG-video", file_path="videos/big.mp4", file_size=25 * 1024 * 1024)
    replies = await bot.do(ALICE, lambda: fake.document(ALICE, big, "unboxing.mp4", "video/mp4"))
    assert any("too large" in r and "20 MB" in r for r in replies)
    exe = fake.add_file(b"MZ...", file_id="EXE-1", file_path="documents/setup.exe")
    replies = await bot.do(ALICE, lambda: fake.document(ALICE, exe, "setup.exe", "application/x-msdownload"))
    assert any("can't accept" in r for r in replies)
    _, events, _ = await _ticket(bot, number)
    notes = [e.data for e in events if e.kind == "note"]
    assert [n["file"]["file_id"] for n in notes] == ["BIG-video", "EXE-1"]


async def test_group_chats_are_ignored(telegram_bot: TelegramBot) -> None:
    bot, fake = telegram_bot, telegram_bot.fake
    await bot.deliver(fake.text(ALICE, "how much is the hoodie?", chat_id=-100555, chat_type="group"))
    assert fake.texts(-100555) == [] and fake.texts(ALICE) == []
    assert await _customer(bot, ALICE) is None


async def test_agents_download_a_customers_file(telegram_bot: TelegramBot) -> None:
    bot, fake = telegram_bot, telegram_bot.fake
    number = await _handoff(bot, ALICE)
    photo = fake.add_file(b"\xff\xd8 receipt", file_id="PHOTO-receipt", file_path="photos/file_7.jpg")
    await bot.do(ALICE, lambda: fake.photo(ALICE, photo, caption="here is the receipt"))
    _, events, messages = await _ticket(bot, number)
    shown = [e.data for e in events if e.kind == "customer_message"][-1]
    assert shown["text"] == "here is the receipt" and shown["attachments"][0]["file_id"] == "PHOTO-receipt"
    stored = next(m for m in messages if m.payload.get("attachments"))
    file_id = stored.payload["attachments"][0]["file_id"]
    accounts = Accounts(bot.app.tickets)
    await accounts.add_agent("sam@shop.example", "Sam", "agent", "a long enough password")
    token = await accounts.issue_token("sam@shop.example")
    async with _web(bot) as web:
        refused = await web.get(f"/telegram/files/{file_id}")
        assert refused.status_code == 401
        forged = await web.get(f"/telegram/files/{file_id}", headers={"Authorization": "Bearer dsk_forged"})
        assert forged.status_code == 401
        got = await web.get(f"/telegram/files/{file_id}", headers={"Authorization": f"Bearer {token}"})
        assert got.status_code == 200 and got.content == b"\xff\xd8 receipt"
        assert got.headers["content-type"] == "image/jpeg"
        unknown = await web.get("/telegram/files/NOPE", headers={"Authorization": f"Bearer {token}"})
        assert unknown.status_code == 404
    assert (await _customer(bot, ALICE)).owner == Owner.QUEUED


async def test_a_forgotten_long_button_says_it_expired(telegram_bot: TelegramBot) -> None:
    bot, fake = telegram_bot, telegram_bot.fake
    await bot.do(ALICE, lambda: fake.press(ALICE, "#0123456789abcdef0123456789abcdef"))
    assert fake.answered_callbacks[-1]["text"].startswith("This button has expired")
    assert fake.texts(ALICE) == [] and await _customer(bot, ALICE) is None
