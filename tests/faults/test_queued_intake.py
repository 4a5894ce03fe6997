"""Queued intake with real processes on PostgreSQL + Redis: a ``deskbot serve`` front and
``deskbot worker`` processes (``intake.queue: redis``), driven through the REST channel.

- **order**: every conversation's messages are queued one after another in the stream (the
  test waits until message k is in its partition's stream before sending k + 1, with no
  worker running yet: so "send order" is defined), then two workers start one after the
  other (the second joins while the first runs: partitions move between them mid-stream).
  Each conversation's stored messages must be in send order, each stored once, each answer
  the stored replies.
- **kill -9**: with a front and two workers running, a burst of messages; one worker is
  killed with SIGKILL once some answers are in. Its pending deliveries are claimed by the
  other (``XAUTOCLAIM`` after the lease's TTL), and the front's waiting requests are answered
  from there: every message stored exactly once, every answer exactly the stored replies
  (the REST channel's replies are its answers: sent once means answered with exactly them).
- ``serve --workers 2`` starts the front with its two workers and stops them with itself.

Sizes: the default suite runs one small case of each; the full fault matrix
(``pytest -m faults tests/faults``) runs larger ones (``FULL``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from bot.web.rest_channel import scoped_delivery_key
from storage.intake_stream import GROUP, IntakeKeys, partition_of
from storage.models import Message
from tests.conftest import _create_database, _delete_keys, _drop_database, stored_messages
from tests.faults.harness import CODE_ROOT, FULL, PATIENCE, free_port
from tests.web.conftest import deskbot_environ

WEBHOOK = "/webhooks/rest/webhook"
TOKEN = "X-Deskbot-Sender-Token"
PARTITIONS = 8
LEASE_TTL = 1.5
QUESTIONS = ("hello", "how much is the hoodie?", "do you ship to Germany?", "what is your return policy?", "thanks")


@dataclass
class Setup:
    """One test's data (a database of its own, a key prefix of its own) and its processes."""

    workdir: Path
    environ: dict[str, str]
    redis_url: str
    prefix: str
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self, name: str, *command: str) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        process = subprocess.Popen(  # noqa: S603 - the test's own interpreter, fixed arguments
            [sys.executable, "-m", "bot.cli.main", *command], cwd=CODE_ROOT, env=self.environ,
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        log.close()
        self.processes[name] = process
        return process

    async def start_front(self, *extra: str) -> None:
        front = self.spawn("front", "serve", *extra)
        async with httpx.AsyncClient(timeout=2, trust_env=False) as client, asyncio.timeout(PATIENCE):
            while True:
                assert front.poll() is None, self.log("front")[-4000:]
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text(errors="replace")

    async def stop(self, name: str, sig: signal.Signals = signal.SIGTERM) -> int:
        process = self.processes[name]
        if process.poll() is None:
            os.kill(process.pid, sig)
        async with asyncio.timeout(PATIENCE):
            while process.poll() is None:  # noqa: ASYNC110 - a child process, not a task
                await asyncio.sleep(0.05)
        return process.returncode


@pytest.fixture
async def setup(
    tmp_path: Path, postgres_server: str, redis_server: str, redis_prefix: str, trained_model_path: Path
) -> AsyncIterator[Setup]:
    url = await _create_database(postgres_server)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DESKBOT_")}
    environ |= deskbot_environ(tmp_path / "unused.db", trained_model_path) | {
        "DESKBOT_STORAGE__URL": url,
        "DESKBOT_STATE__BACKEND": "redis",
        "DESKBOT_STATE__REDIS_URL": redis_server,
        "DESKBOT_STATE__KEY_PREFIX": redis_prefix,
        "DESKBOT_EVENTS__BACKEND": "redis",
        "DESKBOT_EVENTS__REDIS_URL": redis_server,
        "DESKBOT_INTAKE__QUEUE": "redis",
        "DESKBOT_INTAKE__REDIS_URL": redis_server,
        "DESKBOT_INTAKE__PARTITIONS": str(PARTITIONS),
        "DESKBOT_INTAKE__LEASE_TTL_SECONDS": str(LEASE_TTL),
        "DESKBOT_INTAKE__ANSWER_TIMEOUT_SECONDS": str(PATIENCE),
        "DESKBOT_RETENTION__INTERVAL_MINUTES": "0",
        "DESKBOT_LOGGING__LEVEL": "INFO",
        "DESKBOT_LOGGING__FORMAT": "json",
        "PYTHONPATH": str(CODE_ROOT),
    }
    made = Setup(tmp_path, environ, redis_server, redis_prefix)
    made.environ["DESKBOT_WEB__PORT"] = str(made.port)
    try:
        yield made
    finally:
        for name, process in made.processes.items():
            if process.poll() is None:
                with contextlib.suppress(TimeoutError, AssertionError):
                    await made.stop(name)
            if process.poll() is None:
                process.kill()
                process.wait()
        await _drop_database(postgres_server, url)
        await _delete_keys(redis_server, redis_prefix)


@dataclass
class Sent:
    sender: str
    message_id: str
    text: str
    answer: list[dict[str, Any]] | None = None

    @property
    def key(self) -> str:
        return str(scoped_delivery_key(self.sender, self.message_id))


async def post(http: httpx.AsyncClient, item: Sent) -> None:
    response = await http.post(
        WEBHOOK, json={"sender": item.sender, "message": item.text, "message_id": item.message_id},
        headers={TOKEN: "t" * 40 + item.sender[-20:].rjust(20, "0")},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    item.answer = response.json()


async def stored(setup: Setup) -> tuple[dict[str, list[Any]], dict[int, list[Any]], dict[int, str]]:
    return await stored_messages(setup.environ["DESKBOT_STORAGE__URL"])


def check_exactly_once(sent: list[Sent], inbound: dict[str, list[Any]], replies: dict[int, list[Any]],
                       senders: dict[int, str]) -> None:  # fmt: skip
    for item in sent:
        rows = inbound.get(item.key, [])
        assert len(rows) == 1, (item, len(rows))  # stored exactly once
        assert senders[rows[0].customer_id] == item.sender
        expected = replies.get(rows[0].id, [])
        assert expected, item  # answered
        assert item.answer is not None
        assert [(a["id"], a["text"]) for a in item.answer] == [(r.id, r.text) for r in expected]
    assert len(inbound) == len(sent)  # nothing else stored


async def pending_of(redis: Redis, keys: IntakeKeys, worker: str) -> int:
    """Deliveries read and not yet acknowledged by the worker whose token contains ``worker``."""
    count = 0
    for partition in range(PARTITIONS):
        for consumer in await redis.xinfo_consumers(keys.stream(partition), GROUP):
            if worker in consumer["name"].decode():
                count += int(consumer["pending"])
    return count


async def in_stream(redis: Redis, keys: IntakeKeys, partition: int, key: str) -> bool:
    entries = await redis.xrange(keys.stream(partition))
    return any(key.encode() in fields.get(b"b", b"") for _id, fields in entries)


async def start_two_workers(setup: Setup, *, spawn: bool = True, metrics_port: int = 0) -> set[str]:
    """Both workers running and every partition owned; returns the owners' tokens.
    ``spawn=False``: the front started them (``serve --workers 2``); ``metrics_port``: worker-b
    serves its ``GET /metrics`` there."""
    if spawn:
        setup.spawn("worker-a", "worker")
        setup.spawn("worker-b", "worker", *(("--metrics-port", str(metrics_port)) if metrics_port else ()))
    keys = IntakeKeys(setup.prefix)
    redis = Redis.from_url(setup.redis_url)
    try:
        async with asyncio.timeout(PATIENCE):
            while True:
                owners = [await redis.get(keys.lease(p)) for p in range(PARTITIONS)]
                if await redis.zcard(keys.workers()) == 2 and len({o for o in owners if o}) == 2 and all(owners):
                    return {o.decode() for o in owners if o}
                await asyncio.sleep(0.05)
    finally:
        await redis.aclose()


@pytest.mark.parametrize(
    ("conversations", "per_conversation"),
    [pytest.param(12, 6, id="12x6"), pytest.param(60, 12, id="60x12", marks=FULL)],
)
async def test_each_conversation_is_handled_in_send_order_by_two_workers(
    setup: Setup, conversations: int, per_conversation: int
) -> None:
    await setup.start_front("--workers", "2")  # the front starts its two workers, and stops them
    await start_two_workers(setup, spawn=False)
    keys = IntakeKeys(setup.prefix)
    redis = Redis.from_url(setup.redis_url)
    engine = create_async_engine(setup.environ["DESKBOT_STORAGE__URL"])
    run = uuid.uuid4().hex[:6]
    plan = [
        [Sent(f"order-{run}-{c}", f"{c}-{k}", f"{QUESTIONS[(c + k) % len(QUESTIONS)]} #{k}")
         for k in range(per_conversation)]
        for c in range(conversations)
    ]  # fmt: skip

    async def appended(partition: int, key: str) -> bool:
        """In the stream, or already run (committed before it leaves the stream)."""
        if await in_stream(redis, keys, partition, key):
            return True
        async with engine.connect() as conn:
            found = await conn.execute(select(Message.id).where(Message.delivery_key == key))
            return found.first() is not None

    try:
        async with httpx.AsyncClient(base_url=setup.url, timeout=PATIENCE * 2, trust_env=False) as http:

            async def conversation(messages: list[Sent]) -> None:
                partition = partition_of("rest", messages[0].sender, PARTITIONS)
                tasks = []
                for item in messages:  # the next is sent once this one is queued: the send order
                    tasks.append(asyncio.create_task(post(http, item)))
                    async with asyncio.timeout(PATIENCE):
                        while not await appended(partition, item.key):  # noqa: ASYNC110 - polls Redis
                            await asyncio.sleep(0.01)
                await asyncio.gather(*tasks)

            await asyncio.gather(*(conversation(messages) for messages in plan))
        assert await setup.stop("front") == 0  # SIGTERM: the front stops, then its workers
        assert await redis.zcard(keys.workers()) == 0  # both left gracefully
        assert not [p for p in range(PARTITIONS) if await redis.exists(keys.lease(p))]  # leases released
    finally:
        await redis.aclose()
        await engine.dispose()

    inbound, replies, senders = await stored(setup)
    sent = [item for messages in plan for item in messages]
    check_exactly_once(sent, inbound, replies, senders)
    for messages in plan:
        ids = [inbound[item.key][0].id for item in messages]
        assert ids == sorted(ids), [item.text for item in messages]  # stored in send order
        answered = [item.answer[0]["id"] for item in messages if item.answer]
        assert answered == sorted(answered)  # and answered in that order
    assert '"pending deliveries claimed"' not in setup.log("front")  # nobody died (the workers log there)


@pytest.mark.parametrize(
    ("senders", "per_sender"), [pytest.param(40, 3, id="40x3"), pytest.param(150, 4, id="150x4", marks=FULL)]
)
async def test_a_worker_killed_mid_burst_loses_nothing_and_doubles_nothing(
    setup: Setup, senders: int, per_sender: int
) -> None:
    await setup.start_front()
    metrics_port = free_port()
    owners = await start_two_workers(setup, metrics_port=metrics_port)
    run = uuid.uuid4().hex[:6]
    sent = [Sent(f"kill-{run}-{s}", f"{s}-{k}", QUESTIONS[(s + k) % len(QUESTIONS)])
            for k in range(per_sender) for s in range(senders)]  # fmt: skip
    victim = setup.processes["worker-a"]
    redis = Redis.from_url(setup.redis_url)
    keys = IntakeKeys(setup.prefix)
    try:
        async with httpx.AsyncClient(base_url=setup.url, timeout=PATIENCE * 2, trust_env=False) as http:
            tasks = [asyncio.create_task(post(http, item)) for item in sent]
            # Killed while it holds deliveries it read and has not acknowledged: frozen first
            # (SIGSTOP) and killed only if it still holds some, else let go and watched again.
            caught = 0
            async with asyncio.timeout(PATIENCE):
                while not caught:
                    if await pending_of(redis, keys, f":{victim.pid}:"):
                        os.kill(victim.pid, signal.SIGSTOP)
                        caught = await pending_of(redis, keys, f":{victim.pid}:")
                        if not caught:
                            os.kill(victim.pid, signal.SIGCONT)
                    else:
                        await asyncio.sleep(0.005)
            assert await setup.stop("worker-a", signal.SIGKILL) == -signal.SIGKILL
            await asyncio.gather(*tasks)
        # The survivor's own /metrics: every partition's lag (it owns them all now), its turns.
        async with asyncio.timeout(PATIENCE), httpx.AsyncClient(trust_env=False) as scraper:
            while True:
                scrape = (await scraper.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
                lags = [line for line in scrape.splitlines() if line.startswith("deskbot_stream_lag{")]
                if len(lags) == PARTITIONS:
                    break
                await asyncio.sleep(0.1)
        assert {f'stream="{keys.stream(p)}"' for p in range(PARTITIONS)} == {
            line[line.index("{") + 1 : line.index("}")] for line in lags
        }
        counted = [line for line in scrape.splitlines() if line.startswith('deskbot_messages_in_total{channel="rest"}')]
        assert counted and float(counted[0].split()[-1]) > 0
    finally:
        await redis.aclose()
    assert await setup.stop("worker-b") == 0

    inbound, replies, stored_senders = await stored(setup)
    check_exactly_once(sent, inbound, replies, stored_senders)
    assert len(owners) == 2  # each worker owned partitions when one was killed
    assert caught > 0  # the kill left deliveries in flight ...
    assert '"pending deliveries claimed"' in setup.log("worker-b")  # ... and the other worker claimed them
