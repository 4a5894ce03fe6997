"""The ``deskbot`` command: serve, chat, train, test-nlu, migrate, orders, tickets, shop check."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bot.cli import agents as agents_cli
from bot.cli import data as data_cli
from bot.cli import shop_check
from bot.config import Settings, load_settings, masked
from bot.logs import configure_logging
from common.errors import ConfigError, DeskbotError
from storage.models import TicketKind, TicketStatus


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deskbot", description="Customer-service chat and ticketing bot.")
    parser.add_argument("--config", help="configuration file (default: config.yaml or $DESKBOT_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the web chat, REST channel and API on web.host:web.port")
    serve.add_argument("--workers", type=int, default=0, metavar="N",
                       help="intake.queue redis: also start N `deskbot worker` processes (stopped with the front)")
    serve.add_argument("--worker-metrics-port", type=_port, default=None, metavar="P",
                       help="with --workers: the i-th worker serves GET /metrics on P + i")
    worker = sub.add_parser("worker", help="intake.queue redis: run the turns the web fronts queued")
    worker.add_argument("--metrics-port", type=_port, default=None, metavar="P",
                        help="serve this worker's GET /metrics on web.host:P (Prometheus)")
    sub.add_parser("chat", help="talk to the bot in this terminal")
    sub.add_parser("migrate", help="bring the database schema up to date")
    train = sub.add_parser("train", help="(re)train the intent classifier")
    train.add_argument("--if-changed", action="store_true", help="only when data or config changed")
    nlu = sub.add_parser("test-nlu", help="evaluate the classifier")
    nlu.add_argument("--train", help="training data (Rasa YAML file/folder or CSV text,intent)")
    nlu.add_argument("--test", help="test data; default: a held-out 20%% of the training data")
    nlu.add_argument("--val", help="validation data: the out-of-scope threshold is tuned on it")
    nlu.add_argument("--model", choices=["fast", "accurate"], help="override classifier.model")
    nlu.add_argument(
        "--chinese-encoder",
        choices=["none", "multilingual-e5-small", "m3e-small"],
        help="override classifier.chinese_encoder (with the accurate model; m3e-small: non-commercial license)",
    )
    nlu.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    sub.add_parser("config", help="validate and print the configuration (secrets masked)")
    actions = sub.add_parser("rasa-actions", help="serve deskbot's ticket operations as a Rasa action server")
    actions.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    actions.add_argument("--port", type=_port, default=5055, help="port (default 5055, like `rasa run actions`)")

    orders = sub.add_parser("orders", help="shop orders").add_subparsers(dest="action", required=True)
    imp = orders.add_parser("import", help="import orders from CSV")
    imp.add_argument("file")
    imp.add_argument(
        "--as-of",
        type=_as_of,
        metavar="YYYY-MM-DD",
        help="demo/test data: the day the file's dates were written for; every date moves by (today - this day)",
    )

    tickets = sub.add_parser("tickets", help="work on tickets from the terminal").add_subparsers(
        dest="action", required=True
    )
    ls = tickets.add_parser("list")
    ls.add_argument("--status", choices=[s.value for s in TicketStatus])
    ls.add_argument("--kind", choices=[k.value for k in TicketKind])
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true")
    show = tickets.add_parser("show")
    show.add_argument("number")
    show.add_argument("--json", action="store_true")
    for name in ("reply", "resolve", "hand-back", "claim"):
        action = tickets.add_parser(name)
        action.add_argument("number")
        if name == "reply":
            action.add_argument("text")
        action.add_argument("--agent", help="agent e-mail (default: the terminal agent)")
    agents_cli.register(sub)
    data_cli.register(sub)
    shop_check.register(sub)
    from bot.cli.telegram import add_commands as add_telegram_commands

    add_telegram_commands(sub)
    return parser


def _port(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a port number (1-65535)")
    return int(raw)


def _as_of(raw: str) -> date:
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a date: give a day as YYYY-MM-DD, e.g. 2024-03-01") from None


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


async def _migrate(settings: Settings) -> None:
    from storage.migrate import upgrade

    await upgrade(settings.storage.url)


async def _import_orders(settings: Settings, file: str, as_of: date | None) -> int:
    """Only the ticket store: importing orders needs no classifier."""
    from storage.orders_csv import date_shift, import_orders
    from storage.tickets import SqlTicketStore

    shift = timedelta(0) if as_of is None else date_shift(as_of)
    store = SqlTicketStore.from_url(settings.storage.url)
    try:
        added, updated = await import_orders(store, Path(file), shift=shift)
    finally:
        await store.close()
    moved = "" if as_of is None else f", dates moved by {shift.days:+d} days (as of {as_of} -> {as_of + shift} UTC)"
    print(f"imported {added} new and {updated} updated orders from {file}{moved}")
    return 0


async def _chat(settings: Settings) -> int:
    from bot.app import build_app
    from bot.channels.console import ConsoleChannel

    async with build_app(settings) as app:
        await ConsoleChannel(app.pipeline, app.tickets).run()
    return 0


async def _tickets(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import open_desk
    from bot.cli.views import event_dict, message_dict, ticket_dict

    async with open_desk(settings) as app:
        if args.action == "list":
            async with app.tickets.session() as tx:
                rows = await tx.list_tickets(
                    status=TicketStatus(args.status) if args.status else None,
                    kind=TicketKind(args.kind) if args.kind else None,
                    limit=args.limit,
                )
                data = [ticket_dict(t, await tx.identities(t.customer_id)) for t in rows]
            if args.json:
                _print_json(data)
            else:
                for t in data:
                    who = ", ".join(f"{i['channel']}:{i['id']}" for i in t["customer"]["identities"])
                    print(
                        f"{t['number']:>8}  {t['status']:<9} {t['priority']:<7} {t['kind']:<10} {who}  {t['subject']}"
                    )
            return 0
        if args.action == "show":
            async with app.tickets.session() as tx:
                ticket = await tx.ticket_by_number(args.number)
                shown = ticket_dict(ticket, await tx.identities(ticket.customer_id))
                shown["messages"] = [message_dict(m) for m in await tx.ticket_messages(ticket.id)]
                shown["events"] = [event_dict(e) for e in await tx.ticket_events(ticket.id)]
            if args.json:
                _print_json(shown)
            else:
                print(f"{shown['number']} [{shown['status']}/{shown['priority']}] {shown['kind']}: {shown['subject']}")
                for key, value in shown["fields"].items():
                    print(f"  {key}: {value}")
                for m in shown["messages"]:
                    print(f"  {m['created_at'][:19]} {m['author']:>8}: {m['text']}")
            return 0
        if args.action == "reply":
            result = await app.desk.reply(args.number, args.text, args.agent)
        elif args.action == "resolve":
            result = await app.desk.resolve(args.number, args.agent)
        elif args.action == "hand-back":
            result = await app.desk.hand_back(args.number, args.agent)
        else:
            result = await app.desk.claim(args.number, args.agent)
        print(f"{result.ticket_number}: status {result.status}, conversation owner {result.owner}")
        return 0


def _train(settings: Settings, if_changed: bool) -> int:
    from intents.classifier import load_or_train, metadata_path

    if not if_changed:
        metadata_path(settings.classifier.model_path).unlink(missing_ok=True)
    config = settings.classifier
    classifier, retrained = load_or_train(config.data_dir, config.model_path, config)
    state = "trained" if retrained else "up to date"
    print(f"classifier {state}: {len(classifier.intents)} intents, model {settings.classifier.model_path}")
    return 0


def main(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> int:
    """``deskbot``; ``environ`` replaces ``os.environ`` as the source of ``DESKBOT_*`` overrides."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(args.config, environ)
        configure_logging(settings.logging.level, settings.logging.format)
        if args.command == "config":
            _print_json(masked(settings))
            return 0
        if args.command == "migrate":
            asyncio.run(_migrate(settings))
            print("database schema is up to date")
            return 0
        if args.command == "train":
            return _train(settings, args.if_changed)
        if args.command == "test-nlu":
            from intents.evaluate import test_nlu_command

            print(
                test_nlu_command(
                    settings.classifier,
                    args.train,
                    args.test,
                    args.val,
                    args.model,
                    args.json,
                    chinese_encoder=args.chinese_encoder,
                )
            )
            return 0
        if args.command == "serve":
            from bot.web.app import serve

            settings.check_serving()
            if args.workers:
                return _serve_with_workers(settings, args, serve)
            asyncio.run(_serve(settings, serve))
            return 0
        if args.command == "worker":
            from bot.cli import worker as worker_cli

            asyncio.run(worker_cli.run(settings, args.metrics_port))
            return 0
        if args.command == "rasa-actions":
            return _rasa_actions(settings, args.host, args.port)
        if args.command == "orders":
            return asyncio.run(_import_orders(settings, args.file, args.as_of))
        if args.command == "agents":
            asyncio.run(_migrate(settings))
            return asyncio.run(agents_cli.run(settings, args))
        if args.command == "shop":
            return asyncio.run(shop_check.run(settings, args))
        if args.command in data_cli.COMMANDS:
            asyncio.run(_migrate(settings))
            return asyncio.run(data_cli.run(settings, args))
        if args.command == "telegram":
            from bot.cli import telegram as telegram_cli

            return asyncio.run(telegram_cli.run(settings, args))
        if args.command == "chat":
            return asyncio.run(_chat(settings))
        return asyncio.run(_tickets(settings, args))
    except DeskbotError as exc:
        print(f"deskbot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _rasa_actions(settings: Settings, host: str, port: int) -> int:
    try:
        from bot.rasa_actions.server import serve
    except ImportError as exc:
        print(
            f"deskbot: the Rasa action server needs the rasa extra: pip install 'deskbot[rasa]' ({exc})",
            file=sys.stderr,
        )
        return 2
    asyncio.run(_serve(settings, lambda s: serve(s, host, port)))
    return 0


def _serve_with_workers(settings: Settings, args: argparse.Namespace, serve: Any) -> int:
    """The front plus ``--workers`` worker processes, started once the schema is migrated."""
    from bot.worker import worker_processes

    if settings.intake.queue != "redis":
        raise ConfigError("--workers needs intake.queue: redis (DESKBOT_INTAKE__QUEUE=redis)")
    if args.workers < 0:
        raise ConfigError("--workers must be 0 or more")
    asyncio.run(_migrate(settings))
    argv = ["--config", args.config] if args.config else []
    with worker_processes(args.workers, argv, metrics_port=args.worker_metrics_port or 0):
        asyncio.run(serve(settings))
    return 0


async def _serve(settings: Settings, serve: Any) -> None:
    await _migrate(settings)
    await serve(settings)


if __name__ == "__main__":
    sys.exit(main())
