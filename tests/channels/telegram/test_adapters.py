"""The port's contract, for both adapters, over HTTP against the fake Bot API.

Each ``TelegramApi`` method reaches the right Bot API method with the right parameters, and
each failure Telegram can answer comes out as the same neutral error whichever library made
the call — the delivery policy relies on that.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.channels.telegram.api import (
    BadRequest,
    ClientOptions,
    Forbidden,
    InlineButton,
    NetworkError,
    RetryAfter,
    ServerError,
    TelegramError,
)
from bot.channels.telegram.client import TelegramClient, open_client
from tests.fakes.telegram_server import BOT_USERNAME, TOKEN, FakeTelegram

GROUP = -100777


@pytest.fixture(params=["aiogram", "python-telegram-bot"])
async def client(request: pytest.FixtureRequest, fake_telegram: FakeTelegram) -> AsyncIterator[TelegramClient]:
    opened = open_client(request.param, ClientOptions(TOKEN, fake_telegram.base, request_timeout=2))
    try:
        yield opened
    finally:
        await opened.close()


async def test_every_port_method_reaches_the_bot_api(client: TelegramClient, fake_telegram: FakeTelegram) -> None:
    api, fake = client.api, fake_telegram
    assert (await api.get_me()).username == BOT_USERNAME
    sent = await api.send_message(7, "<b>hi</b>", reply_markup=[[InlineButton("Yes", "/affirm")]],
                                  reply_to_message_id=3)
    call = fake.calls_of("sendMessage")[-1].params
    assert call["parse_mode"] == "HTML" and call["text"] == "<b>hi</b>"
    assert call["reply_markup"] == {"inline_keyboard": [[{"text": "Yes", "callback_data": "/affirm"}]]}
    assert call["reply_parameters"]["message_id"] == 3
    await api.edit_message_text(7, sent.message_id, "edited")
    assert fake.calls_of("editMessageText")[-1].params["message_id"] in (sent.message_id, str(sent.message_id))
    await api.answer_callback_query("cb1", "ok")
    assert fake.answered_callbacks[-1]["callback_query_id"] == "cb1"
    await api.send_chat_action(7)
    fake.make_forum(GROUP)
    fake.set_member(GROUP, 42, "administrator")
    chat = await api.get_chat(GROUP)
    assert chat.is_forum and chat.type == "supergroup"
    assert await api.get_chat_member_status(GROUP, 42) == "administrator"
    assert await api.get_chat_member_status(GROUP, 43) == "left"
    thread = await api.create_forum_topic(GROUP, "T-1001 · new")
    topic_message = await api.send_message(GROUP, "card", message_thread_id=thread)
    assert topic_message.message_thread_id == thread
    await api.edit_forum_topic(GROUP, thread, "T-1001 · open")
    await api.pin_chat_message(GROUP, topic_message.message_id)
    stored = fake.add_file(b"%PDF-1.7", file_id="DOC1", file_path="documents/file_3.pdf")
    info = await api.get_file("DOC1")
    assert info.file_path == "documents/file_3.pdf" and info.file_size == len(stored.content)
    assert await api.download_file("documents/file_3.pdf") == b"%PDF-1.7"
    await api.set_webhook("https://bot.example.com/telegram/webhook", secret_token="s", allowed_updates=["message"])
    assert fake.webhook_url.endswith("/telegram/webhook")
    await api.delete_webhook()
    assert fake.webhook_url == ""
    await api.set_my_commands([("start", "Start")], language_code="zh")
    assert fake.commands[-1]["commands"] == [{"command": "start", "description": "Start"}]


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, RetryAfter), (403, Forbidden), (400, BadRequest), (500, (ServerError, NetworkError)),
     (502, (ServerError, NetworkError))],
)
async def test_failures_become_the_ports_errors(
    client: TelegramClient, fake_telegram: FakeTelegram, status: int, error: type[TelegramError]
) -> None:
    fake_telegram.fault("sendMessage", status, retry_after=4 if status == 429 else None)
    with pytest.raises(error) as raised:
        await client.api.send_message(7, "hi")
    if status == 429:
        assert raised.value.retry_after == 4


async def test_a_timeout_is_a_network_error(client: TelegramClient, fake_telegram: FakeTelegram) -> None:
    fake_telegram.slow("sendMessage", 3.5)
    with pytest.raises(NetworkError):
        await client.api.send_message(7, "slow")


async def test_unknown_file_is_a_bad_request(client: TelegramClient) -> None:
    with pytest.raises(BadRequest):
        await client.api.get_file("NOPE")
