"""Fixtures for the HTTP surface: the real app over real HTTP.

- ``web_classifier`` (session) — the real :class:`BuiltinClassifier` of ``tests/conftest.py``,
  trained once per session into ``web_model_path`` and shared by every app.
- ``web_environ`` — the ``DESKBOT_*`` environment of a test: a fresh SQLite file, the
  session's model, the example shop (absolute paths, so any working directory works).
- ``open_app`` — ``async with open_app(DESKBOT_X="...") as app:`` a built ``App`` with the
  schema created; extra keyword arguments are more environment overrides.
- ``deskbot`` / ``client`` — the default ``App`` and an ``httpx.AsyncClient`` talking to its
  FastAPI app through ``httpx.ASGITransport`` (real HTTP semantics, no socket).
- ``live_server`` (session) — ``bot.web.app.serve`` in a subprocess: real uvicorn on
  127.0.0.1 and a free port; yields its base URL.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest

from bot.app import App, build_app
from bot.config import load_settings
from bot.web.app import create_web_app
from intents.base import IntentClassifier
from storage.models import Message

REPO = Path(__file__).resolve().parents[2]
SESSION_SECRET = "test-session-secret-not-for-production"

OpenApp = Callable[..., AbstractAsyncContextManager[App]]


def deskbot_environ(db_path: Path, model_path: Path, **overrides: str) -> dict[str, str]:
    environ = {
        # No config file: the tests' settings are exactly these (and the defaults).
        "DESKBOT_CONFIG": str(db_path.parent / "no-config.yaml"),
        "DESKBOT_STORAGE__URL": f"sqlite+aiosqlite:///{db_path}",
        "DESKBOT_CLASSIFIER__MODEL_PATH": str(model_path),
        "DESKBOT_CLASSIFIER__DATA_DIR": str(REPO / "intents" / "data"),
        "DESKBOT_SHOP__CATALOG": str(REPO / "examples" / "shop" / "catalog.yml"),
        "DESKBOT_SHOP__FAQ": str(REPO / "examples" / "shop" / "faq.yml"),
        "DESKBOT_SHOP__ORDERS_CSV": str(REPO / "examples" / "shop" / "orders.csv"),
        "DESKBOT_SECRETS__SESSION_SECRET": SESSION_SECRET,
        "DESKBOT_LOGGING__LEVEL": "WARNING",
    }
    environ.update(overrides)
    return environ


@pytest.fixture(scope="session")
def web_model_path(trained_model_path: Path) -> Path:
    """The session's trained model (see ``tests/conftest.py``): trained once for all suites."""
    return trained_model_path


@pytest.fixture(scope="session")
def web_classifier(trained_classifier: IntentClassifier) -> IntentClassifier:
    return trained_classifier


@pytest.fixture
def web_environ(tmp_path: Path, web_model_path: Path, web_classifier: IntentClassifier) -> dict[str, str]:
    return deskbot_environ(tmp_path / "deskbot.db", web_model_path)


@pytest.fixture
def open_app(web_environ: dict[str, str], web_classifier: IntentClassifier) -> OpenApp:
    @asynccontextmanager
    async def opener(**overrides: str) -> AsyncIterator[App]:
        settings = load_settings(path=None, environ={**web_environ, **overrides})
        async with build_app(settings, classifier=web_classifier, create_schema=True) as app:
            yield app

    return opener


@pytest.fixture
async def deskbot(open_app: OpenApp) -> AsyncIterator[App]:
    async with open_app() as app:
        yield app


def asgi_client(app: App) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_web_app(app))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30)


@pytest.fixture
async def client(deskbot: App) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(deskbot) as http:
        yield http


# -- helpers for assertions ---------------------------------------------------------------
async def messages_of(app: App, channel: str, external_id: str) -> list[Message]:
    """Every stored message of the customer behind a channel identity (oldest first)."""
    async with app.tickets.session() as tx:
        customer = await tx.find_customer(channel, external_id)
        if customer is None:
            return []
        return list(await tx.conversation(customer.id, limit=10_000))


# -- the real server ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


SERVE = (
    "import asyncio\n"
    "from bot.config import load_settings\n"
    "from bot.web.app import serve\n"
    "asyncio.run(serve(load_settings(path=None), create_schema=True))\n"
)


class LiveServer:
    """``bot.web.app.serve`` in a child process, on 127.0.0.1."""

    def __init__(self, workdir: Path, environ: dict[str, str]) -> None:
        self.workdir = workdir
        self.environ = environ
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        for _attempt in range(3):  # a free port can be taken between probe and bind
            self.port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.startswith("DESKBOT_")}
            env.update(self.environ)
            env.update({"DESKBOT_WEB__HOST": "127.0.0.1", "DESKBOT_WEB__PORT": str(self.port)})
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
            with self.log_path.open("ab") as log:
                self.process = subprocess.Popen(
                    [sys.executable, "-c", SERVE], cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT
                )
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                try:
                    if httpx.get(f"{self.url}/healthz", timeout=1, trust_env=False).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            self.stop()
        raise RuntimeError(f"the server did not start; its log:\n{self.log_path.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()  # uvicorn shuts down gracefully on SIGTERM
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self.process = None


@pytest.fixture(scope="session")
def live_server(
    tmp_path_factory: pytest.TempPathFactory, web_model_path: Path, web_classifier: IntentClassifier
) -> Iterator[LiveServer]:
    """One real server for the session; tests use senders of their own."""
    workdir = tmp_path_factory.mktemp("live-server")
    server = LiveServer(workdir, deskbot_environ(workdir / "deskbot.db", web_model_path))
    server.start()
    try:
        yield server
    finally:
        server.stop()
