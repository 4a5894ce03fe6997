"""Production shape in a real browser: two web processes sharing PostgreSQL and Redis.

The agent's dashboard is served by one process; the customer writes to the *other* one.
The new ticket still appears on the dashboard at once, because the event travels through
Redis pub/sub (``events.backend: redis``) — what lets a shop run several web processes and
workers behind one address.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from intents.base import IntentClassifier
from tests.web.conftest import LiveServer, deskbot_environ
from tests.web.e2e.test_workspace_browser import (
    PASSWORD,
    RestCustomer,
    add_agent,
    desk_page,
    unexpected_problems,
    wait_live,
)
from tests.web.test_browser import browser, browser_available

if TYPE_CHECKING:
    from playwright.sync_api import Browser

__all__ = ["browser", "browser_available"]


@pytest.fixture
def two_servers(
    tmp_path: Path,
    empty_postgres_database: str,
    redis_server: str,
    redis_prefix: str,
    web_model_path: Path,
) -> Iterator[tuple[LiveServer, LiveServer]]:
    environ = deskbot_environ(
        tmp_path / "unused.db",
        web_model_path,
        DESKBOT_STORAGE__URL=empty_postgres_database,
        DESKBOT_STATE__BACKEND="redis",
        DESKBOT_STATE__REDIS_URL=redis_server,
        DESKBOT_STATE__KEY_PREFIX=redis_prefix,
        DESKBOT_EVENTS__BACKEND="redis",
        DESKBOT_EVENTS__REDIS_URL=redis_server,
    )
    first = LiveServer(tmp_path / "a", environ)
    second = LiveServer(tmp_path / "b", environ)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first.start()  # creates the schema before the second one looks at it
    try:
        second.start()
        try:
            yield first, second
        finally:
            second.stop()
    finally:
        first.stop()


def test_a_ticket_opened_on_another_process_appears_live(
    browser_available: None,
    browser: Browser,
    two_servers: tuple[LiveServer, LiveServer],
    web_classifier: IntentClassifier,
) -> None:
    dashboard, other = two_servers
    email = f"max-{uuid.uuid4().hex[:6]}@shop.example"
    add_agent(dashboard, web_classifier, email, "Max", "agent")
    page = desk_page(browser)
    customer = RestCustomer(other.url)  # talks to the other process
    try:
        page.goto(f"{dashboard.url}/desk/login")
        page.locator("#email").fill(email)
        page.locator("#password").fill(PASSWORD)
        page.locator("#password").press("Enter")
        page.wait_for_url(re.compile(r"/desk$"))
        wait_live(page)

        answers = customer.say("I want to talk to a human")
        found = re.search(r"T-\d+", " ".join(m.get("text") or "" for m in answers))
        assert found, answers
        page.locator(f'tr[data-number="{found.group(0)}"]').wait_for()
        page.locator(".toast-handoff", has_text=found.group(0)).wait_for()
        assert unexpected_problems(page) == []
    finally:
        customer.close()
        page.context.close()
