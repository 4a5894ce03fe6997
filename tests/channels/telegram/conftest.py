"""Fixtures for the Telegram channel: the fake Bot API, and deskbot running against it.

- ``fake_telegram`` — a started :class:`~tests.fakes.telegram_server.FakeTelegram`.
- ``telegram_bot`` — the whole deskbot ``App`` with its Telegram channel started against the
  fake, parametrized over library (aiogram, python-telegram-bot) × mode (polling, webhook);
  in webhook mode deskbot's web app is served by uvicorn on 127.0.0.1 and the fake POSTs
  the updates to ``/telegram/webhook``. Storage is SQLite + memory, or PostgreSQL + Redis
  for the ``postgres`` variants (``telegram_backend``).
- ``telegram_env`` — extra ``DESKBOT_*`` variables; override it in a test module (e.g. to set
  ``DESKBOT_CHANNELS__TELEGRAM__AGENTS_CHAT_ID``).

``TelegramBot`` drives a customer: ``await bot.say(user, "hi")`` pushes an update and waits
until the channel has finished with it (not a timed assertion: the wait ends when the
update is handled, the generous limit only stops a broken test).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from bot.app import App, build_app
from bot.channels.telegram.channel import TelegramChannel
from bot.channels.telegram.delivery import RetryPolicy, Sender
from bot.config import load_settings
from bot.web.app import create_web_app
from intents.classifier import BuiltinClassifier
from tests.conftest import _delete_keys, empty_tables, storage_environ
from tests.fakes.telegram_server import TOKEN, FakeTelegram

ROOT = Path(__file__).resolve().parents[3]
WEBHOOK_SECRET = "test-webhook-secret_1"
VARIANTS = [
    ("aiogram", "polling", "sqlite"),
    ("aiogram", "webhook", "sqlite"),
    ("python-telegram-bot", "polling", "sqlite"),
    ("python-telegram-bot", "webhook", "sqlite"),
    ("aiogram", "polling", "postgres"),
    ("python-telegram-bot", "webhook", "postgres"),
]


@pytest.fixture
async def fake_telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def telegram_env() -> dict[str, str]:
    return {}


@dataclass
class TelegramBot:
    app: App
    channel: TelegramChannel
    fake: FakeTelegram
    library: str
    mode: str
    web_base: str | None = None  # webhook mode: deskbot's web app
    waits: list[float] = field(default_factory=list)  # what the retry policy slept
    handled: Counter[int] = field(default_factory=Counter)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def deliver(self, push: Awaitable[int], times: int = 1) -> int:
        """Push an update and wait until the channel has handled it ``times`` times and sent
        its replies (those the sending limits paced are sent after the update was handled)."""
        update_id = await push
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.handled[update_id] >= times), 30)
        await asyncio.wait_for(self.channel.outbox.idle(), 30)
        return update_id

    async def say(self, user: int, text: str, **kwargs: Any) -> list[str]:
        """The customer writes; returns what the bot sent them in answer."""
        before = len(self.fake.texts(user))
        await self.deliver(self.fake.text(user, text, **kwargs))
        return self.fake.texts(user)[before:]

    async def do(self, user: int, push: Callable[[], Awaitable[int]]) -> list[str]:
        before = len(self.fake.texts(user))
        await self.deliver(push())
        return self.fake.texts(user)[before:]

    async def press(self, user: int, title_part: str) -> list[str]:
        """Tap the button whose label contains ``title_part`` on the bot's latest keyboard."""
        for message in reversed(self.fake.sent(user)):
            markup = message.get("reply_markup")
            if not markup:
                continue
            for row in markup["inline_keyboard"]:
                for button in row:
                    if title_part.lower() in button["text"].lower():
                        data = button["callback_data"]
                        return await self.do(user, lambda: self.fake.press(user, data,
                                                                           message_id=message["message_id"]))
            break
        raise AssertionError(f"no button like {title_part!r} in the latest keyboard")

    async def _track(self, update_id: int) -> None:
        async with self._changed:
            self.handled[update_id] += 1
            self._changed.notify_all()


