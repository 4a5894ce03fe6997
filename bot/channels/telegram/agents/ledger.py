"""An update from the group is acted on once, whatever the state backend.

Telegram delivers an update again after a webhook retry or a restart before the offset was
confirmed. A relayed reply's row carries ``delivery_key = agents:{update_id}`` (unique per
channel), so the redelivery's transaction fails as a duplicate; any other action (commands,
claims, buttons, edits) first records the update (``ProcessedUpdate("agents", update_id)``),
released if the action fails so that a redelivery may succeed.
"""

from __future__ import annotations

import logging

from storage import telegram_links
from storage.tickets import TicketStore

log = logging.getLogger("deskbot.telegram.agents")

DEDUPE_SOURCE = "agents"  # ProcessedUpdate.source of the agents' group's updates
REPLY_KEY_PREFIX = "agents:"  # Message.delivery_key of a reply typed in the group


def reply_key(update_id: int | None) -> str | None:
    """The delivery key of the reply an update relays (None: an update without an id)."""
    return None if update_id is None else f"{REPLY_KEY_PREFIX}{update_id}"


def typed_in_group(delivery_key: str | None) -> bool:
    """Whether a reply with this delivery key was typed in the group (so it is shown there)."""
    return (delivery_key or "").startswith(REPLY_KEY_PREFIX)


class UpdateLedger:
    def __init__(self, tickets: TicketStore) -> None:
        self.tickets = tickets

    async def first_time(self, update_id: int | None) -> bool:
        """Record the update as processed; False when it was already (a redelivery)."""
        if update_id is None:
            return True
        async with self.tickets.session() as tx:
            return await telegram_links.first_sighting(tx, DEDUPE_SOURCE, str(update_id))

    async def forget(self, update_id: int | None) -> None:
        """Release the update after its action failed: a redelivery may succeed."""
        if update_id is None:
            return
        try:
            async with self.tickets.session() as tx:
                await telegram_links.forget_sighting(tx, DEDUPE_SOURCE, str(update_id))
        except Exception:  # noqa: BLE001 - the redelivery is then ignored; the agent saw the error
            log.exception("processed update not released", extra={"update_id": update_id})

    async def reply_relayed(self, key: str) -> bool:
        async with self.tickets.session() as tx:
            return await telegram_links.reply_relayed(tx, key)
