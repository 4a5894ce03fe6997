"""Fixtures shared by the whole suite.

Port fixtures run a test once per implementation (aiogram-style contract tests):

- ``ticket_store``  params ``sqlite``, ``postgres`` — an empty ``SqlTicketStore`` whose
  ``bus`` is an ``InProcessEventBus`` (replace ``store.bus`` to test another bus).
- ``state_store``   params ``memory``, ``redis``    — a ``StateStore`` with a key prefix of
  its own; its Redis keys are deleted afterwards.
- ``event_bus``     params ``memory``, ``redis``    — an ``EventBus`` on a channel of its own.
- ``app``           params ``sqlite+memory``, ``postgres+redis`` — the whole deskbot (``build_app``)
  with the session's trained classifier, on empty stores.
- ``trained_classifier`` / ``trained_model_path`` — the real model, trained once for all
  pytest-xdist workers and kept across runs under ``.cache/`` (``tests/trained_models.py``).

To run a test on some implementations only, parametrize the fixture indirectly::

    @pytest.mark.parametrize("ticket_store", ["sqlite"], indirect=True)
    async def test_x(ticket_store: SqlTicketStore) -> None: ...

Servers: ``DESKBOT_TEST_POSTGRES_URL`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``,
used only to create and drop throwaway ``deskbot_test_*`` databases) and
``DESKBOT_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``). An unreachable server
skips its variants with the reason in the summary; ``DESKBOT_TEST_REQUIRE_SERVERS=1`` (CI)
turns that skip into a failure. Nothing here touches data outside its own database/prefix,
so several runs can share the servers.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis
from sqlalchemy import make_url, pool, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from intents.classifier import BuiltinClassifier
from storage.events import EventBus, InProcessEventBus
from storage.models import Base
from storage.redis_events import RedisEventBus
from storage.redis_state import RedisStateStore
from storage.state import KeyBuilder, MemoryStateStore, StateStore
from storage.tickets import SqlTicketStore

if TYPE_CHECKING:
    from bot.app import App

POSTGRES_URL = os.environ.get("DESKBOT_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("DESKBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REQUIRE_SERVERS = os.environ.get("DESKBOT_TEST_REQUIRE_SERVERS", "") == "1"

T = TypeVar("T")


# -- pytest-xdist ----------------------------------------------------------------------
# `make test` runs the suite on every core (``-n auto --dist loadgroup``): workers take
# tests one at a time, each worker with its own PostgreSQL database (``postgres_database``),
# its own Redis prefixes and its own live server. Two tweaks:
#
# - modules sharing a costly per-process resource run on one worker, which builds it once:
#   the sentence encoders (weights read, int8 ONNX graphs built), a Chromium. Done by the
#   scheduler below, not with ``xdist_group`` marks: pytest 9.2 derives node ids from a field
#   xdist 3.8 does not set, so marks added at collection are silently ignored
#   (pytest-dev/pytest-xdist#1386);
# - tests that each take tens of seconds (real processes killed and restarted, servers
#   stopped, thousands of fuzzed requests) start first, so none is left running alone at the end.
ONE_WORKER = {
    "encoders": (
        "tests/intents/test_embeddings.py",
        "tests/intents/test_onnx_bert.py",
        "tests/intents/test_chinese_encoder.py",
        "tests/knowledge/test_faq_search.py",
        "tests/shops/test_accurate.py",
    ),
    "browser-chat": ("tests/web/test_browser.py",),
    "browser-workspace": ("tests/web/e2e/test_workspace_browser.py",),
}
LONG_FIRST = (
    "tests/faults/",
    "tests/web/test_rest_kill.py",
    "tests/web/test_fuzz.py",
    "tests/web/test_outage.py",
    "tests/web/e2e/test_two_processes_browser.py",
    "tests/web/test_login_flood.py",
    "tests/bot/test_cli_secrets.py",
    "tests/bot/test_agents_cli.py",
    "tests/bot/test_cli.py",
    "tests/bot/test_data_cli.py",
    "tests/bot/test_shop_check.py",
)
_GROUP_OF = {module: group for group, modules in ONE_WORKER.items() for module in modules}


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``--dist loadgroup``: xdist's, plus the modules of :data:`ONE_WORKER` as groups."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling  # type: ignore[import-untyped]

    class OneWorkerGroups(LoadGroupScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            group = _GROUP_OF.get(nodeid.split("::", 1)[0])
            return group if group is not None else super()._split_scope(nodeid)

    return OneWorkerGroups(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On xdist workers, the long tests first (the scheduler hands tests out in this order)."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return
    items.sort(key=lambda item: not item.nodeid.startswith(LONG_FIRST))  # stable: the rest keep their order


# -- helpers -------------------------------------------------------------------------
def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine from a sync (e.g. session-scoped) fixture.

    In a thread of its own, so it neither needs nor disturbs the test's event loop; the
    engines it uses must be disposed inside, since their connections belong to that loop.
    """

    async def main() -> T:
        return await make()

    with ThreadPoolExecutor(1) as executor:
        return executor.submit(asyncio.run, main()).result()


