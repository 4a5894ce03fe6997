"""The fault suite's harness: the real ``deskbot serve`` as a child process, and what it stored.

``DeskbotProcess`` starts ``python -m bot.cli.main serve`` with ``DESKBOT_*`` overrides (the
fake Bot API as ``channels.telegram.api_base``, the session's trained model, the test's
own database), waits until ``/healthz`` answers, and stops it with a real signal
(``SIGKILL`` or ``SIGTERM``) — nothing of the bot survives in the test process, only the
fake Telegram server (its queue of updates and its offset) and the database.

``Ledger`` reads the database the way an auditor would: per chat, the customer's inbound
rows and the bot's outbound rows with their status. ``settled`` waits until there is
nothing left to do: no update the fake still holds for the bot, no API call being
answered, no outbound row QUEUED or SENDING.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.fakes.telegram_server import TOKEN, FakeTelegram

ROOT = Path(__file__).resolve().parents[2]
# The code under test: this checkout, or another one (FAULTS_CODE_ROOT=/path, e.g. an
# exported commit, to measure it while this tree is being edited).
CODE_ROOT = Path(os.environ.get("FAULTS_CODE_ROOT") or ROOT).resolve()
WEBHOOK_SECRET = "faults-webhook-secret_1"
# A case of the full matrix only (``pytest -m faults tests/faults``), not of the default suite.
FULL = pytest.mark.faults(full=True)
PATIENCE = 120.0  # seconds; a generous bound that only stops a hung run, never a speed requirement


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Backend:
    """Where the bot keeps its data: a SQLite file + memory state, or PostgreSQL + Redis."""

    name: str  # sqlite | postgres
    storage_url: str
    redis_url: str | None = None
    redis_prefix: str | None = None

    def environ(self) -> dict[str, str]:
        env = {"DESKBOT_STORAGE__URL": self.storage_url}
        if self.redis_url is not None and self.redis_prefix is not None:
            env |= {
                "DESKBOT_STATE__BACKEND": "redis",
                "DESKBOT_STATE__REDIS_URL": self.redis_url,
                "DESKBOT_STATE__KEY_PREFIX": self.redis_prefix,
                "DESKBOT_EVENTS__BACKEND": "redis",
                "DESKBOT_EVENTS__REDIS_URL": self.redis_url,
            }
        return env


@dataclass
class DeskbotProcess:
    """``deskbot serve`` against the fake Telegram server; restartable on the same data."""

    fake: FakeTelegram
    backend: Backend
    model_path: Path
    log_dir: Path
    library: str = "aiogram"
    mode: str = "polling"
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    exits: list[int] = field(default_factory=list)

    @property
    def web_base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DESKBOT_")}
        env |= {
            "DESKBOT_CLASSIFIER__MODEL_PATH": str(self.model_path),
            "DESKBOT_WEB__PORT": str(self.port),
            "DESKBOT_CHANNELS__TELEGRAM__ENABLED": "true",
            "DESKBOT_CHANNELS__TELEGRAM__LIBRARY": self.library,
            "DESKBOT_CHANNELS__TELEGRAM__MODE": self.mode,
            "DESKBOT_CHANNELS__TELEGRAM__API_BASE": self.fake.base,
            "DESKBOT_CHANNELS__TELEGRAM__POLLING_TIMEOUT_SECONDS": "1",
            "DESKBOT_CHANNELS__TELEGRAM__REQUEST_TIMEOUT_SECONDS": "2",
            "DESKBOT_CHANNELS__TELEGRAM__RELAY_INTERVAL_SECONDS": "0.5",
            "DESKBOT_SECRETS__TELEGRAM_TOKEN": TOKEN,
            "DESKBOT_SECRETS__TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "DESKBOT_RETENTION__INTERVAL_MINUTES": "0",
            "DESKBOT_LOGGING__FORMAT": "json",
        }
        env |= self.backend.environ()
        env |= self.extra_env
        return env

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def start(self) -> None:
        """Start the bot and wait until it serves HTTP (Telegram is started before that)."""
        assert not self.alive
        self.starts += 1
        if self.mode == "webhook":
            # What `deskbot telegram set-webhook` tells Telegram; the fake keeps retrying a
            # delivery until the bot answers it, as Telegram does.
            self.fake.webhook_url = f"{self.web_base}/telegram/webhook"
            self.fake.webhook_secret = WEBHOOK_SECRET
            self.fake.webhook_max_attempts = None
        log = (self.log_dir / f"deskbot-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(  # noqa: S603, ASYNC220 - the test's own interpreter, fixed arguments
            [sys.executable, "-m", "bot.cli.main", "--config", str(CODE_ROOT / "config.yaml"), "serve"],
            cwd=CODE_ROOT, env=self.environ(), stdout=log, stderr=subprocess.STDOUT,
        )
        log.close()
        async with httpx.AsyncClient(timeout=2) as client:
            async with asyncio.timeout(PATIENCE):
                while True:
                    if not self.alive:
                        raise AssertionError(f"deskbot serve exited at start:\n{self.log_tail()}")
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(f"{self.web_base}/healthz")).status_code == 200:
                            return
                    await asyncio.sleep(0.1)

    def send_signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` now (from a fake's call hook too: synchronous, exactly once per start)."""
        if self.alive:
            os.kill(self.pid, sig)

    async def wait_exit(self) -> int:
        assert self.process is not None
        async with asyncio.timeout(PATIENCE):
            while self.process.poll() is None:  # noqa: ASYNC110 - a child process, not a task
                await asyncio.sleep(0.05)
        code = self.process.returncode
        self.exits.append(code)
        return code

    async def stop(self) -> None:
        """End the run: SIGTERM, then SIGKILL if it does not go."""
        if not self.alive:
            return
        self.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(15):
                await self.wait_exit()
        except TimeoutError:
            self.send_signal(signal.SIGKILL)
            await self.wait_exit()

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("deskbot-*.log")))

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


