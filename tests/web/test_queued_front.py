"""The web front with ``intake.queue: redis``, in-process: the web chat and the REST channel
queue the message, a worker (``bot/worker.py``, same process, real Redis stream) runs the
turn, and the client gets the same answer as inline: the bot's replies, a retry with the same
message id answered with the stored ones, a 503 "retry shortly" when no worker answers in time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest

from bot.app import App
from bot.config import load_settings
from bot.intake import open_queued_intake
from bot.worker import IntakeWorker
from storage.intake_stream import IntakeKeys, RedisIntakeStream
from storage.models import Direction
from tests.conftest import _delete_keys
from tests.web.conftest import OpenApp, asgi_client, messages_of

CHAT = {"X-Requested-With": "deskbot"}
REST = "/webhooks/rest/webhook"
TOKEN = {"X-Deskbot-Sender-Token": "q" * 40}


@pytest.fixture
async def queued(open_app: OpenApp, redis_server: str, redis_prefix: str) -> AsyncIterator[App]:
    overrides = {
        "DESKBOT_INTAKE__QUEUE": "redis",
        "DESKBOT_INTAKE__REDIS_URL": redis_server,
        "DESKBOT_INTAKE__PARTITIONS": "4",
        "DESKBOT_INTAKE__LEASE_TTL_SECONDS": "1",
        "DESKBOT_INTAKE__ANSWER_TIMEOUT_SECONDS": "1",
        "DESKBOT_STATE__KEY_PREFIX": redis_prefix,
    }
    async with open_app(**overrides) as app, AsyncExitStack() as stack:
        app.intake = await stack.enter_async_context(open_queued_intake(app.settings))
        yield app
    await _delete_keys(redis_server, redis_prefix)


async def start_worker(app: App, stack: AsyncExitStack) -> None:
    config = app.settings.intake
    stream = RedisIntakeStream.from_url(config.redis_url, IntakeKeys(app.settings.state.key_prefix), config.partitions)
    stack.push_async_callback(stream.close)
    worker = IntakeWorker(app, stream, config)
    await worker.start()
    stack.push_async_callback(worker.stop)


async def test_the_web_chat_answers_through_the_queue(queued: App) -> None:
    async with asgi_client(queued) as http, AsyncExitStack() as stack:
        await http.get("/")  # the page issues the visitor's cookie (the client keeps it)
        # No worker yet: the front waits its answer_timeout_seconds, then says "retry shortly".
        early = await http.post("/chat/api/messages", json={"text": "hello", "message_id": "w1"}, headers=CHAT)
        assert early.status_code == 503 and early.headers["retry-after"] == "1"
        visitor = http.cookies["deskbot_visitor"].split(".")[0]
        await start_worker(queued, stack)
        # The retry runs after the first copy (same conversation, same partition): the stored answer.
        answer = await http.post("/chat/api/messages", json={"text": "hello", "message_id": "w1"}, headers=CHAT)
        assert answer.status_code == 200, answer.text
        replies = answer.json()["messages"]
        assert replies and all(m["author"] == "bot" for m in replies)
        again = await http.post("/chat/api/messages", json={"text": "hello", "message_id": "w1"}, headers=CHAT)
        assert again.json()["messages"] == replies
        tap = await http.post("/chat/api/messages", json={"payload": "/human"}, headers=CHAT)
        assert tap.status_code == 200 and tap.json()["messages"]
    rows = await messages_of(queued, "web", visitor)
    inbound = [r for r in rows if r.direction == Direction.INBOUND]
    assert len(inbound) == 2  # "hello" once, whatever the retries; the button tap
    assert [r.id for r in rows if r.reply_to_id == inbound[0].id] == [m["id"] for m in replies]


async def test_the_rest_channel_answers_through_the_queue_and_keys_every_message(queued: App) -> None:
    async with asgi_client(queued) as http, AsyncExitStack() as stack:
        await start_worker(queued, stack)
        first = await http.post(REST, json={"sender": "rq-1", "message": "how much is the hoodie?"}, headers=TOKEN)
        assert first.status_code == 200, first.text
        body = first.json()
        assert body and body[0]["recipient_id"] == "rq-1" and "id" in body[0]
    rows = await messages_of(queued, "rest", "rq-1")
    inbound = [r for r in rows if r.direction == Direction.INBOUND]
    # Without a message_id the front gives the delivery a key of its own, so a worker killed
    # between the commit and the acknowledgement cannot store it twice.
    assert len(inbound) == 1 and (inbound[0].delivery_key or "").startswith("q:")
    assert [r.id for r in rows if r.reply_to_id == inbound[0].id] == [r["id"] for r in body]


def test_the_embedded_default_queues_nothing() -> None:
    settings = load_settings(path=None, environ={})
    assert settings.intake.queue == "inline"
