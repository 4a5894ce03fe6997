"""The web chat over HTTP: the page, cookie identity, CSRF defence, escaping, polling."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from bot.app import App
from storage.models import Author, DeliveryStatus, Direction
from tests.web.conftest import SESSION_SECRET, LiveServer, OpenApp, asgi_client, messages_of

API = "/chat/api/messages"
HISTORY = "/chat/api/history"
HEADERS = {"X-Requested-With": "deskbot"}
COOKIE = "deskbot_visitor"

INJECTIONS = [
    "<script>alert('xss')</script>",
    '<img src=x onerror="alert(1)">',
    '"><svg onload=alert(document.cookie)>',
    "javascript:alert(1)",
    "{{ 7*7 }} ${7*7} {% raw %}",
    "'; DROP TABLE messages; --",
    "&lt;b&gt;not bold&lt;/b&gt; &amp;",
]


async def send(client: httpx.AsyncClient, **body: Any) -> list[dict[str, Any]]:
    response = await client.post(API, json=body, headers=HEADERS)
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


async def history(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get(HISTORY)
    assert response.status_code == 200
    messages: list[dict[str, Any]] = response.json()["messages"]
    return messages


def visitor_of(client: httpx.AsyncClient) -> str:
    return client.cookies[COOKIE].split(".")[0]


# -- the page -------------------------------------------------------------------------------
async def test_page_sets_a_server_issued_cookie_and_loads_only_local_assets(client: httpx.AsyncClient) -> None:
    response = await client.get("/")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "<h1 id=\"shop-name\">Demo Shop</h1>" in html
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    # No CDN, no external fonts: every asset is ours.
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(a.startswith("/static/") or a.startswith("data:") for a in assets), assets
    for asset in assets:
        if asset.startswith("/static/"):
            body = await client.get(asset)
            assert body.status_code == 200
            assert "http://" not in body.text and "https://" not in body.text
            assert not re.search(r"\.(inner|outer)HTML|insertAdjacentHTML|document\.write", body.text)

    # A visitor who already has a valid cookie keeps it (its lifetime slides).
    value = client.cookies[COOKIE]
    again = await client.get("/")
    assert again.headers["set-cookie"].startswith(f"{COOKIE}={value};")


async def test_shop_name_is_escaped_in_the_page(open_app: OpenApp) -> None:
    async with open_app(DESKBOT_SHOP__NAME='"<script>alert(1)</script> & 张三的店') as app, asgi_client(app) as client:
        html = (await client.get("/")).text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; 张三的店" in html


# -- conversation ---------------------------------------------------------------------------
async def test_question_answer_and_history(client: httpx.AsyncClient, deskbot: App) -> None:
    await client.get("/")
    replies = await send(client, text="how much is the hoodie?")
    assert replies == [{"id": replies[0]["id"], "text": replies[0]["text"], "buttons": [], "author": "bot"}]
    assert "49.90" in replies[0]["text"]

    shown = await history(client)
    assert [(m["author"], m["text"]) for m in shown] == [
        ("customer", "how much is the hoodie?"),
        ("bot", replies[0]["text"]),
    ]
    stored = await messages_of(deskbot, "web", visitor_of(client))
    assert [m.channel for m in stored] == ["web", "web"]


async def test_first_message_without_a_page_visit_gets_a_cookie(client: httpx.AsyncClient) -> None:
    response = await client.post(API, json={"text": "hello"}, headers=HEADERS)
    assert response.status_code == 200
    assert "HttpOnly" in response.headers["set-cookie"]
    assert len(await history(client)) == 2


async def test_quick_reply_payload_round_trip(client: httpx.AsyncClient, deskbot: App) -> None:
    replies = await send(client, text="qwzx vbnm plok")
    buttons = replies[-1]["buttons"]
    products = next(b for b in buttons if b["payload"] == "/ask_product")

    answer = await send(client, payload=products["payload"])
    assert answer and answer[0]["text"]

    stored = await messages_of(deskbot, "web", visitor_of(client))
    click = [m for m in stored if m.direction == Direction.INBOUND][-1]
    assert click.payload == {"button": "/ask_product"} and click.intent == "ask_product"
    # History shows the click as the button's title, and the bot's buttons are kept.
    shown = await history(client)
    assert shown[1]["buttons"] == buttons
    assert (shown[2]["author"], shown[2]["text"]) == ("customer", products["title"])


async def test_a_payload_that_is_no_rasa_payload_is_understood_as_text(client: httpx.AsyncClient) -> None:
    replies = await send(client, payload="how much is the hoodie?")
    assert "49.90" in replies[0]["text"]


async def test_chinese_and_emoji(client: httpx.AsyncClient) -> None:
    replies = await send(client, text="卫衣多少钱？")
    assert any("\u4e00" <= c <= "\u9fff" for c in replies[0]["text"])
    assert await send(client, text="🙂🙂")
    assert [m["text"] for m in await history(client) if m["author"] == "customer"] == ["卫衣多少钱？", "🙂🙂"]


async def test_agent_reply_is_polled_until_acknowledged_and_kept_in_history(
    client: httpx.AsyncClient, deskbot: App
) -> None:
    replies = await send(client, text="I want to talk to a human")
    assert any("T-1001" in m["text"] for m in replies)

    await deskbot.desk.reply("T-1001", "hello from agent")
    polled = (await client.get(API)).json()["messages"]
    assert [(m["author"], m["text"]) for m in polled] == [("agent", "hello from agent")]
    # The page never said it got it (the answer may have been lost): handed over again.
    assert (await client.get(API)).json()["messages"] == polled
    assert (await client.get(API, params={"after": polled[0]["id"]})).json() == {"messages": []}
    stored = {m.id: m for m in await messages_of(deskbot, "web", visitor_of(client))}
    assert stored[polled[0]["id"]].status == DeliveryStatus.SENT

    await deskbot.desk.reply("T-1001", "anything else?")
    replies = await send(client, text="no, thanks")
    assert [(m["author"], m["text"]) for m in replies] == [("agent", "anything else?")]

    texts = [m["text"] for m in await history(client) if m["author"] == "agent"]
    assert texts == ["hello from agent", "anything else?"]


async def test_history_shows_queued_replies_and_the_next_poll_acknowledges_them(
    client: httpx.AsyncClient, deskbot: App
) -> None:
    await send(client, text="I want to talk to a human")
    await deskbot.desk.reply("T-1001", "queued while you reloaded")
    shown = await history(client)
    assert shown[-1]["text"] == "queued while you reloaded"
    last = max(m["id"] for m in shown)
    assert (await client.get(API, params={"after": last})).json() == {"messages": []}
    assert (await client.get(API)).json() == {"messages": []}


@pytest.mark.parametrize("after", ["-1", "x", "1" * 5000, str(2**31)])
async def test_poll_refuses_a_bad_cursor(client: httpx.AsyncClient, after: str) -> None:
    await send(client, text="hello")
    response = await client.get(API, params={"after": after})
    assert response.status_code == 422 and "after" in response.json()["error"]


async def test_duplicate_message_id_gets_the_same_answer_once(client: httpx.AsyncClient, deskbot: App) -> None:
    first = await send(client, text="hello", message_id="abc")
    assert first
    assert await send(client, text="hello", message_id="abc") == first
    stored = await messages_of(deskbot, "web", visitor_of(client))
    assert len([m for m in stored if m.author == Author.CUSTOMER]) == 1


@pytest.mark.parametrize("text", INJECTIONS)
async def test_injection_strings_come_back_as_plain_text(client: httpx.AsyncClient, text: str) -> None:
    await send(client, text=text)
    shown = await history(client)
    assert shown[0]["text"] == text
    assert (await client.get(HISTORY)).headers["content-type"] == "application/json"


# -- identity ---------------------------------------------------------------------------------
async def test_visitors_never_see_each_others_conversation(deskbot: App) -> None:
    async with asgi_client(deskbot) as anna, asgi_client(deskbot) as ben:
        await anna.get("/")
        await ben.get("/")
        assert anna.cookies[COOKIE] != ben.cookies[COOKIE]
        await send(anna, text="my secret order is A10001")
        await send(ben, text="how much is the hoodie?")

        anna_texts = {m["text"] for m in await history(anna)}
        ben_texts = {m["text"] for m in await history(ben)}
        assert "my secret order is A10001" in anna_texts and "my secret order is A10001" not in ben_texts
        assert "how much is the hoodie?" in ben_texts and "how much is the hoodie?" not in anna_texts

        # An agent reply to Anna reaches Anna only.
        await send(anna, text="I want to talk to a human")
        await deskbot.desk.reply("T-1001", "for anna only")
        assert (await ben.get(API)).json() == {"messages": []}
        assert [m["text"] for m in (await anna.get(API)).json()["messages"]] == ["for anna only"]


@pytest.mark.parametrize(
    "forged",
    [
        "attacker-chosen-id",
        "attacker-chosen-id.bm90LWEtc2lnbmF0dXJl",
        "{victim}",
        "{victim}.",
        "{victim}.forged-signature",
        "{victim_cookie}x",
    ],
)
async def test_a_cookie_the_server_did_not_issue_is_replaced(deskbot: App, forged: str) -> None:
    async with asgi_client(deskbot) as victim, asgi_client(deskbot) as attacker:
        await send(victim, text="my secret order is A10001")
        value = forged.format(victim=visitor_of(victim), victim_cookie=victim.cookies[COOKIE])
        attacker.cookies.set(COOKIE, value)

        assert await history(attacker) == []
        assert (await attacker.get(API)).json() == {"messages": []}
        response = await attacker.post(API, json={"text": "hi"}, headers=HEADERS)
        assert response.status_code == 200
        issued = response.cookies[COOKIE]
        assert issued != value and issued.split(".")[0] != visitor_of(victim)
        assert "my secret order is A10001" not in {m["text"] for m in await history(attacker)}


async def test_cookies_survive_a_restart_with_the_same_session_secret(open_app: OpenApp) -> None:
    async with open_app() as app, asgi_client(app) as first:
        await send(first, text="hello")
        cookie = first.cookies[COOKIE]
    async with open_app() as app, asgi_client(app) as second:
        second.cookies.set(COOKIE, cookie)
        assert [m["text"] for m in await history(second)][0] == "hello"
    async with open_app(DESKBOT_SECRETS__SESSION_SECRET=SESSION_SECRET + "-rotated") as app, asgi_client(app) as third:
        third.cookies.set(COOKIE, cookie)
        assert await history(third) == []


# -- CSRF and bad input -------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [{}, {"X-Requested-With": "XMLHttpRequest"}, {"X-Requested-With": ""}])
async def test_post_without_the_csrf_header_is_forbidden(
    client: httpx.AsyncClient, deskbot: App, headers: dict[str, str]
) -> None:
    await client.get("/")
    response = await client.post(API, json={"text": "hi"}, headers=headers)
    assert response.status_code == 403
    assert "X-Requested-With" in response.json()["error"]
    assert await messages_of(deskbot, "web", visitor_of(client)) == []


async def test_form_posts_are_refused(client: httpx.AsyncClient, deskbot: App) -> None:
    await client.get("/")
    response = await client.post(API, data={"text": "hi"}, headers=HEADERS)
    assert response.status_code == 415
    response = await client.post(API, content=b'{"text": "hi"}', headers={**HEADERS, "Content-Type": "text/plain"})
    assert response.status_code == 415
    assert await messages_of(deskbot, "web", visitor_of(client)) == []


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (b'{"text": ', 400, "malformed JSON"),
        (b'{"text": "caf\xe9"}', 400, "UTF-8"),
        (b'{"text": "\\udfff"}', 400, "lone surrogate"),
        (b"[]", 422, "JSON object"),
        (b"{}", 422, "'text'"),
        (b'{"text": 5}', 422, "'text' must be a string"),
        (b'{"text": "hi", "payload": "/affirm"}', 422, "either"),
        (b'{"payload": ["/affirm"]}', 422, "'payload' must be a string"),
        (b'{"text": "' + b"a" * 4001 + b'"}', 413, "longer than 4000"),
    ],
)
async def test_bad_input_is_refused_and_the_chat_goes_on(
    client: httpx.AsyncClient, body: bytes, status: int, error: str
) -> None:
    await send(client, text="how much is the hoodie?")
    response = await client.post(API, content=body, headers={**HEADERS, "Content-Type": "application/json"})
    assert response.status_code == status, response.text
    assert error in response.json()["error"]
    assert await send(client, text="how much is the hoodie?")
    assert len(await history(client)) == 4


async def test_poll_and_history_without_a_cookie_create_nobody(client: httpx.AsyncClient, deskbot: App) -> None:
    assert (await client.get(API)).json() == {"messages": []}
    assert (await client.get(HISTORY)).json() == {"messages": []}
    async with deskbot.tickets.session() as tx:
        assert await tx.list_tickets() == []


def test_real_uvicorn_serves_the_web_chat(live_server: LiveServer) -> None:
    with httpx.Client(base_url=live_server.url, timeout=30, trust_env=False) as http:
        page = http.get("/")
        assert page.status_code == 200 and COOKIE in http.cookies
        reply = http.post(API, json={"text": "how much is the hoodie?"}, headers=HEADERS)
        assert reply.status_code == 200 and "49.90" in reply.json()["messages"][0]["text"]
        assert len(http.get(HISTORY).json()["messages"]) == 2
        assert http.post(API, json={"text": "hi"}).status_code == 403