async def _serve(app: App) -> tuple[uvicorn.Server, asyncio.Task[None], str]:
    config = uvicorn.Config(create_web_app(app), host="127.0.0.1", port=0, lifespan="off", log_config=None,
                            access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, task, f"http://127.0.0.1:{port}"


@pytest.fixture(params=VARIANTS, ids=["-".join(v) for v in VARIANTS])
async def telegram_bot(
    request: pytest.FixtureRequest,
    fake_telegram: FakeTelegram,
    tmp_path: Path,
    trained_classifier: BuiltinClassifier,
    redis_prefix: str,
    telegram_env: dict[str, str],
) -> AsyncIterator[TelegramBot]:
    library, mode, backend = request.param
    env = {
        "DESKBOT_CLASSIFIER__MODEL_PATH": str(tmp_path / "unused.npz"),
        "DESKBOT_CHANNELS__TELEGRAM__ENABLED": "true",
        "DESKBOT_CHANNELS__TELEGRAM__LIBRARY": library,
        "DESKBOT_CHANNELS__TELEGRAM__MODE": mode,
        "DESKBOT_CHANNELS__TELEGRAM__API_BASE": fake_telegram.base,
        "DESKBOT_CHANNELS__TELEGRAM__POLLING_TIMEOUT_SECONDS": "5",
        "DESKBOT_CHANNELS__TELEGRAM__REQUEST_TIMEOUT_SECONDS": "5",
        "DESKBOT_SECRETS__TELEGRAM_TOKEN": TOKEN,
        "DESKBOT_SECRETS__TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        # The sending limits stay in the path, at a pace that keeps conversations quick
        # (test_send_limits.py checks them at theirs).
        "DESKBOT_CHANNELS__TELEGRAM__LIMITS__BOT__MESSAGES": "1000",
        "DESKBOT_CHANNELS__TELEGRAM__LIMITS__PRIVATE_CHAT__SECONDS": "0.02",
        "DESKBOT_CHANNELS__TELEGRAM__LIMITS__GROUP_CHAT__SECONDS": "0.4",
    }
    sqlite = backend == "sqlite"
    env |= storage_environ(request, tmp_path, redis_prefix, server=not sqlite)
    env |= telegram_env
    settings = load_settings(ROOT / "config.yaml", environ=env)
    async with build_app(settings, classifier=trained_classifier, create_schema=sqlite) as app:
        if not sqlite:
            await empty_tables(app.tickets.engine)  # type: ignore[attr-defined]
        channel = app.telegram
        assert channel is not None
        bot = TelegramBot(app, channel, fake_telegram, library, mode)

        async def no_wait(seconds: float) -> None:
            bot.waits.append(seconds)  # the policy's waits are checked, not slept

        channel.sender = Sender(channel.api, RetryPolicy(), sleep=no_wait)
        process = channel.process

        async def tracked(raw: dict[str, Any]) -> None:
            try:
                await process(raw)
            finally:
                await bot._track(int(raw.get("update_id", 0)))

        channel.process = tracked  # type: ignore[method-assign]
        server: uvicorn.Server | None = None
        serving: asyncio.Task[None] | None = None
        if mode == "webhook":
            server, serving, bot.web_base = await _serve(app)
            await channel.start(polling=False)
            await channel.api.set_webhook(f"{bot.web_base}/telegram/webhook", secret_token=WEBHOOK_SECRET)
        else:
            await channel.start(polling=True)
        try:
            yield bot
        finally:
            await channel.stop()
            if server is not None and serving is not None:
                server.should_exit = True
                with contextlib.suppress(asyncio.CancelledError):
                    await serving
    if not sqlite:
        await _delete_keys(settings.state.redis_url, redis_prefix)
