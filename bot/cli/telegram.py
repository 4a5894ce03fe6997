"""``deskbot telegram set-webhook URL`` / ``delete-webhook``: tell Telegram where updates go.

Uses the configured library and API server, the token from ``DESKBOT_SECRETS__TELEGRAM_TOKEN``
and, for ``set-webhook``, the secret Telegram must echo in ``X-Telegram-Bot-Api-Secret-Token``
(``DESKBOT_SECRETS__TELEGRAM_WEBHOOK_SECRET``) — the route refuses calls without it.
"""

from __future__ import annotations

import argparse
from urllib.parse import urlsplit

from bot.channels.telegram.api import ClientOptions
from bot.channels.telegram.client import TelegramClient, open_client
from bot.channels.telegram.intake import ALLOWED_UPDATES
from bot.config import Settings
from common.errors import ConfigError

WEBHOOK_PATH = "/telegram/webhook"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    telegram = sub.add_parser("telegram", help="Telegram webhook registration").add_subparsers(
        dest="action", required=True
    )
    hook = telegram.add_parser("set-webhook", help="have Telegram POST updates to URL (deskbot's /telegram/webhook)")
    hook.add_argument("url", help=f"public https URL of this deskbot's {WEBHOOK_PATH}")
    delete = telegram.add_parser("delete-webhook", help="stop webhook delivery (e.g. to go back to polling)")
    delete.add_argument("--drop-pending", action="store_true", help="also discard updates Telegram still holds")


def check_url(url: str) -> str:
    """Telegram accepts only https; plain http is allowed for a local test server."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"webhook URL {url!r}: expected https://host{WEBHOOK_PATH}")
    if parts.scheme == "http" and parts.hostname not in LOCAL_HOSTS:
        raise ConfigError(f"webhook URL {url!r}: Telegram only delivers to https URLs")
    if not parts.path.endswith(WEBHOOK_PATH):
        raise ConfigError(f"webhook URL {url!r}: deskbot receives updates at {WEBHOOK_PATH}")
    return url


def _client(settings: Settings) -> TelegramClient:
    token = settings.secrets.get("telegram_token")
    if token is None:
        raise ConfigError("secrets.telegram_token: set DESKBOT_SECRETS__TELEGRAM_TOKEN")
    config = settings.channels.telegram
    options = ClientOptions(token.get_secret_value(), config.api_base, config.request_timeout_seconds)
    return open_client(config.library, options)


async def run(settings: Settings, args: argparse.Namespace) -> int:
    url, secret = "", ""
    if args.action == "set-webhook":
        url = check_url(args.url)
        configured = settings.secrets.get("telegram_webhook_secret")
        if configured is None:
            raise ConfigError("secrets.telegram_webhook_secret: set DESKBOT_SECRETS__TELEGRAM_WEBHOOK_SECRET")
        secret = configured.get_secret_value()
    client = _client(settings)
    try:
        if args.action == "set-webhook":
            await client.api.set_webhook(url, secret_token=secret, allowed_updates=ALLOWED_UPDATES)
            print(f"Telegram now delivers updates to {url}; set channels.telegram.mode: webhook")
        else:
            await client.api.delete_webhook(drop_pending_updates=args.drop_pending)
            print("webhook deleted; polling can be used again")
    finally:
        await client.api.close()
    return 0
