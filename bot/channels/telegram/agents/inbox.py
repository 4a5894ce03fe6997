"""The group's updates in: which part acts on each, and each acted on once.

An update from another chat is not the group's (``handle`` answers False and the customer
channel takes it). From the group: a button press goes to ``buttons.py``, a message or an
edit to ``messages.py``. A redelivered update (a webhook retry, a restart before the offset
was confirmed) is acted on once (``ledger.py``): a message decides itself how it is
deduplicated (a reply by its row's key, a command by the ledger); a press or an edit is
recorded before it runs and released if it fails, so a retry may succeed. A failure is
logged, and an agent whose message failed is told nothing was sent — the channel goes on.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable
from typing import Any

from bot.channels.telegram.agents.buttons import CardButtons
from bot.channels.telegram.agents.chat import GroupChat
from bot.channels.telegram.agents.ledger import UpdateLedger
from bot.channels.telegram.agents.messages import GroupMessages
from bot.channels.telegram.api import TelegramError

log = logging.getLogger("deskbot.telegram.agents")


def _chat_id(message: dict[str, Any]) -> int | None:
    chat = message.get("chat")
    chat_id = chat.get("id") if isinstance(chat, dict) else None
    return chat_id if isinstance(chat_id, int) else None


def _addressed(update: dict[str, Any], chat_id: int) -> tuple[str, dict[str, Any]] | None:
    """(kind, payload) of an update from the group; None when it belongs to someone else.

    Kinds: ``callback_query``, ``message``, ``edited_message``, ``channel_post`` (ignored).
    """
    query = update.get("callback_query")
    if isinstance(query, dict):
        message = query.get("message")
        if not isinstance(message, dict) or _chat_id(message) != chat_id:
            return None
        return "callback_query", query
    for kind in ("message", "edited_message", "channel_post"):
        message = update.get(kind)
        if isinstance(message, dict):
            return (kind, message) if _chat_id(message) == chat_id else None
    return None


class GroupInbox:
    def __init__(self, chat: GroupChat, messages: GroupMessages, buttons: CardButtons, ledger: UpdateLedger) -> None:
        self.chat = chat
        self.messages = messages
        self.buttons = buttons
        self.ledger = ledger

    async def handle(self, update: dict[str, Any]) -> bool:
        """Handle an update from the agents' chat; False when it belongs to someone else.

        An update delivered twice (webhook retry, restart before the offset was confirmed)
        is acted on once: an agent's reply must not reach the customer twice.
        """
        addressed = _addressed(update, self.chat.chat_id)
        if addressed is None:
            return False
        kind, payload = addressed
        if kind == "channel_post":
            return True
        raw_id = update.get("update_id")
        update_id = raw_id if isinstance(raw_id, int) else None
        if kind == "message":
            await self._guarded(self.messages.on_message(payload, update_id), payload)
            return True
        if not await self.ledger.first_time(update_id):
            log.info("duplicate agents' group update ignored", extra={"update_id": update_id})
            return True
        work = self.buttons.press(payload) if kind == "callback_query" else self.messages.on_edit(payload)
        if not await self._guarded(work, None):
            await self.ledger.forget(update_id)  # a retry may succeed
        return True

    async def _guarded(self, work: Awaitable[None], message: dict[str, Any] | None) -> bool:
        try:
            await work
        except Exception:  # noqa: BLE001 - an agent's action failing must not stop the channel
            log.exception("agents' group update failed")
            if message is not None:
                with contextlib.suppress(TelegramError):
                    await self.chat.answer(message, "⚠️ That did not work (internal error). Nothing was sent.")
            return False
        return True
