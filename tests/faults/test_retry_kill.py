"""Killed while replies wait to be retried: after the restart each goes out once and says sent.

Ten customers write; the fake answers the replies to three of them with 429 ``retry_after``
and to two with 502 (until the kill). Once the other five are answered, ``deskbot serve``
gets ``SIGKILL`` while the five refused replies wait for their next attempt — once the database shows them queued again after a failed
attempt (the outbox's retry state), or, with code that keeps the wait in memory, once the
fake has refused them and the bot had a moment to read that. Telegram is then healthy
again; after the restart every customer must have received their reply exactly once and
every reply row must say ``sent``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections import Counter
from collections.abc import Callable

import pytest

from tests.fakes.telegram_server import FakeTelegram
from tests.faults.harness import FULL, Backend, DeskbotProcess, Ledger

QUESTION = "how much is the hoodie?"
USERS = [910_001 + i for i in range(10)]
RATE_LIMITED = USERS[:3]
FAILING = USERS[3:5]
CASES = [
    pytest.param(library, mode, "sqlite", id=f"{library}-{mode}-sqlite",
                 marks=() if (library, mode) == ("aiogram", "polling") else (FULL,))
    for library in ("aiogram", "python-telegram-bot")
    for mode in ("polling", "webhook")
] + [pytest.param("python-telegram-bot", "polling", "postgres", id="python-telegram-bot-polling-postgres",
                  marks=FULL)]


async def _waiting_for_retry(fake: FakeTelegram, ledger: Ledger) -> None:
    """Until every faulted reply was refused at least once and now waits for its next attempt."""
    faulted = {str(u) for u in RATE_LIMITED + FAILING}
    failing = {str(u) for u in FAILING}

    others = {str(u) for u in USERS} - faulted

    def refused() -> bool:
        """Every faulted reply refused at least once, every other one accepted (none in flight)."""
        chats = {str(c.params.get("chat_id")) for c in fake.calls_of("sendMessage") if c.status in (429, 502)}
        return faulted <= chats and all(fake.texts(u) for u in others)

    await fake.wait_until(refused, within=60)
    async with asyncio.timeout(30):  # the accepted replies recorded as sent: only the faulted ones remain
        while any(status != "sent" for _, status, _ in await ledger.outbound(sorted(others))):  # noqa: ASYNC110 - the database's rows
            await asyncio.sleep(0.02)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(3):  # code without an outbox keeps the wait in memory: no row shows it
            while True:
                rows = await ledger.outbound(sorted(faulted))
                # A 5xx row twice refused waits a second or more for its next attempt: no claim
                # can slip in between this look and the kill.
                queued = {c for c, status, attempts in rows
                          if status == "queued" and attempts >= (2 if c in failing else 1)}
                if queued == faulted and fake.in_flight == 0:
                    return
                await asyncio.sleep(0.02)


@pytest.mark.parametrize(("library", "mode", "backend"), CASES, indirect=["backend"])
async def test_replies_waiting_for_a_retry_survive_a_kill(
    library: str, mode: str, backend: Backend, fake: FakeTelegram, ledger: Ledger,
    deskbot: Callable[..., DeskbotProcess], fault_report: list[str], request: pytest.FixtureRequest,
) -> None:
    bot = deskbot(library=library, mode=mode)
    await bot.start()
    for user in RATE_LIMITED:
        fake.fault("sendMessage", 429, retry_after=5, chat_id=user, times=1)
    for user in FAILING:
        fake.fault("sendMessage", 502, chat_id=user, times=1000)
    await fake.push_batch([{"update_id": fake.next_update_id(), "message": fake.message(u, QUESTION)} for u in USERS])
    await _waiting_for_retry(fake, ledger)
    bot.send_signal(signal.SIGKILL)
    await bot.wait_exit()
    for fault in fake.faults:
        fault.times = 0  # Telegram is well again
    await bot.start()
    await ledger.settled(fake, bot)

    received = Counter(str(c.params.get("chat_id")) for c in fake.calls_of("sendMessage") if c.status == 200)
    chats = await ledger.chats()
    status = Counter(s for chat in chats.values() for s, n in chat.outbound.items() for _ in range(n))
    wrong = {str(u): (received[str(u)], dict(chats[str(u)].outbound) if str(u) in chats else {})
             for u in USERS if received[str(u)] != 1 or str(u) not in chats or set(chats[str(u)].outbound) != {"sent"}}
    fault_report.append(
        f"retry-kill {request.node.callspec.id}: received {sum(received[str(u)] for u in USERS)} replies for "
        f"{len(USERS)} customers, rows {dict(status)}, wrong {len(wrong)}"
        f" (of them faulted {len(set(wrong) & {str(u) for u in RATE_LIMITED + FAILING})})"
    )
    assert all(chats[str(u)].inbound == 1 for u in USERS if str(u) in chats) and len(chats) == len(USERS)
    assert not wrong, f"customer → (replies received, reply rows by status): {wrong}"
