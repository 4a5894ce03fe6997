"""Talk to the bot in a terminal (``deskbot chat``): the smallest real channel.

Buttons are listed with numbers; typing the number presses the button. The console is a pull
channel: a turn's replies are printed from its answer (stored sent), and replies queued later
(``deskbot tickets reply`` from another terminal, a rating request) are polled from the
outbox and acknowledged once printed.

It is given the pipeline and the ticket store, not the app that wires them (``bot/cli``).
"""

from __future__ import annotations

import asyncio
import getpass
import sys
from collections.abc import Sequence
from typing import TextIO

from bot.pipeline import Pipeline
from common.messages import Button, Incoming, stored_buttons
from storage.tickets import TicketStore

CHANNEL = "console"


class ConsoleChannel:
    def __init__(
        self, pipeline: Pipeline, tickets: TicketStore, user: str | None = None, out: TextIO = sys.stdout,
        poll_seconds: float = 2.0,
    ) -> None:
        self.pipeline = pipeline
        self.tickets = tickets
        self.user = user or f"{getpass.getuser()}"
        self.out = out
        self.poll_seconds = poll_seconds
        self._buttons: Sequence[Button] = ()

    def _show(self, author: str, text: str, buttons: Sequence[Button] = ()) -> None:
        print(f"{author}> {text}", file=self.out)
        for number, button in enumerate(buttons, 1):
            print(f"   [{number}] {button.title}", file=self.out)
        if buttons:
            self._buttons = buttons
        self.out.flush()

    async def send(self, line: str) -> None:
        text, payload = line, None
        stripped = line.strip()
        if stripped.isdigit() and 1 <= int(stripped) <= len(self._buttons):
            payload, text = self._buttons[int(stripped) - 1].payload, ""
        elif stripped.startswith("/"):
            payload, text = stripped, ""
        self._buttons = ()
        replies = await self.pipeline.handle(
            Incoming(CHANNEL, self.user, self.user, text, payload=payload, display_name=self.user,
                     replies_in_answer=True)
        )
        for reply in replies:
            self._show("bot", reply.text, reply.buttons)

    async def poll_outbox(self) -> None:
        async with self.tickets.session() as tx:
            customer = await tx.find_customer(CHANNEL, self.user)
            if customer is None:
                return
            messages = await tx.hand_out_replies(customer.id, CHANNEL)
        for message in messages:
            self._show(message.author.value, message.text, stored_buttons(message.payload))
        if messages:
            async with self.tickets.session() as tx:
                await tx.acknowledge_replies(customer.id, CHANNEL, messages[-1].id)

    async def run(self, stdin: TextIO = sys.stdin) -> None:
        self._show("bot", "Type a message (Ctrl-D to quit).")
        loop = asyncio.get_running_loop()

        async def poller() -> None:
            while True:
                await asyncio.sleep(self.poll_seconds)
                await self.poll_outbox()

        task = asyncio.create_task(poller())
        try:
            while True:
                line = await loop.run_in_executor(None, stdin.readline)
                if not line:
                    break
                if line.strip():
                    await self.send(line.rstrip("\n"))
        finally:
            task.cancel()
