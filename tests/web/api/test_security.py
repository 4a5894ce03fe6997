"""Security properties of the whole API, checked over every route the app has.

Routes are enumerated from the app, so a route added later is covered without editing
this file: no route answers without a session or token, no session request changes
anything without its CSRF token, no agent reaches an admin route.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from bot.web.auth import require_admin
from storage.models import Base
from tests.rest_client import RestClient, poll_customer, widget_for
from tests.web.api.conftest import Desk

INJECTIONS = (
    "'; DROP TABLE tickets; --",
    "Robert'); DELETE FROM messages WHERE ('1'='1",
    "<script>alert('xss')</script>",
    '"><img src=x onerror=alert(1)>',
    "{{7*7}} ${7*7} {agent_name} %s %(x)s",
)
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def _uses(dependant: Dependant, call: object) -> bool:
    return any(d.call is call or _uses(d, call) for d in dependant.dependencies)


def flat_routes(web: FastAPI) -> Iterator[tuple[str, set[str], Dependant]]:
    """``(path, methods, dependant)`` of every FastAPI route, included routers flattened.

    FastAPI ≥ 0.120 keeps included routers as lazy branches in ``app.routes``;
    ``iter_route_contexts`` walks them with the effective (prefixed) paths.
    """
    for context in iter_route_contexts(web.routes):
        route = context.original_route
        if isinstance(route, APIRoute) and context.path and context.methods:
            yield context.path, set(context.methods), getattr(context, "dependant", route.dependant)


def api_routes(web: FastAPI) -> Iterator[tuple[str, str, Dependant]]:
    for route_path, methods, dependant in flat_routes(web):
        if route_path.startswith("/api/"):
            path = re.sub(r"\{number\}", "T-1001", route_path)
            path = re.sub(r"\{[^}]+\}", "1", path)
            for method in sorted(methods - {"HEAD"}):
                yield method, path, dependant


async def test_every_api_route_needs_a_session_or_token(desk: Desk) -> None:
    client = desk.client_for()
    routes = list(api_routes(desk.web))
    assert len(routes) >= 25  # guards against enumerating nothing
    for method, path, _ in routes:
        for headers in ({}, {"Authorization": "Bearer dsk_forged"}, {"Cookie": "deskbot_session=forged"}):
            answer = await client.request(method, path, headers=headers)
            assert answer.status_code == 401, (method, path, headers, answer.status_code)
            assert answer.json()["error"]


async def test_no_unsafe_session_request_passes_without_the_csrf_token(desk: Desk) -> None:
    client, _ = await desk.session("boss@example.com", role="admin")
    unsafe = [(m, p) for m, p, _ in api_routes(desk.web) if m in UNSAFE]
    assert len(unsafe) >= 15
    for method, path in unsafe:
        for headers in ({}, {"X-CSRF-Token": "forged-token-of-the-right-length-0123456789ab"}):
            answer = await client.request(method, path, headers=headers, json={})
            assert answer.status_code == 403, (method, path, answer.status_code)


async def test_agents_get_403_on_every_admin_route(desk: Desk) -> None:
    client, headers = await desk.session("ann@example.com")
    admin_routes = [(m, p) for m, p, dependant in api_routes(desk.web) if _uses(dependant, require_admin)]
    assert {("POST", "/api/v1/agents"), ("PATCH", "/api/v1/agents/1"), ("POST", "/api/v1/canned-responses"),
            ("DELETE", "/api/v1/canned-responses/1")} <= set(admin_routes)
    for method, path in admin_routes:
        answer = await client.request(method, path, headers=headers)
        assert answer.status_code == 403, (method, path, answer.status_code)


async def test_openapi_documents_every_api_route_and_no_docs_page_is_served(desk: Desk) -> None:
    client = desk.client_for()
    schema = (await client.get("/api/openapi.json")).json()
    documented = {(method.upper(), path) for path, item in schema["paths"].items() for method in item}
    routes = [(path, methods) for path, methods, _ in flat_routes(desk.web) if path.startswith("/api/v1")]
    assert len(routes) >= 20
    for path, methods in routes:
        for method in methods - {"HEAD"}:
            assert (method, path) in documented, (method, path)
    for path in ("/api/v1/tickets", "/api/v1/tickets/{number}/claim", "/api/v1/me", "/api/v1/customers/{customer_id}"):
        assert path in schema["paths"]
    assert {"HTTPBearer", "APIKeyCookie"} <= set(schema["components"]["securitySchemes"])
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert (await client.get(path)).status_code == 404


async def test_validation_errors_are_clear_json_and_change_nothing(desk: Desk) -> None:
    number = await desk.handoff("cust-1")
    client, headers = await desk.session("ann@example.com")
    url = f"/api/v1/tickets/{number}/reply"
    cases: list[tuple[dict[str, object], str]] = [
        ({"content": b"{not json"}, "JSON"),
        ({"json": {}}, "text"),
        ({"json": {"text": ""}}, "text"),
        ({"json": {"text": "   "}}, "text"),
        ({"json": {"text": 42}}, "text"),
        ({"json": {"text": "x" * 10_001}}, "text"),
        ({"json": {"text": "ok", "extra": 1}}, "extra"),
        ({"content": b'{"text": "\\ud800"}'}, "text"),
        ({"content": b'{"text": "a\\u0000b"}'}, "text"),
        ({"json": ["text"]}, "request"),
    ]
    for kwargs, mentions in cases:
        request_headers = headers | ({"Content-Type": "application/json"} if "content" in kwargs else {})
        answer = await client.post(url, headers=request_headers, **kwargs)  # type: ignore[arg-type]
        assert 400 <= answer.status_code < 500, (kwargs, answer.status_code)
        error = answer.json()["error"]
        assert isinstance(error, str) and mentions.lower() in error.lower(), (kwargs, error)
    detail = (await client.get(f"/api/v1/tickets/{number}")).json()
    assert all(m["author"] != "agent" for m in detail["messages"])


async def test_injection_strings_are_stored_and_returned_as_plain_text(desk: Desk) -> None:
    admin, admin_headers = await desk.session("boss@example.com", role="admin")
    for i, evil in enumerate(INJECTIONS):
        sender = f"evil-{i}"
        await desk.customer_says(sender, evil, display_name=evil)
        number = await desk.handoff(sender)
        await desk.customer_says(sender, evil)  # waiting for an agent: lands on the ticket
        reply = await admin.post(f"/api/v1/tickets/{number}/reply", json={"text": evil}, headers=admin_headers)
        note = await admin.post(f"/api/v1/tickets/{number}/notes", json={"text": evil}, headers=admin_headers)
        assert reply.status_code == 200 and note.status_code == 200
        detail = (await admin.get(f"/api/v1/tickets/{number}")).json()
        assert detail["customer"]["display_name"] == evil
        assert evil in [m["text"] for m in detail["messages"] if m["author"] == "customer"]
        assert detail["messages"][-1]["text"] == evil and detail["notes"][-1]["text"] == evil
        customer_id = detail["customer"]["id"]
        patched = await admin.patch(f"/api/v1/customers/{customer_id}", json={"tags": [evil[:50]], "notes": evil},
                                    headers=admin_headers)
        assert patched.status_code == 200 and patched.json()["tags"] == [evil[:50]]
        assert patched.json()["notes"] == evil
        canned = await admin.post("/api/v1/canned-responses", json={"title": evil, "text": evil},
                                  headers=admin_headers)
        assert canned.status_code == 201 and canned.json()["title"] == evil
        agent = await admin.post("/api/v1/agents", headers=admin_headers,
                                 json={"email": f"a{i}@example.com", "name": evil, "password": "long enough pw"})
        assert agent.status_code == 201 and agent.json()["name"] == evil
        search = await admin.get("/api/v1/tickets", params={"q": evil})
        assert search.status_code == 200
        assert [m["text"] for m in await _polled(desk, sender)][-1] == evil
    async with desk.app.tickets.session() as tx:  # every table is still there and whole
        for table in Base.metadata.sorted_tables:
            await tx.db.execute(table.select().limit(1))
        assert len(await tx.list_tickets()) == len(INJECTIONS)


async def test_the_login_page_shows_an_injected_email_as_text(desk: Desk) -> None:
    client = desk.client_for()
    page = await client.get("/desk/login")
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    answer = await client.post("/desk/login", data={"email": '"><script>alert(1)</script>', "password": "x",
                                                    "csrf_token": csrf})
    assert answer.status_code == 401
    assert "<script>alert(1)</script>" not in answer.text
    assert "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in answer.text


async def _polled(desk: Desk, sender: str) -> list[dict[str, object]]:
    """The customer's widget polls (with its sender token, acknowledging what it already has)."""
    return await poll_customer(widget_for(desk, desk.client_for), desk.app, sender)


