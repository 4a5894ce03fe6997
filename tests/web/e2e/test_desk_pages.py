"""The workspace pages as HTTP answers: who may open them, and what every page carries."""

from __future__ import annotations

import re

import httpx
import pytest

from bot.app import App
from bot.web.auth import SESSION_COOKIE, login_policy
from bot.web.pages import DESK_CSP, STATIC_URL, asset_versions
from desk.accounts import Accounts

PASSWORD = "a long and careful passphrase"


async def session_for(app: App, email: str, role: str) -> tuple[str, str]:
    """A logged-in browser session: (cookie value, csrf token)."""
    accounts = Accounts(app.tickets, login_policy(app.settings))
    await accounts.add_agent(email, email.split("@")[0].title(), role, PASSWORD)
    login = await accounts.login(email, PASSWORD, ip="127.0.0.1")
    return login.token, login.csrf_token


@pytest.mark.parametrize("path", ["/desk", "/desk/tickets/T-1001", "/desk/agents"])
async def test_pages_send_visitors_to_the_login_page(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == f"/desk/login?next={path}"


async def test_the_queue_page_carries_the_agent_csrf_token_and_a_strict_policy(
    deskbot: App, client: httpx.AsyncClient
) -> None:
    cookie, csrf = await session_for(deskbot, "sam@shop.example", "agent")
    client.cookies.set(SESSION_COOKIE, cookie)
    response = await client.get("/desk")
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == DESK_CSP
    assert "'unsafe-inline'" not in DESK_CSP
    assert response.headers["cache-control"] == "no-store"
    html = response.text
    assert f'<meta name="csrf-token" content="{csrf}">' in html
    assert 'data-page="queue"' in html
    assert f'name="csrf_token" value="{csrf}"' in html  # the logout form
    assert "<script>" not in html and " style=" not in html  # nothing inline for the CSP to block
    assert 'href="/desk/agents"' not in html  # agents see no admin navigation
    versions = asset_versions()
    script = re.search(r'<script type="module" src="([^"]+)"', html)
    assert script and script.group(1) == f"{STATIC_URL}/desk.js?v={versions['desk.js']}"
    assets = await client.get(script.group(1))
    assert assets.status_code == 200 and "javascript" in assets.headers["content-type"]


async def test_agents_page_is_for_admins(deskbot: App, client: httpx.AsyncClient) -> None:
    cookie, _ = await session_for(deskbot, "sam@shop.example", "agent")
    client.cookies.set(SESSION_COOKIE, cookie)
    refused = await client.get("/desk/agents")
    assert refused.status_code == 403
    assert "Admins only" in refused.text

    cookie, _ = await session_for(deskbot, "ada@shop.example", "admin")
    client.cookies.set(SESSION_COOKIE, cookie)
    allowed = await client.get("/desk/agents")
    assert allowed.status_code == 200
    assert 'data-page="agents"' in allowed.text
    assert 'href="/desk/agents" aria-current="page"' in allowed.text


async def test_ticket_page_names_its_ticket_and_refuses_nonsense(deskbot: App, client: httpx.AsyncClient) -> None:
    cookie, _ = await session_for(deskbot, "sam@shop.example", "agent")
    client.cookies.set(SESSION_COOKIE, cookie)
    page = await client.get("/desk/tickets/t-1042")
    assert page.status_code == 200
    assert 'data-ticket="T-1042"' in page.text and 'data-page="ticket"' in page.text
    for bad in ["/desk/tickets/1042", "/desk/tickets/T-1042x", "/desk/tickets/%3Cscript%3E"]:
        assert (await client.get(bad)).status_code == 404


async def test_an_agent_name_with_html_is_escaped_in_the_layout(deskbot: App, client: httpx.AsyncClient) -> None:
    accounts = Accounts(deskbot.tickets, login_policy(deskbot.settings))
    await accounts.add_agent("eve@shop.example", '<img src=x onerror="alert(1)">', "agent", PASSWORD)
    login = await accounts.login("eve@shop.example", PASSWORD, ip="127.0.0.1")
    client.cookies.set(SESSION_COOKIE, login.token)
    html = (await client.get("/desk")).text
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
