"""Run embedded SQLite on the event-loop thread instead of aiosqlite's worker thread.

aiosqlite hands every cursor call to a thread and back: four hops per statement, each
costing far more than the statement itself on a WAL database (where a commit does not
fsync). For the embedded default that round-trip dominated a bot turn, so this shim
gives SQLAlchemy's aiosqlite dialect a connection whose coroutines complete at once.

The price: a statement blocks the loop while it runs (microseconds), and a second
in-process connection waiting on SQLite's write lock would block it for good — so the
ticket store serialises SQLite sessions with an asyncio lock and uses one connection.
PostgreSQL (asyncpg) is unaffected.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any

log = logging.getLogger("deskbot.sqlite")


class _InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> _InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = None) -> _InlineCursor:
        if parameters is None:
            self._cursor.execute(sql)
        else:
            self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, seq_of_parameters: Iterable[Any]) -> _InlineCursor:
        self._cursor.executemany(sql, seq_of_parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> Sequence[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def nextset(self) -> None:
        return None

    async def setinputsizes(self, *sizes: Any) -> None:
        return None


class _ImmediateQueue:
    """Stands in for aiosqlite's job queue (used by the dialect to set isolation levels)."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:  # handed back to the awaiting caller
            future.set_exception(exc)


class InlineSqliteConnection:
    """The subset of ``aiosqlite.Connection`` that SQLAlchemy's dialect calls."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn: sqlite3.Connection | None = connection
        self._tx = _ImmediateQueue()

    @property
    def _connection(self) -> sqlite3.Connection | None:
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        assert self._conn is not None
        return self._conn.isolation_level

    def cursor(self) -> _InlineCursor:
        assert self._conn is not None
        return _InlineCursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Any = None) -> _InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        if self._conn is not None:
            self._conn.commit()

    async def rollback(self) -> None:
        if self._conn is not None:
            self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        assert self._conn is not None
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def inline_creator(path: str, timeout: float = 5.0) -> Callable[[], Any]:
    """An ``async_creator`` for ``create_async_engine`` opening ``path`` inline."""

    async def create() -> InlineSqliteConnection:
        return InlineSqliteConnection(sqlite3.connect(path, timeout=timeout, isolation_level="DEFERRED"))

    return create


class WalCheckpointer:
    """Moves WAL checkpoints (the only fsyncs under ``synchronous=NORMAL``) off the loop.

    With ``wal_autocheckpoint=0`` on the serving connection, a daemon thread with its own
    connection runs a PASSIVE checkpoint every ``interval`` seconds: the disk waits happen
    there, not in the middle of a customer's turn.
    """

    def __init__(self, path: str, interval: float = 1.0) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="deskbot-wal-checkpoint", daemon=True)

    def start(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while not self._stop.wait(self.interval):
                try:
                    if connection is None:
                        connection = sqlite3.connect(self.path, timeout=1.0)
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    log.debug("WAL checkpoint skipped", exc_info=True)
        finally:
            if connection is not None:
                connection.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        # A final full checkpoint keeps the WAL file small between runs.
        try:
            with sqlite3.connect(self.path, timeout=1.0) as connection:
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error:
            log.debug("final WAL checkpoint skipped", exc_info=True)
