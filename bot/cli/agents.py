"""``deskbot agents add|password|token|revoke-tokens|list|link-telegram|unlink-telegram``: the people who answer.

Only the ticket store is opened (no classifier), so these commands are quick. The password
of ``agents add`` and ``agents password`` comes from standard input when it is not a
terminal (``echo … |``, a secrets manager) or from a hidden prompt asked twice — never from
the command line, where it would land in the shell history and the process list.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import TextIO

from bot.cli.agents_telegram import add_telegram_link_commands, link_telegram, unlink_telegram
from bot.config import Settings
from desk.accounts import Accounts, InvalidAccount, Role
from storage.tickets import SqlTicketStore


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    agents = sub.add_parser("agents", help="agents of the workspace").add_subparsers(dest="action", required=True)
    add = agents.add_parser("add", help="add an agent (password from stdin or a prompt)")
    add.add_argument("email")
    add.add_argument("--name", required=True)
    add.add_argument("--role", choices=[r.value for r in Role], default=Role.AGENT.value)
    token = agents.add_parser("token", help="issue an API token for Authorization: Bearer (printed once)")
    token.add_argument("email")
    password = agents.add_parser("password", help="set a new password (stdin or a prompt); lifts a lockout")
    password.add_argument("email")
    revoke = agents.add_parser("revoke-tokens", help="revoke every API token of an agent")
    revoke.add_argument("email")
    agents.add_parser("list", help="list agents")
    add_telegram_link_commands(agents)


def read_password(stdin: TextIO, prompt: Callable[[str], str] = getpass.getpass) -> str:
    if not stdin.isatty():
        line = stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise InvalidAccount("password: none given on standard input")
        return password
    first = prompt("Password: ")
    if first != prompt("Repeat password: "):
        raise InvalidAccount("password: the two entries differ")
    return first


async def run(settings: Settings, args: argparse.Namespace, stdin: TextIO | None = None) -> int:
    stdin = sys.stdin if stdin is None else stdin  # looked up now: a redirection made after import holds
    store = SqlTicketStore.from_url(settings.storage.url)
    accounts = Accounts(store)
    try:
        if args.action == "add":
            password = read_password(stdin)
            agent = await accounts.add_agent(args.email, args.name, args.role, password)
            print(f"added {agent.role} {agent.email} (id {agent.id})")
        elif args.action == "token":
            token = await accounts.issue_token(args.email)
            print(token)
            print("Keep this token secret; it is shown only once. Send it as 'Authorization: Bearer <token>'.",
                  file=sys.stderr)
        elif args.action == "password":
            agent = await accounts.set_password(args.email, read_password(stdin))
            print(f"password of {agent.email} changed; their sessions have ended")
        elif args.action == "revoke-tokens":
            count = await accounts.revoke_tokens(args.email)
            print(f"revoked {count} API token{'s' if count != 1 else ''} of {args.email.strip().lower()}")
        elif args.action == "list":
            for agent in await accounts.list_agents():
                state = "active" if agent.active else "inactive"
                telegram = f"  telegram:{agent.telegram_user_id}" if agent.telegram_user_id else ""
                print(f"{agent.id:>4}  {agent.role:<6} {state:<8} {agent.email}  {agent.name}{telegram}")
        elif args.action == "link-telegram":
            agent = await link_telegram(store, args.email, args.user_id, args.name)
            print(f"{agent.email} can now act from Telegram as user {agent.telegram_user_id}")
        else:
            agent = await unlink_telegram(store, args.email)
            print(f"{agent.email} is no longer linked to a Telegram account")
    finally:
        await store.close()
    return 0
