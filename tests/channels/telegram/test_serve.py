"""``deskbot serve`` with Telegram enabled: polling starts with the web app and stops with it."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
import uvicorn

from bot.config import load_settings
from bot.web import app as web_app
from bot.web.app import serve
from intents.classifier import BuiltinClassifier
from tests.fakes.telegram_server import TOKEN, FakeTelegram

ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_serve_polls_telegram_until_stopped(
    fake_telegram: FakeTelegram, tmp_path: Path, trained_classifier: BuiltinClassifier,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    servers: list[uvicorn.Server] = []
    make_server = web_app.uvicorn_server

    def keep(*args: object, **kwargs: object) -> uvicorn.Server:
        servers.append(make_server(*args, **kwargs))  # type: ignore[arg-type]
        return servers[-1]

    monkeypatch.setattr(web_app, "uvicorn_server", keep)
    settings = load_settings(ROOT / "config.yaml", environ={
        "DESKBOT_STORAGE__URL": f"sqlite+aiosqlite:///{tmp_path / 'deskbot.db'}",
        "DESKBOT_WEB__PORT": str(_free_port()),
        "DESKBOT_CHANNELS__TELEGRAM__ENABLED": "true",
        "DESKBOT_CHANNELS__TELEGRAM__API_BASE": fake_telegram.base,
        "DESKBOT_CHANNELS__TELEGRAM__POLLING_TIMEOUT_SECONDS": "2",
        "DESKBOT_SECRETS__TELEGRAM_TOKEN": TOKEN,
    })
    serving = asyncio.create_task(serve(settings, classifier=trained_classifier, create_schema=True))
    await fake_telegram.text(4242, "how much is the hoodie?")
    await fake_telegram.wait_until(lambda: any("49.90" in t for t in fake_telegram.texts(4242)) or serving.done())
    assert not serving.done(), serving.exception()
    assert fake_telegram.calls_of("deleteWebhook") and fake_telegram.calls_of("setMyCommands")
    servers[0].should_exit = True  # what SIGTERM does
    await serving
    polls = len(fake_telegram.calls_of("getUpdates"))
    await asyncio.sleep(0)  # nothing polls any more once serve() has returned
    assert len(fake_telegram.calls_of("getUpdates")) == polls
