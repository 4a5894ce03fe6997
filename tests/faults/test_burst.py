"""200 customers write at once; ``deskbot serve`` is stopped mid-burst and started again.

The bot is a real child process (``python -m bot.cli.main serve``) talking to the fake Bot API
with aiogram or python-telegram-bot, by long polling or webhook, on SQLite + memory state or
PostgreSQL + Redis. After ``KILL_AFTER`` replies have reached the fake it gets ``SIGKILL``
(or ``SIGTERM``) — from the fake's call hook, at the moment the fake accepts that reply and
before the bot has read the answer, so a kill -9 interrupts a send in flight. It is started
again on the same database and, once settled, the database and the fake must agree exactly:

- every customer message stored exactly once (one inbound row per chat);
- every reply row SENT reached the customer exactly once; a FAILED row ("interrupted while
  sending; it may not have arrived") at most once; nothing else reached anyone;
- every customer has an answer (a reply that arrived) or a FAILED row on record;
- after SIGTERM nothing failed at all: a graceful stop finishes what it started.
"""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.fakes.telegram_server import Call, FakeTelegram
from tests.faults.harness import FULL, Backend, DeskbotProcess, Ledger

CUSTOMERS = 200
KILL_AFTER = 60
FIRST_USER = 900_001
QUESTION = "how much is the hoodie?"  # one reply: the hoodie's price (catalog), no buttons
LIBRARIES = ("aiogram", "python-telegram-bot")
MODES = ("polling", "webhook")
SIGNALS = ("SIGKILL", "SIGTERM")
BACKENDS = ("sqlite", "postgres")
# The representative runs of the default suite; the rest of the 16 are marked ``faults``.
DEFAULT = {
    ("python-telegram-bot", "polling", "SIGKILL", "sqlite"),
    ("aiogram", "webhook", "SIGTERM", "postgres"),
}


def _matrix() -> list[object]:
    cases: list[object] = []
    for library in LIBRARIES:
        for mode in MODES:
            for sig in SIGNALS:
                for backend in BACKENDS:
                    case = (library, mode, sig, backend)
                    marks = () if case in DEFAULT else (FULL,)
                    cases.append(pytest.param(library, mode, sig, backend, marks=marks, id="-".join(case)))
    return cases


@dataclass
class Outcome:
    """What one run left behind, counted."""

    stored_once: int
    lost: list[str]  # chats with no inbound row
    stored_twice: list[str]  # chats with more than one inbound row
    sent: int
    failed: int
    unfinished: int
    received: int  # replies the fake accepted for customers
    duplicates: list[str]  # chats that received more than their rows allow
    unrecorded: list[str]  # chats that received a reply no SENT/FAILED row accounts for... or SENT never arrived
    unanswered: list[str]  # chats with neither an arrived reply nor a FAILED row

    def line(self, name: str, replies_at_stop: int) -> str:
        return (
            f"{name}: stopped after {replies_at_stop} replies; stored once {self.stored_once}/{CUSTOMERS}, "
            f"lost {len(self.lost)}, stored twice {len(self.stored_twice)}; rows sent {self.sent}, "
            f"failed {self.failed}, unfinished {self.unfinished}; replies received {self.received}, "
            f"duplicates {len(self.duplicates)}, sent-but-missing {len(self.unrecorded)}, "
            f"unanswered {len(self.unanswered)}"
        )


async def outcome(fake: FakeTelegram, ledger: Ledger, users: list[int]) -> Outcome:
    chats = await ledger.chats()
    received = Counter(str(c.params.get("chat_id")) for c in fake.calls_of("sendMessage") if c.status == 200)
    lost, twice, duplicates, missing, unanswered = [], [], [], [], []
    sent = failed = unfinished = stored_once = 0
    for user in users:
        chat = str(user)
        row = chats.get(chat)
        inbound = row.inbound if row else 0
        status = row.outbound if row else Counter()
        stored_once += inbound == 1
        if inbound == 0:
            lost.append(chat)
        if inbound > 1:
            twice.append(chat)
        n_sent, n_failed = status.get("sent", 0), status.get("failed", 0)
        sent += n_sent
        failed += n_failed
        unfinished += sum(status.values()) - n_sent - n_failed
        got = received.get(chat, 0)
        if got > n_sent + n_failed:
            duplicates.append(chat)
        if got < n_sent:
            missing.append(chat)
        if got == 0 and n_failed == 0:
            unanswered.append(chat)
    return Outcome(stored_once, lost, twice, sent, failed, unfinished,
                   sum(received.get(str(u), 0) for u in users), duplicates, missing, unanswered)


def stop_after_replies(fake: FakeTelegram, bot: DeskbotProcess, sig: signal.Signals, replies: int) -> list[int]:
    """Signal the bot as the fake accepts the ``replies``-th reply, before the bot reads the answer."""
    seen: list[int] = []

    def hook(call: Call) -> None:
        if call.method != "sendMessage" or call.status != 200 or seen:
            return
        accepted = sum(1 for c in fake.calls_of("sendMessage") if c.status == 200)
        if accepted >= replies:
            seen.append(accepted)
            bot.send_signal(sig)

    fake.call_hooks.append(hook)
    return seen


@pytest.mark.parametrize(("library", "mode", "sig", "backend"), _matrix(), indirect=["backend"])
async def test_a_burst_survives_a_stop(
    library: str, mode: str, sig: str, backend: Backend, fake: FakeTelegram, ledger: Ledger,
    deskbot: Callable[..., DeskbotProcess], fault_report: list[str], request: pytest.FixtureRequest,
) -> None:
    bot = deskbot(library=library, mode=mode)
    await bot.start()
    users = [FIRST_USER + i for i in range(CUSTOMERS)]
    stopped = stop_after_replies(fake, bot, signal.Signals[sig], KILL_AFTER)
    await fake.push_batch([{"update_id": fake.next_update_id(), "message": fake.message(u, QUESTION)} for u in users])
    code = await bot.wait_exit()
    fake.call_hooks.clear()
    await bot.start()
    await ledger.settled(fake, bot)
    result = await outcome(fake, ledger, users)
    fault_report.append(result.line(request.node.callspec.id, stopped[0] if stopped else -1) + f" (exit {code})")

    assert stopped, "the bot was never stopped: fewer replies than KILL_AFTER"
    assert not result.lost, f"{len(result.lost)} customer messages never stored: {result.line('', stopped[0])}"
    assert not result.stored_twice, f"{len(result.stored_twice)} stored twice"
    assert result.unfinished == 0
    assert not result.duplicates, f"{len(result.duplicates)} chats got a reply twice: {result.line('', stopped[0])}"
    assert not result.unrecorded, f"{len(result.unrecorded)} replies marked sent never arrived"
    assert not result.unanswered, f"{len(result.unanswered)} customers never answered, no failure recorded"
    if sig == "SIGTERM":
        assert result.failed == 0, f"a graceful stop left {result.failed} failed replies"
