"""Logging in and out, sessions, CSRF, lockout, API tokens and roles — on both backends."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from fastapi import APIRouter
from sqlalchemy import select

from bot.web.auth import PageAgent
from desk.accounts import Accounts, LoginFailed, LoginLocked, LoginPolicy
from storage.models import Agent, AgentSession, ApiToken, LoginThrottle, utcnow
from tests.web.api.conftest import PASSWORD, Desk
from tests.web.conftest import OpenApp


def _form_csrf(html: str) -> str:
    return html.split('name="csrf_token" value="')[1].split('"')[0]


async def test_login_sets_a_hardened_session_cookie_and_me_answers(desk: Desk) -> None:
    await desk.add_agent("ann@example.com", "admin", name="Ann")
    client = desk.client_for()
    page = await client.get("/desk/login?next=/desk/tickets/T-1001")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    answer = await client.post(
        "/desk/login",
        data={"email": "ANN@example.com ", "password": PASSWORD, "csrf_token": _form_csrf(page.text),
              "next": "/desk/tickets/T-1001"},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/desk/tickets/T-1001"
    cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith("deskbot_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie and "Secure" not in cookie
    me = (await client.get("/api/v1/me")).json()
    assert me["email"] == "ann@example.com" and me["name"] == "Ann" and me["role"] == "admin"
    assert len(me["csrf_token"]) >= 32
    async with desk.app.tickets.session() as tx:
        stored = (await tx.db.execute(select(AgentSession))).scalars().one()
        agent = (await tx.db.execute(select(Agent))).scalars().one()
    token = client.cookies["deskbot_session"]
    assert stored.token_hash != token and token not in stored.token_hash  # only a hash is kept
    assert agent.password_hash is not None and agent.password_hash.startswith("$argon2id$")
    assert PASSWORD not in agent.password_hash


async def test_wrong_password_and_unknown_account_look_the_same(desk: Desk) -> None:
    await desk.add_agent("ann@example.com")
    client = desk.client_for()
    for email, password in (("ann@example.com", "wrong password"), ("nobody@example.com", PASSWORD)):
        page = await client.get("/desk/login")
        answer = await client.post(
            "/desk/login", data={"email": email, "password": password, "csrf_token": _form_csrf(page.text)}
        )
        assert answer.status_code == 401
        assert "Wrong e-mail or password." in answer.text
        assert "deskbot_session" not in client.cookies
    assert (await client.get("/api/v1/me")).status_code == 401


async def test_the_login_form_refuses_a_post_without_its_csrf_cookie(desk: Desk) -> None:
    await desk.add_agent("ann@example.com")
    attacker_page = desk.client_for()
    csrf = _form_csrf((await attacker_page.get("/desk/login")).text)
    victim = desk.client_for()  # never loaded the form: has no login CSRF cookie
    answer = await victim.post("/desk/login", data={"email": "ann@example.com", "password": PASSWORD,
                                                    "csrf_token": csrf})
    assert answer.status_code == 403
    assert "deskbot_session" not in victim.cookies


@pytest.mark.parametrize("next_url", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "desk"])
async def test_login_never_redirects_off_site(desk: Desk, next_url: str) -> None:
    await desk.add_agent("ann@example.com")
    client = desk.client_for()
    csrf = _form_csrf((await client.get("/desk/login")).text)
    answer = await client.post("/desk/login", data={"email": "ann@example.com", "password": PASSWORD,
                                                    "csrf_token": csrf, "next": next_url})
    assert answer.status_code == 303 and answer.headers["location"] == "/desk"


async def test_repeated_failures_lock_the_account_even_for_the_right_password(desk: Desk) -> None:
    await desk.add_agent("ann@example.com")
    await desk.add_agent("bob@example.com")
    client = desk.client_for()
    limit = desk.app.settings.web.login_max_failures
    for _ in range(limit):
        csrf = _form_csrf((await client.get("/desk/login")).text)
        answer = await client.post("/desk/login", data={"email": "ann@example.com", "password": "guess",
                                                        "csrf_token": csrf})
        assert answer.status_code == 401
    csrf = _form_csrf((await client.get("/desk/login")).text)
    locked = await client.post("/desk/login", data={"email": "ann@example.com", "password": PASSWORD,
                                                    "csrf_token": csrf})
    assert locked.status_code == 429 and "Too many failed logins" in locked.text
    assert 0 < int(locked.headers["retry-after"]) <= 15 * 60 + 1
    # Stored in the database: another process (another Accounts) sees the same lock ...
    other_process = Accounts(desk.app.tickets, LoginPolicy(failure_delay=0))
    with pytest.raises(LoginLocked):
        await other_process.login("ann@example.com", PASSWORD, ip="10.0.0.9")
    # ... other accounts are not locked ...
    await desk.login(desk.client_for(), "bob@example.com")
    # ... and the lock ends after the lockout period.
    later = Accounts(desk.app.tickets, LoginPolicy(failure_delay=0), clock=lambda: utcnow() + timedelta(minutes=16))
    login = await later.login("ann@example.com", PASSWORD)
    assert login.agent.email == "ann@example.com"


async def test_many_failures_from_one_address_lock_that_address(desk: Desk) -> None:
    accounts = Accounts(desk.app.tickets, LoginPolicy(max_failures=100, ip_max_failures=3, failure_delay=0))
    await desk.add_agent("ann@example.com")
    for n in range(3):
        with pytest.raises(LoginFailed):
            await accounts.login(f"guess{n}@example.com", "x", ip="203.0.113.7")
    with pytest.raises(LoginLocked):
        await accounts.login("ann@example.com", PASSWORD, ip="203.0.113.7")
    assert (await accounts.login("ann@example.com", PASSWORD, ip="198.51.100.1")).agent.email == "ann@example.com"


async def test_unsafe_requests_of_a_session_need_the_csrf_header(desk: Desk) -> None:
    client, headers = await desk.session("ann@example.com", role="admin")
    body = {"email": "new@example.com", "name": "New", "role": "agent", "password": "long enough pw"}
    assert (await client.post("/api/v1/agents", json=body)).status_code == 403
    wrong = await client.post("/api/v1/agents", json=body, headers={"X-CSRF-Token": "x" * 43})
    assert wrong.status_code == 403 and "X-CSRF-Token" in wrong.json()["error"]
    assert (await client.post("/api/v1/agents", json=body, headers=headers)).status_code == 201
    assert (await client.get("/api/v1/agents")).status_code == 200  # safe methods need none


async def test_api_tokens_work_without_csrf_and_bad_ones_are_refused(desk: Desk) -> None:
    headers = await desk.bearer("bot@example.com", role="admin")
    client = desk.client_for()
    me = await client.get("/api/v1/me", headers=headers)
    assert me.status_code == 200 and me.json()["csrf_token"] is None
    body = {"email": "new@example.com", "name": "New", "password": "long enough pw"}
    assert (await client.post("/api/v1/agents", json=body, headers=headers)).status_code == 201
    for bad in ("Bearer dsk_not-a-token", "Bearer ", "Basic Ym90OnB3", "dsk_no_scheme"):
        answer = await client.get("/api/v1/me", headers={"Authorization": bad})
        assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    async with desk.app.tickets.session() as tx:
        stored = (await tx.db.execute(select(ApiToken))).scalars().one()
    assert headers["Authorization"].split()[1] not in stored.token_hash


async def test_logout_needs_csrf_and_ends_the_session_for_good(desk: Desk) -> None:
    client, headers = await desk.session("ann@example.com")
    stolen = client.cookies["deskbot_session"]
    assert (await client.post("/desk/logout")).status_code == 403
    assert (await client.get("/api/v1/me")).status_code == 200
    out = await client.post("/desk/logout", data={"csrf_token": headers["X-CSRF-Token"]})
    assert out.status_code == 303 and out.headers["location"].startswith("/desk/login")
    assert (await client.get("/api/v1/me")).status_code == 401
    replay = desk.client_for()
    replay.cookies.set("deskbot_session", stolen)
    assert (await replay.get("/api/v1/me")).status_code == 401


async def test_sessions_expire_when_idle_and_at_their_lifetime(desk: Desk) -> None:
    await desk.add_agent("ann@example.com")
    now = utcnow()
    clock = [now]
    accounts = Accounts(
        desk.app.tickets,
        LoginPolicy(session_lifetime=timedelta(hours=8), idle_timeout=timedelta(minutes=30), failure_delay=0),
        clock=lambda: clock[0],
    )
    login = await accounts.login("ann@example.com", PASSWORD)
    for minutes in (25, 50, 75):  # each request within the idle timeout keeps it alive
        clock[0] = now + timedelta(minutes=minutes)
        assert await accounts.session_principal(login.token) is not None
    clock[0] = now + timedelta(minutes=75 + 31)
    assert await accounts.session_principal(login.token) is None
    login = await accounts.login("ann@example.com", PASSWORD)
    for minutes in range(0, 8 * 60, 20):
        clock[0] = now + timedelta(minutes=106 + minutes)
        assert await accounts.session_principal(login.token) is not None
    clock[0] = now + timedelta(minutes=106 + 8 * 60)
    assert await accounts.session_principal(login.token) is None


async def test_a_deactivated_agent_is_locked_out_everywhere(desk: Desk) -> None:
    admin, admin_headers = await desk.session("boss@example.com", role="admin")
    client, _ = await desk.session("ann@example.com")
    token = await desk.accounts.issue_token("ann@example.com")
    agents = (await admin.get("/api/v1/agents")).json()
    ann = next(a for a in agents if a["email"] == "ann@example.com")
    changed = await admin.patch(f"/api/v1/agents/{ann['id']}", json={"active": False}, headers=admin_headers)
    assert changed.status_code == 200 and changed.json()["active"] is False
    assert (await client.get("/api/v1/me")).status_code == 401
    assert (await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})).status_code == 401
    with pytest.raises(LoginFailed):
        await Accounts(desk.app.tickets, LoginPolicy(failure_delay=0)).login("ann@example.com", PASSWORD)


async def test_agents_cannot_do_admin_actions(desk: Desk) -> None:
    client, headers = await desk.session("ann@example.com")
    me = (await client.get("/api/v1/me")).json()
    body = {"email": "x@example.com", "name": "X", "password": "long enough pw"}
    assert (await client.post("/api/v1/agents", json=body, headers=headers)).status_code == 403
    promote = await client.patch(f"/api/v1/agents/{me['id']}", json={"role": "admin"}, headers=headers)
    assert promote.status_code == 403
    assert (await client.get("/api/v1/me")).json()["role"] == "agent"


async def test_the_last_admin_cannot_be_demoted(desk: Desk) -> None:
    client, headers = await desk.session("boss@example.com", role="admin")
    me = (await client.get("/api/v1/me")).json()
    answer = await client.patch(f"/api/v1/agents/{me['id']}", json={"role": "agent"}, headers=headers)
    assert answer.status_code == 409


async def test_pages_redirect_to_the_login_page_with_next(desk: Desk) -> None:
    probe = APIRouter()

    @probe.get("/desk/probe")
    async def page(agent: PageAgent) -> dict[str, str]:
        return {"email": agent.email}

    desk.web.include_router(probe)
    client = desk.client_for()
    answer = await client.get("/desk/probe?x=1")
    assert answer.status_code == 303 and answer.headers["location"] == "/desk/login?next=/desk/probe%3Fx%3D1"
    await desk.add_agent("ann@example.com")
    await desk.login(client, "ann@example.com")
    assert (await client.get("/desk/probe")).json() == {"email": "ann@example.com"}
    assert (await client.get("/desk/login")).status_code == 303  # logged in already


async def test_stale_failure_counters_are_swept(desk: Desk) -> None:
    now = utcnow()
    clock = [now]
    accounts = Accounts(desk.app.tickets, LoginPolicy(failure_delay=0), clock=lambda: clock[0])
    for n in range(3):
        with pytest.raises(LoginFailed):
            await accounts.login(f"made-up-{n}@example.com", "x", ip="203.0.113.9")
    clock[0] = now + timedelta(minutes=16)
    with pytest.raises(LoginFailed):
        await accounts.login("another@example.com", "x", ip="198.51.100.2")
    async with desk.app.tickets.session() as tx:
        keys = set((await tx.db.execute(select(LoginThrottle.key))).scalars())
    assert keys == {"account:another@example.com", "ip:198.51.100.2"}


async def test_cookies_are_secure_when_configured(open_app: OpenApp) -> None:
    async with open_app(DESKBOT_WEB__SECURE_COOKIES="true") as app:
        desk = Desk(app)
        try:
            await desk.add_agent("ann@example.com")
            client = desk.client_for()
            client.base_url = httpx.URL("https://testserver")  # browsers send Secure cookies over HTTPS only
            page = await client.get("/desk/login")
            assert "Secure" in page.headers["set-cookie"] and "SameSite=strict" in page.headers["set-cookie"]
            answer = await client.post("/desk/login", data={"email": "ann@example.com", "password": PASSWORD,
                                                            "csrf_token": _form_csrf(page.text)})
            cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith("deskbot_session="))
            assert "Secure" in cookie and "HttpOnly" in cookie
        finally:
            await desk.close()


async def test_a_new_password_from_the_command_line_lifts_the_lockout(desk: Desk) -> None:
    await desk.add_agent("ann@example.com")
    accounts = Accounts(desk.app.tickets, LoginPolicy(max_failures=2, failure_delay=0))
    for _ in range(2):
        with pytest.raises(LoginFailed):
            await accounts.login("ann@example.com", "guess")
    with pytest.raises(LoginLocked):
        await accounts.login("ann@example.com", PASSWORD)
    await accounts.set_password("ann@example.com", "a fresh password")
    assert (await accounts.login("ann@example.com", "a fresh password")).agent.email == "ann@example.com"