@dataclass
class ChatLedger:
    inbound: int = 0
    outbound: Counter[str] = field(default_factory=Counter)  # status -> rows (bot and agent replies)
    agent_rows: int = 0


class Ledger:
    """The bot's database as seen from outside: rows per Telegram chat."""

    def __init__(self, url: str) -> None:
        self.engine: AsyncEngine = create_async_engine(url, poolclass=pool.NullPool)

    async def close(self) -> None:
        await self.engine.dispose()

    async def chats(self) -> dict[str, ChatLedger]:
        query = text(
            "SELECT chat_id, direction, author, status, count(*) FROM messages"
            " WHERE channel = 'telegram' GROUP BY chat_id, direction, author, status"
        )
        found: dict[str, ChatLedger] = defaultdict(ChatLedger)
        async with self.engine.connect() as conn:
            for chat_id, direction, author, status, count in (await conn.execute(query)).all():
                ledger = found[str(chat_id)]
                if direction == "in":
                    ledger.inbound += int(count)
                    continue
                ledger.outbound[str(status)] += int(count)
                if author == "agent":
                    ledger.agent_rows += int(count)
        return dict(found)

    async def outbound(self, chat_ids: list[str]) -> list[tuple[str, str, int]]:
        """(chat, status, attempts) of every outbound row to these chats."""
        query = text(
            "SELECT chat_id, status, attempts FROM messages WHERE channel = 'telegram' AND direction = 'out'"
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [(str(c), str(s), int(a or 0)) for c, s, a in rows if str(c) in chat_ids]

    async def unfinished(self) -> int:
        """Outbound Telegram rows still to be sent, or being sent."""
        query = text(
            "SELECT count(*) FROM messages WHERE channel = 'telegram' AND direction = 'out'"
            " AND status IN ('queued', 'sending')"
        )
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def settled(self, fake: FakeTelegram, bot: DeskbotProcess) -> None:
        """Wait until nothing is left to do: every update confirmed (or answered), no API call
        being answered, no outbound row queued or sending — twice in a row, a beat apart."""
        calm = 0
        async with asyncio.timeout(PATIENCE):
            while calm < 2:
                if not bot.alive:
                    raise AssertionError(f"deskbot serve died:\n{bot.log_tail()}")
                quiet = not fake.pending_updates() and fake.in_flight == 0 and await self.unfinished() == 0
                calm = calm + 1 if quiet else 0
                await asyncio.sleep(0.3)
