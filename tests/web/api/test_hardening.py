"""Issue 11, item 10 and the answer side of defect 9, on both backend pairs.

- Deactivating an agent revokes their API tokens: reactivating them later gives the
  account back, not the old tokens (they may have leaked with the person who left).
- Every answer carries ``Permissions-Policy``; HSTS only when ``web.secure_cookies`` says
  the shop serves HTTPS; every JSON API answer (``/api``, ``/webhooks``, ``/chat/api``)
  carries ``Cache-Control: no-store``.
- A login that finds the password pool full (a flood) is refused at once with 503 and
  ``Retry-After``, before any database or argon2 work (``tests/web/test_login_flood.py``
  measures the customers' latency during a flood).
- A Redis that cannot be reached is a 503 with ``Retry-After`` (not a 500), ``/readyz``
  names it, ``/healthz`` stays 200 (liveness: a restart would not bring Redis back).
"""

from __future__ import annotations

import asyncio
import logging
import threading

import httpx
import pytest

from desk.accounts import PasswordCheckBusy
from tests.web.api.conftest import Desk
from tests.web.conftest import OpenApp, asgi_client, free_port


async def test_reactivating_an_agent_does_not_revive_their_api_tokens(desk: Desk) -> None:
    admin, admin_headers = await desk.session("boss@example.com", role="admin")
    await desk.add_agent("ann@example.com")
    token = await desk.accounts.issue_token("ann@example.com")
    bearer = {"Authorization": f"Bearer {token}"}
    client = desk.client_for()
    assert (await client.get("/api/v1/me", headers=bearer)).status_code == 200
    ann = next(a for a in (await admin.get("/api/v1/agents")).json() if a["email"] == "ann@example.com")

    off = await admin.patch(f"/api/v1/agents/{ann['id']}", json={"active": False}, headers=admin_headers)
    assert off.status_code == 200
    on = await admin.patch(f"/api/v1/agents/{ann['id']}", json={"active": True}, headers=admin_headers)
    assert on.status_code == 200 and on.json()["active"] is True

    assert (await client.get("/api/v1/me", headers=bearer)).status_code == 401
    fresh = {"Authorization": f"Bearer {await desk.accounts.issue_token('ann@example.com')}"}
    assert (await client.get("/api/v1/me", headers=fresh)).status_code == 200
    # Renaming an active agent (no deactivation) leaves their tokens alone.
    renamed = await admin.patch(f"/api/v1/agents/{ann['id']}", json={"name": "Ann B."}, headers=admin_headers)
    assert renamed.status_code == 200
    assert (await client.get("/api/v1/me", headers=fresh)).status_code == 200


@pytest.mark.parametrize("desk", ["sqlite+memory"], indirect=True)
async def test_security_and_cache_headers(desk: Desk) -> None:
    bearer = await desk.bearer("bot@example.com")
    client = desk.client_for()
    json_answers = {
        "/api/v1/me": await client.get("/api/v1/me", headers=bearer),
        "/api (a 401)": await client.get("/api/v1/tickets"),
        "/webhooks/rest": await client.post(
            "/webhooks/rest/webhook", json={"sender": "hdr-1", "message": "hello", "message_id": "h1"}
        ),
        "/webhooks (a 404)": await client.get("/webhooks/nothing-here"),
        "/chat/api": await client.get("/chat/api/history"),
    }
    for where, answer in json_answers.items():
        assert answer.headers.get("cache-control") == "no-store", where
    pages = {"/desk/login": await client.get("/desk/login"), "/healthz": await client.get("/healthz")}
    for where, answer in {**json_answers, **pages}.items():
        policy = answer.headers.get("permissions-policy", "")
        for feature in ("camera=()", "microphone=()", "geolocation=()"):
            assert feature in policy, where
        assert "strict-transport-security" not in answer.headers, where  # plain HTTP set-up
    # The login page keeps its own no-store; a static file is not a JSON API answer.
    assert pages["/desk/login"].headers["cache-control"] == "no-store"


async def test_hsts_when_the_shop_serves_https(open_app: OpenApp) -> None:
    async with open_app(DESKBOT_WEB__SECURE_COOKIES="true") as app, asgi_client(app) as client:
        for path in ("/healthz", "/desk/login", "/api/v1/me"):
            answer = await client.get(path)
            assert answer.headers["strict-transport-security"].startswith("max-age=31536000"), path


async def test_redis_down_is_a_503_with_retry_after_and_readyz_says_so(
    open_app: OpenApp, caplog: pytest.LogCaptureFixture
) -> None:
    nobody = f"redis://127.0.0.1:{free_port()}/0"  # a port nothing listens on
    async with open_app(
        DESKBOT_STATE__BACKEND="redis", DESKBOT_STATE__REDIS_URL=nobody, DESKBOT_STATE__KEY_PREFIX="hardening"
    ) as app, asgi_client(app) as client:
        with caplog.at_level(logging.WARNING):
            answer = await client.post(
                "/webhooks/rest/webhook", json={"sender": "down-1", "message": "hello", "message_id": "d1"}
            )
            assert answer.status_code == 503, answer.text
            assert int(answer.headers["retry-after"]) > 0
            assert answer.json() == {"error": "the service is temporarily unavailable"}
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and int(ready.headers["retry-after"]) > 0
            assert ready.json()["failed"] == ["redis_state"]
            assert ready.json()["checks"]["database"] == "ok"
            assert (await client.get("/healthz")).status_code == 200
    assert not [r for r in caplog.records if r.exc_info], "no traceback for an outage"


async def test_readyz_when_everything_answers(client: httpx.AsyncClient) -> None:
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "failed": [], "checks": {"database": "ok"}}


@pytest.mark.parametrize("desk", ["sqlite+memory"], indirect=True)
async def test_a_full_password_pool_refuses_logins_at_once(desk: Desk) -> None:
    await desk.add_agent("ann@example.com")
    pool = desk.accounts.pool
    release = threading.Event()
    blockers = [asyncio.create_task(pool.run(release.wait)) for _ in range(pool.limit)]
    try:
        await asyncio.sleep(0)  # each blocker takes its place as it starts
        assert pool.full
        client = desk.client_for()
        csrf = "c" * 43
        client.cookies.set("deskbot_login_csrf", csrf)
        form = {"email": "ann@example.com", "password": "correct horse battery", "csrf_token": csrf}
        answer = await client.post("/desk/login", data=form)
        assert answer.status_code == 503 and int(answer.headers["retry-after"]) > 0
        assert "try again" in answer.text
        with pytest.raises(PasswordCheckBusy):
            await desk.accounts.login("ann@example.com", "correct horse battery")
    finally:
        release.set()
        await asyncio.gather(*blockers)
    assert pool.in_pool == 0
    assert (await desk.accounts.login("ann@example.com", "correct horse battery")).agent.email == "ann@example.com"
