"""The agents' workspace over HTTP, on both backend pairs (SQLite + memory, PostgreSQL + Redis).

``desk`` gives a :class:`Desk`: the built ``App``, an ``httpx`` client on its ASGI app and
helpers to add agents, log in (returns the session's CSRF token) and issue API tokens.
Each ``Desk.client_for()`` is a separate cookie jar, i.e. another browser.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.app import App, build_app
from bot.config import load_settings
from bot.web.app import create_web_app
from common.messages import Incoming
from desk.accounts import Accounts
from intents.base import IntentClassifier
from storage.models import format_ticket_number
from tests.conftest import _delete_keys, empty_tables, storage_environ
from tests.web.conftest import deskbot_environ

PASSWORD = "correct horse battery"


class Desk:
    def __init__(self, app: App) -> None:
        self.app = app
        self.web = create_web_app(app)
        self.accounts: Accounts = self.web.state.accounts
        self._clients: list[httpx.AsyncClient] = []

    def client_for(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.web), base_url="http://testserver", timeout=30
        )
        self._clients.append(client)
        return client

    async def close(self) -> None:
        for client in self._clients:
            await client.aclose()

    async def add_agent(self, email: str, role: str = "agent", name: str | None = None) -> int:
        agent = await self.accounts.add_agent(email, name or email.split("@")[0].title(), role, PASSWORD)
        return agent.id

    async def login(self, client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> str:
        """Log in through the real form; returns the session's CSRF token."""
        page = await client.get("/desk/login")
        assert page.status_code == 200
        csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        answer = await client.post(
            "/desk/login", data={"email": email, "password": password, "csrf_token": csrf, "next": "/desk"}
        )
        assert answer.status_code == 303, answer.text
        me = await client.get("/api/v1/me")
        assert me.status_code == 200
        token: str = me.json()["csrf_token"]
        return token

    async def session(self, email: str, role: str = "agent") -> tuple[httpx.AsyncClient, dict[str, str]]:
        """A logged-in browser for a new agent and the headers its unsafe requests send."""
        await self.add_agent(email, role)
        client = self.client_for()
        csrf = await self.login(client, email)
        return client, {"X-CSRF-Token": csrf}

    async def bearer(self, email: str, role: str = "agent") -> dict[str, str]:
        await self.add_agent(email, role)
        return {"Authorization": f"Bearer {await self.accounts.issue_token(email)}"}

    async def handoff(self, sender: str, channel: str = "rest", **kw: Any) -> str:
        """The customer asks for a person (the button): returns the ticket number."""
        await self.app.pipeline.handle(
            Incoming(channel=channel, chat_id=sender, user_id=sender, text="", payload="/human_handoff",
                     replies_in_answer=channel != "telegram", **kw)
        )
        async with self.app.tickets.session() as tx:
            customer = await tx.find_customer(channel, sender)
            assert customer is not None and customer.handoff_ticket_id is not None
            return format_ticket_number(customer.handoff_ticket_id)

    async def customer_says(self, sender: str, text: str, channel: str = "rest", **kw: Any) -> list[str]:
        replies = await self.app.pipeline.handle(
            Incoming(channel=channel, chat_id=sender, user_id=sender, text=text,
                     replies_in_answer=channel != "telegram", **kw)
        )
        return [r.text for r in replies]


@pytest.fixture(params=["sqlite+memory", "postgres+redis"])
async def desk(
    request: pytest.FixtureRequest, tmp_path: Path, web_model_path: Path, web_classifier: IntentClassifier,
    redis_prefix: str,
) -> AsyncIterator[Desk]:
    env = deskbot_environ(tmp_path / "deskbot.db", web_model_path, DESKBOT_WEB__LOGIN_FAILURE_DELAY_SECONDS="0")
    sqlite = request.param == "sqlite+memory"
    if not sqlite:
        env |= storage_environ(request, tmp_path, redis_prefix, server=True)
    settings = load_settings(path=None, environ=env)
    async with build_app(settings, classifier=web_classifier, create_schema=sqlite) as app:
        if not sqlite:
            await empty_tables(app.tickets.engine)  # type: ignore[attr-defined]
        desk = Desk(app)
        try:
            yield desk
        finally:
            await desk.close()
    if not sqlite:
        await _delete_keys(settings.state.redis_url, redis_prefix)
