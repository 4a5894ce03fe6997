"""``deskbot customers export ID | erase ID --yes`` and ``deskbot retention run``.

Only the stores are opened (no classifier). What erase and retention remove and keep is
defined in ``storage/data_rights.py``; the periods per channel come from ``retention.days``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from bot.config import Settings
from storage.data_rights import erase_customer, export_customer, run_retention, vacuum_erased
from storage.models import utcnow
from storage.tickets import SqlTicketStore

COMMANDS = ("customers", "retention")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    customers = sub.add_parser("customers", help="customer data rights").add_subparsers(dest="action", required=True)
    export = customers.add_parser("export", help="print everything stored about a customer as JSON")
    export.add_argument("customer_id", type=int)
    export.add_argument("--output", "-o", help="write to this file instead of standard output")
    erase = customers.add_parser("erase", help="anonymise a customer (messages, personal fields, identities)")
    erase.add_argument("customer_id", type=int)
    erase.add_argument("--yes", action="store_true", help="confirm: erasing cannot be undone")
    erase.add_argument("--actor", default="cli", help="who asked (recorded on the customer's tickets)")
    retention = sub.add_parser("retention", help="data retention").add_subparsers(dest="action", required=True)
    retention.add_parser("run", help="anonymise conversations older than retention.days now")


async def run(settings: Settings, args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = sys.stdout if out is None else out  # looked up now: a redirection made after import holds
    if args.command == "customers" and args.action == "erase" and not args.yes:
        print(f"deskbot: erasing customer {args.customer_id} cannot be undone; add --yes to confirm", file=sys.stderr)
        return 2
    if args.command == "retention" and not settings.retention.days:
        print("retention.days is empty: every conversation is kept; nothing to do", file=out)
        return 0
    store = SqlTicketStore.from_url(settings.storage.url)
    try:
        if args.command == "retention":
            result = await run_retention(store, settings.retention.days, now=utcnow())
            for channel in sorted(settings.retention.days):
                print(
                    f"{channel}: {result.messages.get(channel, 0)} messages, {result.tickets.get(channel, 0)} tickets, "
                    f"{result.identities.get(channel, 0)} identities anonymised "
                    f"(older than {settings.retention.days[channel]} days)",
                    file=out,
                )
            print(f"customers without any identity left, anonymised: {result.customers}", file=out)
            return 0
        if args.action == "export":
            async with store.session() as tx:
                data = await export_customer(tx, args.customer_id)
            text = json.dumps(data, ensure_ascii=False, indent=2)
            if args.output:
                Path(args.output).write_text(text + "\n", encoding="utf-8")  # noqa: ASYNC240 - a CLI, one file
                print(f"customer {args.customer_id} exported to {args.output}", file=out)
            else:
                print(text, file=out)
            return 0
        from bot.app import _open_state  # the configured state store: Redis state must go too

        state = await _open_state(settings)
        try:
            async with store.session() as tx:
                erased = await erase_customer(tx, args.customer_id, actor=args.actor, state=state)
        finally:
            await state.close()
        print(
            f"customer {erased.customer_id} erased: {erased.messages} messages, {erased.tickets} tickets anonymised, "
            f"{erased.identities} identities and {erased.orders} order links removed",
            file=out,
        )
        if settings.retention.vacuum_after_erase and await vacuum_erased(store):
            print("VACUUM done: no old row versions with the erased text are left", file=out)
        return 0
    finally:
        await store.close()
