"""An agent's reply in the agents' group, redelivered by Telegram after a restart, reaches the
customer once and is one agent row on the ticket.

``deskbot serve`` runs with an agents' forum group. A customer asks for a human; the ticket
gets its topic; a linked agent answers in the topic and the answer reaches the customer.
Then the bot is killed (``SIGKILL``) and Telegram hands the same update (same
``update_id``) over again — as it does when the confirmation (the next ``getUpdates``
offset, or the webhook's 200) never arrived. After the restart the redelivery must change
nothing: the dedupe of the group's updates has to outlive the process whatever the state
backend (memory state forgot it).
"""

from __future__ import annotations

import re
import signal
from collections.abc import Callable
from typing import Any

import pytest

from bot.cli.agents_telegram import link_telegram
from storage.tickets import SqlTicketStore
from tests.fakes.telegram_server import FakeTelegram
from tests.faults.harness import FULL, Backend, DeskbotProcess, Ledger

GROUP = -1009990001
CUSTOMER = 920_001
SAM = 7301
ANSWER = "Hello, Sam here: a new jacket ships today."
CASES = [
    pytest.param(library, mode, backend, id=f"{library}-{mode}-{backend}",
                 marks=() if (library, mode, backend) == ("aiogram", "polling", "sqlite") else (FULL,))
    for library in ("aiogram", "python-telegram-bot")
    for mode in ("polling", "webhook")
    for backend in ("sqlite", "postgres")
]


def _thread(fake: FakeTelegram) -> int | None:
    """The ticket's topic, once its card is posted there."""
    for message in fake.sent(GROUP):
        if message.get("message_thread_id") and re.search(r"<b>T-\d{4,}</b>", str(message["text"])):
            return int(message["message_thread_id"])
    return None


@pytest.mark.parametrize(("library", "mode", "backend"), CASES, indirect=["backend"])
async def test_an_agents_reply_redelivered_after_a_restart_reaches_the_customer_once(
    library: str, mode: str, backend: Backend, fake: FakeTelegram, ledger: Ledger,
    deskbot: Callable[..., DeskbotProcess], fault_report: list[str], request: pytest.FixtureRequest,
) -> None:
    fake.make_forum(GROUP)
    fake.set_member(GROUP, SAM, "member")
    bot = deskbot(library=library, mode=mode, extra_env={"DESKBOT_CHANNELS__TELEGRAM__AGENTS_CHAT_ID": str(GROUP)})
    await bot.start()  # migrates the database
    store = SqlTicketStore.from_url(backend.storage_url)
    try:
        await link_telegram(store, "sam@shop.example", str(SAM), name="Sam Agent")
    finally:
        await store.close()

    await fake.text(CUSTOMER, "I want to talk to a human please")
    await fake.wait_until(lambda: _thread(fake) is not None, within=60)
    thread = _thread(fake)
    assert thread is not None
    update: dict[str, Any] = {
        "update_id": fake.next_update_id(),
        "message": fake.message(SAM, ANSWER, chat_id=GROUP, chat_type="supergroup", thread_id=thread),
    }
    await fake.push(update)
    await fake.wait_until(lambda: ANSWER in fake.texts(CUSTOMER), within=60)
    await ledger.settled(fake, bot)

    bot.send_signal(signal.SIGKILL)
    await bot.wait_exit()
    await fake.push(update)  # the confirmation never reached Telegram: the same update again
    await bot.start()
    await ledger.settled(fake, bot)

    chat = (await ledger.chats())[str(CUSTOMER)]
    received = fake.texts(CUSTOMER).count(ANSWER)
    fault_report.append(
        f"agents-redelivery {request.node.callspec.id}: the customer received the agent's reply {received}x, "
        f"agent rows {chat.agent_rows}"
    )
    assert received == 1
    assert chat.agent_rows == 1