def _server_unavailable(what: str, url: str, exc: BaseException) -> NoReturn:
    shown = make_url(url).render_as_string(hide_password=True)
    reason = f"{what} unreachable at {shown} ({exc.__class__.__name__}: {exc})"
    if REQUIRE_SERVERS:
        pytest.fail(f"{reason}; DESKBOT_TEST_REQUIRE_SERVERS=1 requires it", pytrace=False)
    pytest.skip(f"{reason}; start it or set the URL to run these tests")


def _admin_engine(url: str) -> AsyncEngine:
    return create_async_engine(url, poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")


async def _create_database(admin_url: str) -> str:
    name = f"deskbot_test_{uuid.uuid4().hex[:12]}"
    engine = _admin_engine(admin_url)
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        await engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def _drop_database(admin_url: str, url: str) -> None:
    engine = _admin_engine(admin_url)
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await engine.dispose()


# -- servers ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin URL of a reachable PostgreSQL server (skips or fails otherwise)."""

    async def probe() -> None:
        engine = create_async_engine(POSTGRES_URL, poolclass=pool.NullPool, connect_args={"timeout": 3})
        try:
            async with engine.connect() as conn:
                await conn.exec_driver_sql("SELECT 1")
        finally:
            await engine.dispose()

    try:
        run_async(probe)
    except Exception as exc:  # noqa: BLE001 - any failure to connect means "unavailable"
        _server_unavailable("PostgreSQL", POSTGRES_URL, exc)
    return POSTGRES_URL


@pytest.fixture(scope="session")
def redis_server() -> str:
    """The URL of a reachable Redis server (skips or fails otherwise)."""
    client = SyncRedis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001
        _server_unavailable("Redis", REDIS_URL, exc)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="session")
def postgres_database(postgres_server: str) -> Iterator[str]:
    """A throwaway database with the schema, shared by the session; dropped at the end."""
    url = run_async(lambda: _create_database(postgres_server))
    try:

        async def create_schema() -> None:
            engine = create_async_engine(url, poolclass=pool.NullPool)
            try:
                async with engine.begin() as conn:
                    await conn.run_sync(Base.metadata.create_all)
            finally:
                await engine.dispose()

        run_async(create_schema)
        yield url
    finally:
        run_async(lambda: _drop_database(postgres_server, url))


@pytest.fixture
def empty_postgres_database(postgres_server: str) -> Iterator[str]:
    """A throwaway database without any table (for migrations); dropped after the test."""
    url = run_async(lambda: _create_database(postgres_server))
    try:
        yield url
    finally:
        run_async(lambda: _drop_database(postgres_server, url))


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix (and bus channel prefix) no other test or run uses."""
    return f"deskbot-test:{uuid.uuid4().hex[:12]}"


async def _delete_keys(url: str, prefix: str) -> None:
    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


# -- ports -----------------------------------------------------------------------------
def storage_environ(request: pytest.FixtureRequest, tmp_path: Path, redis_prefix: str, *, server: bool) -> dict[str, str]:
    """``DESKBOT_*`` overrides for the embedded pair (SQLite + in-memory state and bus) or the
    production pair (this session's PostgreSQL database + Redis state and bus under the
    test's own key prefix), so every app-level fixture runs the same two ways."""
    if not server:
        return {"DESKBOT_STORAGE__URL": f"sqlite+aiosqlite:///{tmp_path / 'deskbot.db'}"}
    redis_url = request.getfixturevalue("redis_server")
    return {
        "DESKBOT_STORAGE__URL": request.getfixturevalue("postgres_database"),
        "DESKBOT_STATE__BACKEND": "redis",
        "DESKBOT_STATE__REDIS_URL": redis_url,
        "DESKBOT_STATE__KEY_PREFIX": redis_prefix,
        "DESKBOT_EVENTS__BACKEND": "redis",
        "DESKBOT_EVENTS__REDIS_URL": redis_url,
    }


# Every sequence of the schema back to its start, as TRUNCATE ... RESTART IDENTITY does.
_RESTART_SEQUENCES = """
DO $$
DECLARE s record;
BEGIN
  FOR s IN SELECT schemaname, sequencename FROM pg_sequences WHERE schemaname = current_schema() LOOP
    EXECUTE format('ALTER SEQUENCE %I.%I RESTART', s.schemaname, s.sequencename);
  END LOOP;
END $$
"""


async def stored_messages(url: str) -> tuple[dict[str, list[Any]], dict[int, list[Any]], dict[int, str]]:
    """Inbound rows by delivery key, replies by the inbound id they answer, sender by customer:
    what the exactly-once checks of the kill tests count, read straight from the database."""
    from storage.models import Direction, Identity, Message

    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(select(Message).order_by(Message.id))).all()
            senders = dict((await conn.execute(select(Identity.customer_id, Identity.external_id))).all())
    finally:
        await engine.dispose()
    inbound: dict[str, list[Any]] = {}
    replies: dict[int, list[Any]] = {}
    for row in rows:
        if row.direction == Direction.INBOUND:
            inbound.setdefault(row.delivery_key, []).append(row)
        elif row.reply_to_id is not None:
            replies.setdefault(row.reply_to_id, []).append(row)
    return inbound, replies, senders


