"""Two ``deskbot serve`` processes on PostgreSQL + Redis: one leader polls and posts to the
agents' group; kill -9 it and the other takes over, nothing answered or posted twice.

Both processes run with Telegram polling and an agents' forum group against one fake Bot
API; each calls it through its own ``api_base`` (``fake.base_for``), so the fake tells who
made every call. The leader is killed with SIGKILL at the worst moment for the long poll: as
the fake answers its ``getUpdates`` with a new batch, before the process reads it — nothing
of that batch is confirmed, and the successor must fetch it again and answer each update
once. The leader's lease is not released by a killed process: the follower takes over once
it expires (``leader.ttl_seconds``, 2 s here).
"""

from __future__ import annotations

import asyncio
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from storage.migrate import upgrade
from tests.fakes.telegram_server import Call, FakeTelegram
from tests.faults.harness import FULL, Backend, DeskbotProcess, Ledger

GROUP = -1009990077
TTL = "2"
HUMAN = "I want to talk to a human please"
QUESTIONS = ("how much is the hoodie?", "do you ship to Germany?", "what is your return policy?")
CARD = re.compile(r"<b>(T-\d{4,})</b>")
LATE = "my parcel is late, please hurry"
WHERE = "where is my parcel now?"


def _in_group(fake: FakeTelegram, text: str) -> int:
    """Messages in the agents' group quoting ``text`` (a customer's line)."""
    return sum(1 for message in fake.sent(GROUP) if text in str(message["text"]))


def _cards(fake: FakeTelegram) -> Counter[str]:
    """Ticket number → times its card (the message that opens its topic) was posted."""
    found: Counter[str] = Counter()
    for message in fake.sent(GROUP):
        match = CARD.search(str(message["text"]))
        if match and message.get("reply_markup"):  # the card carries Claim / Resolve
            found[match.group(1)] += 1
    return found


async def _leader_gauge(bot: DeskbotProcess) -> float:
    """The process's ``deskbot_leader`` gauge, from its ``GET /metrics``."""
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        answer = await client.get(f"{bot.web_base}/metrics")
    answer.raise_for_status()
    (line,) = [line for line in answer.text.splitlines() if line.startswith("deskbot_leader ")]
    return float(line.split()[1])


def _pollers(calls: list[Call]) -> set[str]:
    return {call.via for call in calls if call.method == "getUpdates"}


def _burst(fake: FakeTelegram, customers: range, ask_human: set[int]) -> list[dict[str, Any]]:
    """One update per customer (pushed together: one getUpdates answer)."""
    return [
        {
            "update_id": fake.next_update_id(),
            "message": fake.message(user, HUMAN if user in ask_human else QUESTIONS[user % len(QUESTIONS)]),
        }
        for user in customers
    ]


async def _push(fake: FakeTelegram, updates: list[dict[str, Any]]) -> dict[int, int]:
    """Push the burst; returns update id → customer."""
    await fake.push_batch(updates)
    return {int(u["update_id"]): int(u["message"]["chat"]["id"]) for u in updates}