async def test_the_rest_channel_never_shows_one_customer_another_conversation(desk: Desk) -> None:
    """A REST sender reads only what was queued for that sender — whatever ids it sends."""
    number = await desk.handoff("alice")
    client, headers = await desk.session("ann@example.com")
    detail = (await client.post(f"/api/v1/tickets/{number}/reply", json={"text": "Alice, your refund is on its way"},
                                headers=headers)).json()
    alice_id = detail["customer"]["id"]
    # Mallory is a customer of her own, with her widget's proof: what it lets her see is hers only.
    mallory = RestClient(desk.client_for())
    await mallory.say("mallory", "hello")
    rest_attempts: list[httpx.Response] = [
        await mallory.get_messages("mallory"),
        await mallory.http.get("/webhooks/rest/messages", params={"sender": "mallory", "customer_id": alice_id},
                               headers=mallory.headers("mallory")),
        await mallory.post("mallory", "hi", metadata={"customer_id": alice_id, "sender": "alice"}),
        await mallory.post("mallory", f"/ticket_status{{\"number\": \"{number}\"}}"),
    ]
    assert [answer.status_code for answer in rest_attempts] == [200] * len(rest_attempts)
    attempts = rest_attempts + [
        await mallory.http.get(f"/api/v1/customers/{alice_id}"),
        await mallory.http.get(f"/api/v1/tickets/{number}"),
    ]
    for answer in attempts:
        assert "refund is on its way" not in answer.text
        assert "alice" not in answer.text.lower() or answer.status_code == 401
    assert [m["text"] for m in await _polled(desk, "alice")] == ["Alice, your refund is on its way"]
    async with desk.app.tickets.session() as tx:
        mallory_customer = await tx.find_customer("rest", "mallory")
        assert mallory_customer is not None and mallory_customer.id != alice_id
