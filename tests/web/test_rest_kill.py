"""REST retries across kill -9 with Redis state (issue 11, defect 2): nothing lost, nothing twice.

A real ``deskbot serve`` (Redis state; SQLite or PostgreSQL) is killed with SIGKILL four
times while ~80 REST messages with message ids are in flight. The client, as a widget
would, retries every request that got no answer with the same ``message_id`` once the
server is back. Before the fix the delivery key was claimed in Redis for 24 h before the
database commit: a retry after a crash between the two got ``200 []`` and the message was
never stored.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import _create_database, _delete_keys, _drop_database, stored_messages
from tests.web.conftest import LiveServer, deskbot_environ

WEBHOOK = "/webhooks/rest/webhook"
TOKEN = "X-Deskbot-Sender-Token"
SENDERS = 80
KILLS = 4
QUESTIONS = ("how much is the hoodie?", "do you ship to Germany?", "what is your return policy?", "hello")


@dataclass
class Request:
    sender: str
    message_id: str
    text: str
    answer: list[dict[str, Any]] | None = None
    attempts: int = 0


@dataclass
class Widgets:
    """80 widgets, each with its own sender id and its own sender token."""

    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, sender: str) -> str:
        return self.tokens.setdefault(sender, uuid.uuid4().hex + uuid.uuid4().hex)


@pytest.fixture(params=["sqlite", "postgres"])
async def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'deskbot.db'}"
        return
    admin_url: str = request.getfixturevalue("postgres_server")
    url = await _create_database(admin_url)
    try:
        yield url
    finally:
        await _drop_database(admin_url, url)


async def send(http: httpx.AsyncClient, widgets: Widgets, item: Request) -> None:
    item.attempts += 1
    try:
        response = await http.post(
            WEBHOOK,
            json={"sender": item.sender, "message": item.text, "message_id": item.message_id},
            headers={TOKEN: widgets.token(item.sender)},
        )
    except httpx.TransportError:
        return  # killed under us: retried after the restart
    if response.status_code == 200:
        item.answer = response.json()
    else:
        assert response.status_code == 503, response.text  # still in flight: retried


async def run_round(server: LiveServer, widgets: Widgets, pending: list[Request], kill_after: int | None) -> None:
    """Send everything pending at once; SIGKILL the server once ``kill_after`` were answered."""
    async with httpx.AsyncClient(base_url=server.url, timeout=60, trust_env=False) as http:
        tasks = [asyncio.create_task(send(http, widgets, item)) for item in pending]
        if kill_after is not None:
            for finished in asyncio.as_completed(tasks):
                await finished
                if sum(1 for item in pending if item.answer is not None) >= kill_after:
                    break
            assert server.process is not None
            os.kill(server.process.pid, signal.SIGKILL)
            server.process.wait()
            server.process = None
        await asyncio.gather(*tasks)


async def test_rest_retries_across_kill_9_store_once_and_answer_every_message(
    tmp_path: Path, storage_url: str, redis_server: str, redis_prefix: str, web_model_path: Path
) -> None:
    environ = deskbot_environ(tmp_path / "unused.db", web_model_path) | {
        "DESKBOT_STORAGE__URL": storage_url,
        "DESKBOT_STATE__BACKEND": "redis",
        "DESKBOT_STATE__REDIS_URL": redis_server,
        "DESKBOT_STATE__KEY_PREFIX": redis_prefix,
        "DESKBOT_STATE__INFLIGHT_SECONDS": "2",
    }
    server = LiveServer(tmp_path, environ)
    widgets = Widgets()
    requests: list[Request] = []
    try:
        for round_no in range(KILLS + 1):
            killing = round_no < KILLS
            if killing:
                requests += [
                    Request(f"kill-{i}", f"r{round_no}-{uuid.uuid4().hex}", QUESTIONS[(i + round_no) % len(QUESTIONS)])
                    for i in range(SENDERS)
                ]
            server.start()
            # The unanswered retried with the same message_id, with the new burst; killed a
            # third of the way (the final round runs until everything is answered).
            await run_round(server, widgets, [r for r in requests if r.answer is None], SENDERS // 3 if killing else None)
            while not killing and (pending := [r for r in requests if r.answer is None]):
                await run_round(server, widgets, pending, None)
    finally:
        server.stop()
        await _delete_keys(redis_server, redis_prefix)

    inbound, replies, senders = await stored_messages(storage_url)

    from bot.web.rest_channel import scoped_delivery_key

    assert len(requests) == SENDERS * KILLS
    retried = sum(1 for r in requests if r.attempts > 1)
    assert retried > 0  # the kills did catch requests in flight
    for item in requests:
        stored = inbound.get(str(scoped_delivery_key(item.sender, item.message_id)), [])
        assert len(stored) == 1, (item, len(stored))  # stored exactly once
        assert senders[stored[0].customer_id] == item.sender
        assert item.answer, item  # answered, never an empty 200
        expected = sorted(replies.get(stored[0].id, []), key=lambda r: r.id)
        assert [a["text"] for a in item.answer] == [r.text for r in expected]
        assert [a["id"] for a in item.answer] == [r.id for r in expected]
    assert len(inbound) == len(requests)  # nothing else stored