async def empty_tables(engine: AsyncEngine) -> None:
    """Empties the session's PostgreSQL tables and restarts their ids (ticket T-1001 again):
    much faster than creating a database per test.

    DELETE, children first, rather than TRUNCATE: a TRUNCATE of the 15 tables takes ~0.1 s
    (new files for every table), the DELETEs of a test's few rows ~0.02 s, and the
    PostgreSQL variants run this before each of several hundred tests.
    """
    async with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            await conn.exec_driver_sql(f'DELETE FROM "{table.name}"')
        await conn.exec_driver_sql(_RESTART_SEQUENCES)


@pytest.fixture(params=["sqlite", "postgres"])
async def ticket_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlTicketStore]:
    """An empty ticket store (ticket ids start at 1, i.e. T-1001) with an in-process bus."""
    if request.param == "sqlite":
        store = SqlTicketStore.from_url(f"sqlite+aiosqlite:///{tmp_path / 'tickets.db'}", bus=InProcessEventBus())
        await store.create_schema()
    else:
        store = SqlTicketStore.from_url(request.getfixturevalue("postgres_database"), bus=InProcessEventBus())
        await empty_tables(store.engine)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture(params=["memory", "redis"])
async def state_store(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[StateStore]:
    keys = KeyBuilder(prefix=redis_prefix)
    if request.param == "memory":
        yield MemoryStateStore(key_builder=keys)
        return
    url: str = request.getfixturevalue("redis_server")
    store = RedisStateStore.from_url(url, key_builder=keys)
    try:
        yield store
    finally:
        await store.close()
        await _delete_keys(url, redis_prefix)


@pytest.fixture(params=["memory", "redis"])
async def event_bus(request: pytest.FixtureRequest, redis_prefix: str) -> AsyncIterator[EventBus]:
    if request.param == "memory":
        bus: EventBus = InProcessEventBus()
    else:
        bus = RedisEventBus.from_url(request.getfixturevalue("redis_server"), key_builder=KeyBuilder(redis_prefix))
    try:
        yield bus
    finally:
        await bus.close()


# -- passwords ---------------------------------------------------------------------------
# argon2id at its smallest cost (the library's defaults take ~0.1-0.3 s of CPU a hash, and
# the web and agent tests hash and check hundreds of passwords). Same algorithm, same code
# paths (hashing pool, rehash on login when parameters differ); the real cost is exercised by
# the processes the tests start (``deskbot agents``, the live servers, the login flood test).


@pytest.fixture(autouse=True)
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    import functools

    from argon2 import PasswordHasher

    import desk.accounts

    monkeypatch.setattr(
        desk.accounts, "PasswordHasher", functools.partial(PasswordHasher, time_cost=1, memory_cost=1024, parallelism=1)
    )


# -- the classifier --------------------------------------------------------------------
PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def trained_model() -> tuple[Path, BuiltinClassifier]:
    """The real classifier, trained on the project's data as config.yaml configures it.

    Trained once for all pytest-xdist workers and kept across runs (``tests/trained_models.py``:
    retrained when the data, the config or the intents code changes).
    """
    from bot.config import load_settings
    from tests.trained_models import trained_model as train_or_load

    settings = load_settings(PROJECT_ROOT / "config.yaml", environ={})
    return train_or_load(settings.classifier, settings.classifier.data_dir)


@pytest.fixture(scope="session")
def trained_model_path(trained_model: tuple[Path, BuiltinClassifier]) -> Path:
    """The trained model's file: commands given ``DESKBOT_CLASSIFIER__MODEL_PATH`` = this path
    load it instead of retraining (the fingerprint of data and config matches). Read-only."""
    return trained_model[0]


@pytest.fixture(scope="session")
def trained_classifier(trained_model: tuple[Path, BuiltinClassifier]) -> BuiltinClassifier:
    return trained_model[1]


# -- the whole app -----------------------------------------------------------------------
@pytest.fixture(params=["sqlite+memory", "postgres+redis"])
async def app(
    request: pytest.FixtureRequest, tmp_path: Path, trained_classifier: BuiltinClassifier, redis_prefix: str
) -> AsyncIterator[App]:
    from bot.app import build_app
    from bot.config import load_settings

    sqlite = request.param == "sqlite+memory"
    env = {"DESKBOT_CLASSIFIER__MODEL_PATH": str(tmp_path / "unused.npz")}
    env |= storage_environ(request, tmp_path, redis_prefix, server=not sqlite)
    settings = load_settings(PROJECT_ROOT / "config.yaml", environ=env)
    async with build_app(settings, classifier=trained_classifier, create_schema=sqlite) as deskbot:
        if not sqlite:
            await empty_tables(deskbot.tickets.engine)  # type: ignore[attr-defined]
        yield deskbot
    if not sqlite:
        await _delete_keys(settings.state.redis_url, redis_prefix)
