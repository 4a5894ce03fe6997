"""Queued intake through the Telegram webhook, with real processes on PostgreSQL + Redis.

A ``deskbot serve`` front (webhook mode, ``intake.queue: redis``) confirms each update once it
is in its chat's partition stream; two ``deskbot worker`` processes run the turns and send the
replies through their outbox to the fake Bot API. One worker is killed with SIGKILL while it
holds updates it read and had not acknowledged. Then, counted against the fake and the
database:

- every customer message stored exactly once, each chat's in the order Telegram sent them;
- every reply row SENT reached the customer exactly once, a FAILED one ("interrupted while
  sending") at most once, nothing else reached anyone, nothing left queued;
- the surviving worker claimed the dead one's pending updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import text

from storage.intake_stream import GROUP, IntakeKeys
from tests.fakes.telegram_server import FakeTelegram
from tests.faults.harness import CODE_ROOT, FULL, PATIENCE, Backend, DeskbotProcess, Ledger

PARTITIONS = 8
FIRST_USER = 700_001
QUESTIONS = ("how much is the hoodie?", "do you ship to Germany?", "what is your return policy?")


def spawn_worker(bot: DeskbotProcess, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - the test's own interpreter, fixed arguments
            [sys.executable, "-m", "bot.cli.main", "--config", str(CODE_ROOT / "config.yaml"), "worker"],
            cwd=CODE_ROOT, env=bot.environ(), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


async def pending_of(redis: Redis, keys: IntakeKeys, pid: int) -> int:
    count = 0
    for partition in range(PARTITIONS):
        with contextlib.suppress(Exception):  # a partition nobody wrote to has no group yet
            for consumer in await redis.xinfo_consumers(keys.stream(partition), GROUP):
                if f":{pid}:" in consumer["name"].decode():
                    count += int(consumer["pending"])
    return count


async def stored(ledger: Ledger, users: list[int]) -> int:
    chats = await ledger.chats()
    return sum(chats[str(u)].inbound for u in users if str(u) in chats)


async def wait_exit(process: subprocess.Popen[bytes]) -> int:
    async with asyncio.timeout(PATIENCE):
        while process.poll() is None:  # noqa: ASYNC110 - a child process, not a task
            await asyncio.sleep(0.05)
    return process.returncode


@pytest.mark.parametrize(
    ("backend", "customers", "per_customer"),
    # Of the full fault matrix (`make faults`, CI): ~30 s, where `make test` keeps the REST
    # kill with two workers (tests/faults/test_queued_intake.py) for the same claim path.
    [pytest.param("postgres", 40, 2, id="40x2", marks=FULL), pytest.param("postgres", 150, 3, id="150x3", marks=FULL)],
    indirect=["backend"],
)
async def test_webhook_updates_queued_for_workers_survive_a_kill_9(
    backend: Backend, fake: FakeTelegram, ledger: Ledger, deskbot: Callable[..., DeskbotProcess],
    tmp_path: Path, customers: int, per_customer: int,
) -> None:  # fmt: skip
    assert backend.redis_url is not None and backend.redis_prefix is not None
    queued = {
        "DESKBOT_INTAKE__QUEUE": "redis",
        "DESKBOT_INTAKE__REDIS_URL": backend.redis_url,
        "DESKBOT_INTAKE__PARTITIONS": str(PARTITIONS),
        "DESKBOT_INTAKE__LEASE_TTL_SECONDS": "1.5",
        "DESKBOT_LOGGING__LEVEL": "INFO",
    }
    bot = deskbot(mode="webhook", extra_env=queued)
    await bot.start()
    workers = [spawn_worker(bot, tmp_path / f"worker-{i}.log") for i in range(2)]
    keys = IntakeKeys(backend.redis_prefix)
    redis = Redis.from_url(backend.redis_url)
    users = [FIRST_USER + i for i in range(customers)]
    try:
        async with asyncio.timeout(PATIENCE):  # both running, the partitions shared between them
            while True:
                owners = [await redis.get(keys.lease(p)) for p in range(PARTITIONS)]
                if await redis.zcard(keys.workers()) == 2 and all(owners) and len(set(owners)) == 2:
                    break
                await asyncio.sleep(0.05)
        victim = workers[0]
        sent_texts: dict[str, list[str]] = {}
        pushed = caught = rounds = 0
        deadline = asyncio.get_running_loop().time() + PATIENCE
        # Bursts of updates until the victim is caught holding some it read and had not
        # acknowledged (frozen with SIGSTOP, killed only if it still holds them).
        while not caught:
            rounds += 1
            assert rounds <= 10, "the victim never held an unacknowledged update"
            updates = []
            for k in range(per_customer):
                for user in users:
                    words = f"{QUESTIONS[(user + k) % len(QUESTIONS)]} #{rounds}.{k}"
                    sent_texts.setdefault(str(user), []).append(words)
                    updates.append({"update_id": fake.next_update_id(), "message": fake.message(user, words)})
            await fake.push_batch(updates)
            pushed += len(updates)
            while not caught and await stored(ledger, users) < pushed:
                assert asyncio.get_running_loop().time() < deadline, "the burst was not stored in time"
                if await pending_of(redis, keys, victim.pid):
                    os.kill(victim.pid, signal.SIGSTOP)
                    caught = await pending_of(redis, keys, victim.pid)
                    if not caught:
                        os.kill(victim.pid, signal.SIGCONT)
                else:
                    await asyncio.sleep(0.005)
        victim.kill()
        assert await wait_exit(victim) == -signal.SIGKILL
        async with asyncio.timeout(PATIENCE):  # every update stored
            while await stored(ledger, users) < pushed:  # noqa: ASYNC110 - polls the database
                await asyncio.sleep(0.2)
        await ledger.settled(fake, bot)
    finally:
        await redis.aclose()
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
        for worker in workers:
            await wait_exit(worker)

    chats = await ledger.chats()
    received = Counter(str(c.params.get("chat_id")) for c in fake.calls_of("sendMessage") if c.status == 200)
    for user in users:
        chat = chats[str(user)]
        assert chat.inbound == per_customer * rounds, (user, chat)  # stored exactly once each
        sent, failed = chat.outbound.get("sent", 0), chat.outbound.get("failed", 0)
        assert sum(chat.outbound.values()) == sent + failed, (user, chat)  # nothing left queued or sending
        assert sent <= received[str(user)] <= sent + failed, (user, chat, received[str(user)])  # once each
    async with ledger.engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT chat_id, text FROM messages WHERE channel = 'telegram' AND direction = 'in' ORDER BY id"
        ))).all()  # fmt: skip
    stored_order: dict[str, list[str]] = {}
    for chat_id, words in rows:
        stored_order.setdefault(str(chat_id), []).append(words)
    assert {u: stored_order.get(u) for u in sent_texts} == sent_texts  # each chat's in the order sent
    assert caught > 0
    assert '"pending deliveries claimed"' in (tmp_path / "worker-1.log").read_text(errors="replace")
