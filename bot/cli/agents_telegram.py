"""``deskbot agents link-telegram EMAIL USER_ID`` / ``unlink-telegram EMAIL``.

Linking is what lets a person act on tickets from the Telegram agents' group: membership
of the group alone is not enough (groups get guests, ex-colleagues, bots), so every
action there is checked against an agent row carrying the sender's Telegram user id.
"""

from __future__ import annotations

import argparse

from common.errors import DeskbotError
from storage.models import Agent
from storage.telegram_links import any_agent_by_telegram_user
from storage.tickets import TicketStore

# Telegram user ids are positive and fit in 52 bits (Bot API documentation).
MAX_TELEGRAM_USER_ID = 2**52


def add_telegram_link_commands(agents: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Registers the Telegram subcommands under ``deskbot agents``."""
    link = agents.add_parser("link-telegram", help="let an agent act from the Telegram agents' group")
    link.add_argument("email")
    link.add_argument("user_id", help="the agent's numeric Telegram user id")
    link.add_argument("--name", help="create the agent with this name if the e-mail is unknown")
    unlink = agents.add_parser("unlink-telegram", help="stop an agent acting from Telegram")
    unlink.add_argument("email")


def parse_user_id(raw: str) -> int:
    value = raw.strip()
    if not value.isdigit() or not 0 < int(value) < MAX_TELEGRAM_USER_ID:
        raise DeskbotError(f"USER_ID must be a numeric Telegram user id, got {raw[:30]!r}")
    return int(value)


async def link_telegram(store: TicketStore, email: str, raw_user_id: str, name: str | None = None) -> Agent:
    user_id = parse_user_id(raw_user_id)
    email = email.strip().lower()
    if "@" not in email:
        raise DeskbotError(f"EMAIL must be an e-mail address, got {email[:60]!r}")
    async with store.session() as tx:
        holder = await any_agent_by_telegram_user(tx, user_id)
        agent = await tx.agent_by_email(email)
        if holder is not None and (agent is None or holder.id != agent.id):
            raise DeskbotError(f"Telegram user {user_id} is already linked to {holder.email}; unlink it first")
        if agent is None:
            if not name:
                raise DeskbotError(f"no agent with e-mail {email}; pass --name NAME to create one")
            agent = await tx.add_agent(email, name.strip()[:200])
        agent.telegram_user_id = str(user_id)
        return agent


async def unlink_telegram(store: TicketStore, email: str) -> Agent:
    async with store.session() as tx:
        agent = await tx.agent_by_email(email)
        if agent is None:
            raise DeskbotError(f"no agent with e-mail {email.strip().lower()}")
        agent.telegram_user_id = None
        return agent
