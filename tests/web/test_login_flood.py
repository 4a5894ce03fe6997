"""A login flood must not stall the customers (issue 11, defect 6).

argon2 costs about 0.1 s of CPU per check; run on the event loop, 200 failed logins froze
every customer's chat for tens of seconds. Here the real server (uvicorn in a child process,
real HTTP) takes 200 failed logins at once from another process, each from its own address
(``X-Forwarded-For``, which uvicorn trusts from 127.0.0.1, so the per-address limit is not
what stops them), while one REST customer keeps sending messages: the customer's p99 latency during the flood
stays under 100 ms, or under five times the same customer's p99 measured in the same run
before the flood when the machine is busy (the suite runs in parallel; the defect it guards
against stalled customers for seconds, far beyond either bound).
This is the suite's one timed assertion, asked for by the issue.

The figures are printed (``pytest -s``) so a run shows how close it came.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from intents.base import IntentClassifier
from tests.web.conftest import LiveServer, deskbot_environ

LOGINS = 200
REST_TOKEN = "flood-test-rest-token"  # noqa: S105 - a test secret
P99_LIMIT = 0.100
BUSY_MACHINE_FACTOR = 5  # × the quiet p99 of the same run
CUSTOMER_MESSAGES = ("hello", "what are your opening hours?", "how much is the hoodie?", "thanks")


@pytest.fixture
def flood_server(tmp_path: Path, web_model_path: Path, web_classifier: IntentClassifier) -> Iterator[LiveServer]:
    # The customer's messages come through a trusted shop backend (the REST Bearer token),
    # so the test needs no per-sender proof.
    # One customer sends all through the flood: the per-customer rate limit would answer most
    # of those without a turn through the classifier, and the latency measured is the turn's.
    environ = deskbot_environ(
        tmp_path / "deskbot.db",
        web_model_path,
        DESKBOT_SECRETS__REST_TOKEN=REST_TOKEN,
        DESKBOT_LIMITS__CUSTOMER__ENABLED="false",
    )
    server = LiveServer(tmp_path, environ)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


# The attackers are other machines: the flood runs in a process of its own, so the test's
# own event loop (which times the customer) does not also carry 200 connections.
FLOOD = """
import asyncio, json, secrets, sys
import httpx

async def main(url, logins):
    limits = httpx.Limits(max_connections=logins, max_keepalive_connections=logins)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits, trust_env=False) as http:
        async def failed_login(n):
            csrf = secrets.token_urlsafe(32)  # the login form's double-submit token: cookie = field
            answer = await http.post(
                "/desk/login",
                data={"email": f"guess{n}@example.com", "password": f"wrong password {n}", "csrf_token": csrf},
                headers={"X-Forwarded-For": f"10.{n // 250}.{n % 250}.{1 + n % 7}",
                         "Cookie": f"deskbot_login_csrf={csrf}"},
            )
            return answer.status_code
        print("go", flush=True)
        print(json.dumps(await asyncio.gather(*(failed_login(n) for n in range(logins)))), flush=True)

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


async def test_customers_keep_answering_during_a_login_flood(flood_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=flood_server.url, timeout=120, trust_env=False) as http:
        sender = f"flood-customer-{secrets.token_hex(4)}"
        trusted = {"Authorization": f"Bearer {REST_TOKEN}"}
        sent = 0

        async def customer_says() -> float:
            nonlocal sent
            text = CUSTOMER_MESSAGES[sent % len(CUSTOMER_MESSAGES)]
            body = {"sender": sender, "message": text, "message_id": f"m{sent}"}
            sent += 1
            started = time.perf_counter()
            answer = await http.post("/webhooks/rest/webhook", json=body, headers=trusted)
            elapsed = time.perf_counter() - started
            assert answer.status_code == 200, answer.text
            return elapsed

        for _ in range(5):  # warm up: connections, the classifier's first calls
            await customer_says()
        quiet = [await customer_says() for _ in range(20)]

        flood = await asyncio.create_subprocess_exec(
            sys.executable, "-c", FLOOD, flood_server.url, str(LOGINS), stdout=asyncio.subprocess.PIPE
        )
        assert flood.stdout is not None
        assert (await flood.stdout.readline()).strip() == b"go"
        outcome = asyncio.create_task(flood.stdout.read())
        during: list[float] = []
        flood_started = time.perf_counter()
        while not outcome.done() or len(during) < 30:
            during.append(await customer_says())
        statuses: list[int] = json.loads(await outcome)
        flood_seconds = time.perf_counter() - flood_started
        assert await flood.wait() == 0

    refused = statuses.count(503)
    checked = statuses.count(401)
    print(
        f"\nlogin flood: {LOGINS} failed logins in {flood_seconds:.2f} s ({checked} checked → 401, "
        f"{refused} refused while the password pool was full → 503); customer messages: "
        f"quiet p99 {p99(quiet) * 1000:.1f} ms, during the flood n={len(during)} "
        f"p50 {sorted(during)[len(during) // 2] * 1000:.1f} ms p99 {p99(during) * 1000:.1f} ms "
        f"max {max(during) * 1000:.1f} ms"
    )
    assert set(statuses) <= {401, 503}, statuses
    assert checked > 0  # the pool really checked passwords during the flood
    limit = max(P99_LIMIT, BUSY_MACHINE_FACTOR * p99(quiet))
    assert p99(during) < limit, (
        f"customer p99 {p99(during) * 1000:.0f} ms during the login flood (limit {limit * 1000:.0f} ms)"
    )
