"""Schema migrations in code: ``await upgrade(url)`` is ``alembic upgrade head``.

The CLI calls ``upgrade`` at start-up and on ``deskbot migrate``; no alembic.ini is read
(``storage/alembic.ini`` exists only for developers using the ``alembic`` command).

What it logs: Alembic's "Running upgrade A -> B" per step and our "migrated to revision
X" once, at INFO; not the lines Alembic writes every time it opens a migration context
("Context impl SQLiteImpl.", "Will assume non-transactional DDL."), which would fill the
log of every start-up with nothing to act on.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, make_url, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Any constant works; it only has to be the same for every deskbot process.
_PG_LOCK_ID = 0x6465736B626F74  # "deskbot"

log = logging.getLogger("deskbot.migrate")

# Alembic's format strings for the context set-up lines (alembic/runtime/migration.py).
_CHATTER = frozenset({"Context impl %s.", "Will assume %s DDL."})


def _not_chatter(record: logging.LogRecord) -> bool:
    return not (isinstance(record.msg, str) and record.msg in _CHATTER)


# On the logger itself: the records are created there, so the filter sees each one
# whatever handlers the application configures (addFilter ignores a second add).
logging.getLogger("alembic.runtime.migration").addFilter(_not_chatter)


def alembic_config() -> Config:
    """The Alembic config of the ticket store, without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    return config


def head() -> str | None:
    """The newest revision shipped with this code."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` to ``revision``; a no-op when it is already there.

    Creates a SQLite file's missing parent folder. Runs in one transaction on both
    backends, so a failed migration leaves the previous schema; concurrent callers (N
    workers starting at once) wait for each other instead of racing.
    """
    _ensure_sqlite_folder(url)
    engine = _engine(url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, revision)
    finally:
        await engine.dispose()


async def current(url: str) -> str | None:
    """The revision the database at ``url`` is at; None for an empty (unmigrated) database.

    A SQLite file that does not exist yet counts as empty and is not created.
    """
    path = _sqlite_path(url)
    if path is not None and not path.exists():
        return None
    engine = _engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_current)
    finally:
        await engine.dispose()


def _upgrade(connection: Connection, revision: str) -> None:
    if connection.dialect.name == "postgresql":
        # Held until the transaction ends; the next process then finds the schema current.
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK_ID})")
    before = _current(connection)
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)
    after = _current(connection)
    if after != before:
        log.info("migrated to revision %s from %s", after, before or "an empty database")
    else:
        log.debug("database schema already at revision %s", after)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _engine(url: str) -> AsyncEngine:
    if make_url(url).get_backend_name() != "sqlite":
        return create_async_engine(url, poolclass=pool.NullPool)
    engine = create_async_engine(url, poolclass=pool.NullPool, connect_args={"timeout": 30})
    # sqlite3 (legacy transaction control) autocommits DDL and never BEGINs before it;
    # take over so a migration is all-or-nothing. IMMEDIATE takes the write lock up
    # front, so a second process migrating at the same time waits rather than failing.
    event.listen(engine.sync_engine, "connect", _sqlite_manual_transactions)
    event.listen(engine.sync_engine, "begin", _sqlite_begin_immediate)
    return engine


def _sqlite_manual_transactions(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _ensure_sqlite_folder(url: str) -> None:
    path = _sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def _sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for other databases, memory and URI filenames."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):  # a URI filename; leave it to SQLite
        return None
    return Path(database)