# Of the full fault matrix (`make faults`): two processes start, so the run takes 20 s and more
# (20.3 s alone on 2 shared cores, 40-60 s beside other tests), over what `make test` allows it.
@FULL
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_killing_the_leader_moves_polling_and_the_agents_group_without_doubles(
    backend: Backend,
    fake: FakeTelegram,
    ledger: Ledger,
    deskbot: Callable[..., DeskbotProcess],
    fault_report: list[str],
) -> None:
    fake.make_forum(GROUP)

    def process(tag: str) -> DeskbotProcess:
        return deskbot(
            extra_env={
                "DESKBOT_CHANNELS__TELEGRAM__API_BASE": fake.base_for(tag),
                "DESKBOT_CHANNELS__TELEGRAM__AGENTS_CHAT_ID": str(GROUP),
                "DESKBOT_LEADER__TTL_SECONDS": TTL,
            }
        )

    await upgrade(backend.storage_url)  # so that the two may start at once
    processes = {"a": process("a"), "b": process("b")}
    await asyncio.gather(*(p.start() for p in processes.values()))  # both serve HTTP
    await fake.wait_until(lambda: bool(_pollers(fake.calls)), within=60)
    (leader,) = _pollers(fake.calls)  # the lease's winner, and no one else, polls
    (follower,) = set(processes) - {leader}
    first, second = processes[leader], processes[follower]

    # Before the kill: customers 1-6, two of them asking for a human (two cards).
    sent = await _push(fake, _burst(fake, range(930_001, 930_007), {930_002, 930_005}))
    await fake.wait_until(lambda: len(_cards(fake)) == 2, within=60)
    sent[await fake.text(930_002, LATE)] = 930_002  # a line in the ticket's topic, by the leader
    await fake.wait_until(lambda: _in_group(fake, LATE) > 0, within=60)
    await ledger.settled(fake, first)
    before = len(fake.calls)
    assert _pollers(fake.calls) == {leader}  # the follower never polled
    assert (await _leader_gauge(first), await _leader_gauge(second)) == (1.0, 0.0)

    # The kill: as the leader's long poll is answered with the next burst, before it reads it.
    killed: list[int] = []
    batch = _burst(fake, range(930_101, 930_107), {930_103})
    ids = {int(u["update_id"]) for u in batch}

    def kill_on_the_batch(call: Call) -> None:
        # Hooks run as the answer is written, right after the handler took ``fake.updates``.
        if (
            call.method == "getUpdates"
            and call.via == leader
            and not killed
            and any(u["update_id"] in ids for u in fake.updates)
        ):
            killed.append(len(fake.calls))
            moments.append(time.monotonic())
            first.send_signal(signal.SIGKILL)

    def first_poll_after_the_kill(call: Call) -> None:
        if call.method == "getUpdates" and call.via == follower and len(moments) == 1:
            moments.append(time.monotonic())

    moments: list[float] = []  # the kill, the follower's first getUpdates (reported, not asserted)
    fake.call_hooks.append(kill_on_the_batch)
    fake.observers.append(first_poll_after_the_kill)
    sent |= await _push(fake, batch)
    assert await first.wait_exit() == -signal.SIGKILL
    assert killed, "the leader was not killed on its getUpdates"

    # The follower takes over within the TTL, fetches the unconfirmed batch, posts its card.
    await fake.wait_until(lambda: follower in _pollers(fake.calls[before:]), within=60)
    sent |= await _push(fake, _burst(fake, range(930_201, 930_205), {930_204}))
    await fake.wait_until(lambda: len(_cards(fake)) == 4, within=60)
    sent[await fake.text(930_005, WHERE)] = 930_005  # a ticket posted before the kill: lines go on
    await fake.wait_until(lambda: _in_group(fake, WHERE) > 0, within=60)
    await ledger.settled(fake, second)

    assert await _leader_gauge(second) == 1.0
    chats = await ledger.chats()
    per_chat = Counter(sent.values())
    for chat, updates in per_chat.items():
        stored = chats[str(chat)]
        assert stored.inbound == updates, chat  # each update stored once
        assert set(stored.outbound) == {"sent"}, (chat, stored.outbound)  # every reply delivered
        # and sent once: a send more than the rows (a reply sent by both processes) shows here
        assert len(fake.sent(chat)) == stored.outbound["sent"], chat
    cards = _cards(fake)
    assert sorted(cards.values()) == [1, 1, 1, 1]  # four tickets, each card posted once
    group = Counter((m.get("message_thread_id"), m["text"]) for m in fake.sent(GROUP))
    assert max(group.values()) == 1  # no line in the agents' group posted twice
    assert (_in_group(fake, LATE), _in_group(fake, WHERE)) == (1, 1)
    assert len(fake.calls_of("createForumTopic")) == 4
    after_kill = fake.calls[killed[0] :]
    assert _pollers(after_kill) == {follower}
    fault_report.append(
        f"leader-takeover: {len(sent)} updates (3 bursts, 2 lines), killed the leader on its getUpdates; "
        f"the follower polled {moments[1] - moments[0]:.1f} s after the kill (ttl {TTL} s); "
        f"{len(cards)} cards posted once each; "
        f"{sum(len(fake.sent(c)) for c in per_chat)} replies sent, none twice; "
        f"group messages {sum(group.values())}, none twice"
    )
