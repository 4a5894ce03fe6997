"""Updates per second through each Telegram adapter, and its overhead over the bare pipeline.

For every library (aiogram, python-telegram-bot) and intake mode (polling, webhook), the
same N customer updates (a mix of greetings, pre-sale questions, status checks, handoffs,
button taps) are queued on the fake Bot API server at once; the clock runs until the
channel has handled the last one (parsed, pipeline turn, replies sent over HTTP). The
baseline is the bare pipeline on the same messages, measured in the same process on the
same kind of fresh SQLite database: ``Pipeline.handle`` called directly, one after another,
replies not sent anywhere. The fake server runs on its own event loop in a thread so its
work is not counted as the adapter's (it still shares the GIL: the ratio is an upper bound).

Run: ``.venv/bin/python bench/telegram.py [--updates N] [--customers N]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
# This file's folder comes first on sys.path and its name would shadow the ``telegram`` package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

import uvicorn  # noqa: E402

from bot.app import build_app, build_classifier  # noqa: E402
from bot.channels.telegram.updates import MediaPolicy, parse_update  # noqa: E402
from bot.config import Settings, load_settings  # noqa: E402
from bot.web.app import create_web_app  # noqa: E402
from intents.base import IntentClassifier  # noqa: E402
from tests.fakes.telegram_server import TOKEN, FakeTelegram  # noqa: E402

T = TypeVar("T")
SECRET = "bench-secret"
TEXTS = [
    "/start", "how much is the hoodie?", "do you have it in L?", "how long does shipping take to france",
    "can I pay with paypal?", "/status", "what's your return policy?", "thanks, bye", "I want to talk to a human",
    "it's about an invoice",
]


class FakeThread:
    """The fake Bot API on its own loop in a thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.fake = FakeTelegram()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def updates(fake: FakeTelegram, count: int, customers: int, first_id: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        user = 10_000 + i % customers
        text = TEXTS[(i // customers) % len(TEXTS)]
        out.append({"update_id": first_id + i, "message": fake.message(user, text)})
    return out


def settings_for(tmp: Path, name: str, base: str, library: str, mode: str) -> Settings:
    return load_settings(
        ROOT / "config.yaml",
        environ={
            "DESKBOT_STORAGE__URL": f"sqlite+aiosqlite:///{tmp / (name + '.db')}",
            "DESKBOT_CLASSIFIER__MODEL_PATH": str(tmp / "model.npz"),
            "DESKBOT_LOGGING__LEVEL": "WARNING",
            "DESKBOT_CHANNELS__TELEGRAM__ENABLED": "true" if library else "false",
            "DESKBOT_CHANNELS__TELEGRAM__LIBRARY": library or "aiogram",
            "DESKBOT_CHANNELS__TELEGRAM__MODE": mode or "polling",
            "DESKBOT_CHANNELS__TELEGRAM__API_BASE": base,
            "DESKBOT_SECRETS__TELEGRAM_TOKEN": TOKEN,
            "DESKBOT_SECRETS__TELEGRAM_WEBHOOK_SECRET": SECRET,
            # The adapter's own cost is measured, not Telegram's flood limits (1 reply/s per chat,
            # 30/s per bot), which would set the pace: bench/send_limits.py measures the limiter.
            "DESKBOT_CHANNELS__TELEGRAM__LIMITS__ENABLED": "false",
        },
    )


async def bare_pipeline(tmp: Path, batch: list[dict[str, Any]], classifier: IntentClassifier, base: str) -> float:
    """Seconds for the pipeline alone (the updates parsed beforehand, replies not sent)."""
    settings = settings_for(tmp, "bare", base, "", "")
    incoming = [parse_update(u, media=MediaPolicy()).incoming for u in batch]
    async with build_app(settings, classifier=classifier, create_schema=True) as app:
        started = time.perf_counter()
        for msg in incoming:
            assert msg is not None
            await app.pipeline.handle(msg)
        return time.perf_counter() - started


async def through_adapter(
    tmp: Path, fake: FakeThread, batch: list[dict[str, Any]], classifier: IntentClassifier, library: str, mode: str
) -> tuple[float, int]:
    """Seconds until the channel has handled every update; and the replies the fake received."""
    settings = settings_for(tmp, f"{library}-{mode}", fake.fake.base, library, mode)
    async with build_app(settings, classifier=classifier, create_schema=True) as app:
        channel = app.telegram
        assert channel is not None
        done = asyncio.Event()
        handled = 0
        process = channel.process

        async def counted(raw: dict[str, Any]) -> None:
            nonlocal handled
            await process(raw)
            handled += 1
            if handled == len(batch):
                done.set()

        channel.process = counted  # type: ignore[method-assign]
        server = serving = None
        if mode == "webhook":
            config = uvicorn.Config(create_web_app(app), host="127.0.0.1", port=0, lifespan="off", log_config=None,
                                    access_log=False)
            server = uvicorn.Server(config)
            serving = asyncio.create_task(server.serve())
            while not server.started:  # uvicorn offers no event to wait on
                if serving.done():
                    serving.result()
                await asyncio.sleep(0.01)
            port = server.servers[0].sockets[0].getsockname()[1]
            await channel.start(polling=False)
            await channel.api.set_webhook(f"http://127.0.0.1:{port}/telegram/webhook", secret_token=SECRET)
        else:
            await channel.start(polling=True)
        sent_before = len(fake.fake.calls_of("sendMessage"))
        started = time.perf_counter()
        await fake.run(fake.fake.push_batch(batch))
        await asyncio.wait_for(done.wait(), 600)
        elapsed = time.perf_counter() - started
        sent = len(fake.fake.calls_of("sendMessage")) - sent_before
        await channel.stop()
        if mode == "webhook":
            await channel.api.delete_webhook()
        if server is not None and serving is not None:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await serving
        return elapsed, sent


async def main(count: int, customers: int) -> None:
    logging.disable(logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="deskbot-bench-tg-"))
    fake = FakeThread()
    await fake.run(fake.fake.__aenter__())
    try:
        settings = settings_for(tmp, "train", fake.fake.base, "", "")
        classifier = await build_classifier(settings)
        next_id = 1
        python = sys.version.split()[0]
        print(f"{count} updates from {customers} customers, handled in order; SQLite + memory; Python {python}")
        batch = updates(fake.fake, count, customers, next_id)
        bare = await bare_pipeline(tmp, batch, classifier, fake.fake.base)
        print(f"{'bare pipeline (baseline)':<34} {count / bare:8.1f} updates/s")
        for library in ("aiogram", "python-telegram-bot"):
            for mode in ("polling", "webhook"):
                next_id += count
                batch = updates(fake.fake, count, customers, next_id)
                elapsed, sent = await through_adapter(tmp, fake, batch, classifier, library, mode)
                print(f"{library + ' / ' + mode:<34} {count / elapsed:8.1f} updates/s   "
                      f"overhead ×{elapsed / bare:.2f} of the bare pipeline   ({sent} replies sent)")
        await classifier.close()
    finally:
        await fake.run(fake.fake.__aexit__(None, None, None))
        fake.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--updates", type=int, default=500)
    parser.add_argument("--customers", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.updates, args.customers))
