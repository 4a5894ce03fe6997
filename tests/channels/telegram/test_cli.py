"""``deskbot telegram set-webhook`` / ``delete-webhook`` against the fake Bot API, with both libraries."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bot.cli import telegram as telegram_cli
from bot.cli.main import _parser
from bot.config import load_settings
from common.errors import ConfigError
from tests.fakes.telegram_server import TOKEN, FakeTelegram

ROOT = Path(__file__).resolve().parents[3]


def _settings(fake: FakeTelegram, library: str, **secrets: str):  # type: ignore[no-untyped-def]
    env = {
        "DESKBOT_CHANNELS__TELEGRAM__LIBRARY": library,
        "DESKBOT_CHANNELS__TELEGRAM__API_BASE": fake.base,
        "DESKBOT_SECRETS__TELEGRAM_TOKEN": TOKEN,
    } | {f"DESKBOT_SECRETS__{k.upper()}": v for k, v in secrets.items()}
    return load_settings(ROOT / "config.yaml", environ=env)


@pytest.mark.parametrize("library", ["aiogram", "python-telegram-bot"])
async def test_set_and_delete_webhook(fake_telegram: FakeTelegram, library: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    settings = _settings(fake_telegram, library, telegram_webhook_secret="s3cret-Value_1")
    url = "https://bot.example.com/telegram/webhook"
    args = _parser().parse_args(["telegram", "set-webhook", url])
    assert await telegram_cli.run(settings, args) == 0
    assert fake_telegram.webhook_url == url and fake_telegram.webhook_secret == "s3cret-Value_1"
    call = fake_telegram.calls_of("setWebhook")[-1]
    assert call.params["allowed_updates"] == ["message", "edited_message", "callback_query", "my_chat_member"]
    assert "webhook" in capsys.readouterr().out

    args = _parser().parse_args(["telegram", "delete-webhook", "--drop-pending"])
    assert await telegram_cli.run(settings, args) == 0
    assert fake_telegram.webhook_url == ""
    assert str(fake_telegram.calls_of("deleteWebhook")[-1].params["drop_pending_updates"]).lower() == "true"


async def test_set_webhook_needs_the_secret(fake_telegram: FakeTelegram) -> None:
    settings = _settings(fake_telegram, "aiogram")
    args = argparse.Namespace(action="set-webhook", url="https://bot.example.com/telegram/webhook")
    with pytest.raises(ConfigError, match="telegram_webhook_secret"):
        await telegram_cli.run(settings, args)
    assert fake_telegram.calls_of("setWebhook") == []


@pytest.mark.parametrize(
    "url",
    ["http://bot.example.com/telegram/webhook", "https://bot.example.com/other", "ftp://x/telegram/webhook", "nope"],
)
def test_webhook_url_is_checked(url: str) -> None:
    with pytest.raises(ConfigError):
        telegram_cli.check_url(url)


def test_local_http_is_allowed_for_a_test_server() -> None:
    assert telegram_cli.check_url("http://127.0.0.1:8080/telegram/webhook")


def test_config_refuses_an_enabled_channel_without_token(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="TELEGRAM_TOKEN"):
        load_settings(ROOT / "config.yaml", environ={"DESKBOT_CHANNELS__TELEGRAM__ENABLED": "true"})
    with pytest.raises(ConfigError, match="api_base"):
        load_settings(ROOT / "config.yaml", environ={"DESKBOT_CHANNELS__TELEGRAM__API_BASE": "https://x/bot"})
    webhook = load_settings(ROOT / "config.yaml", environ={
        "DESKBOT_SECRETS__TELEGRAM_TOKEN": "123:abc", "DESKBOT_CHANNELS__TELEGRAM__ENABLED": "true",
        "DESKBOT_CHANNELS__TELEGRAM__MODE": "webhook"})
    with pytest.raises(ConfigError, match="TELEGRAM_WEBHOOK_SECRET"):  # needed to serve, not to load
        webhook.check_serving()
    with pytest.raises(ConfigError, match="must come from the environment"):
        (tmp_path / "c.yaml").write_text("secrets:\n  telegram_token: '1:abc'\n")
        load_settings(tmp_path / "c.yaml", environ={})
