"""The ticket store: customers, messages, tickets, events, agents, orders (``storage/records/``).

One ``TicketSession`` is one transaction: the pipeline does all of a turn's writes
(inbound message, replies, ticket changes, events) in one session and commits once,
so a crash never leaves a ticket without its message or a reply without its ticket.
Events are published to the bus only after the commit succeeded.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import StaticPool

from common.errors import DeskbotError, StorageError, StoreUnavailable
from storage.events import EventBus
from storage.models import Base
from storage.records.accounts import AccountRecords
from storage.records.agents import AgentRecords
from storage.records.canned import CannedRecords
from storage.records.customer_archive import CustomerArchiveRecords
from storage.records.customers import CustomerRecords
from storage.records.messages import MessageRecords
from storage.records.orders import OrderRecords
from storage.records.outbox import OutboxRecords
from storage.records.team import TeamRecords
from storage.records.tickets import TicketRecords
from storage.sqlite_inline import WalCheckpointer, inline_creator

log = logging.getLogger(__name__)



class TicketSession(
    CustomerRecords, MessageRecords, OutboxRecords, TicketRecords, OrderRecords, AgentRecords, AccountRecords,
    CannedRecords, TeamRecords, CustomerArchiveRecords,
):
    """Repository operations inside one transaction (see module docstring), one base per aggregate."""


class TicketStore(ABC):
    """Port: hands out transactions over the ticket data."""

    @abstractmethod
    def session(self) -> AbstractAsyncContextManager[TicketSession]:
        """``async with store.session() as tx:`` — commits on success, rolls back on error."""

    @abstractmethod
    async def create_schema(self) -> None:
        """Create tables directly (tests, throwaway databases); production uses migrations."""

    @abstractmethod
    async def close(self) -> None:
        """Dispose connections."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the writer; NORMAL sync is durable across app crashes
    # (only an OS crash can lose the last commits), the usual trade-off for WAL.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Checkpoints run in WalCheckpointer's thread (the serving connection never fsyncs).
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


# SQLSTATE classes of a server that is going away or not there yet: 08 connection
# exception, 57P01-57P03 admin/crash shutdown and "the database system is starting up".
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def _unavailable(exc: BaseException) -> StoreUnavailable | None:
    """The domain error for a failure that means "the database cannot be reached now".

    SQLAlchemy wraps most driver errors (``OperationalError``/``InterfaceError``, a
    ``DBAPIError`` whose connection was invalidated, a pool timeout); asyncpg's own errors
    and socket errors can escape while connecting, so those are recognised too. A domain
    error raised by the caller inside the transaction is never one of these.
    """
    if isinstance(exc, DeskbotError):
        return None
    if isinstance(exc, (OperationalError, InterfaceError, DisconnectionError, PoolTimeout)) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    ):
        return StoreUnavailable("database", exc.__class__.__name__)
    cause: BaseException | None = exc.orig if isinstance(exc, DBAPIError) else exc
    seen = 0
    while cause is not None and seen < 5:  # the driver's error may sit under an adapter's
        sqlstate = str(getattr(cause, "sqlstate", "") or "")
        driver = type(cause).__module__.split(".")[0] in {"asyncpg", "aiosqlite", "sqlalchemy"}
        if _connection_oserror(cause) or (driver and (
            sqlstate.startswith(_UNAVAILABLE_SQLSTATES) or "Connection" in type(cause).__name__
        )):
            return StoreUnavailable("database", cause.__class__.__name__)
        cause, seen = cause.__cause__, seen + 1
    return None


def _connection_oserror(exc: BaseException) -> bool:
    """A socket that could not connect or was cut (not any OSError: a missing file is no outage)."""
    if isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror)):
        return True
    return isinstance(exc, OSError) and (
        exc.errno in _CONNECTION_ERRNOS or "connect call failed" in str(exc).lower()
    )


_CONNECTION_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT}
)


async def _rollback_quietly(db: AsyncSession) -> None:
    """Roll back; on a dead connection the rollback fails too, and the first error is the news."""
    try:
        await db.rollback()
    except Exception as exc:  # noqa: BLE001 - the original error is re-raised by the caller
        log.debug("rollback failed", extra={"error": exc.__class__.__name__})


class SqlTicketStore(TicketStore):
    """SQLAlchemy implementation: SQLite (aiosqlite) embedded, PostgreSQL (asyncpg) in production."""

    def __init__(self, engine: AsyncEngine, bus: EventBus | None = None) -> None:
        self.engine = engine
        self.bus = bus
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        # SQLite has one writer; in-process sessions take turns instead of waiting on its lock.
        self._serial: asyncio.Lock | None = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self._serial_owner: asyncio.Task[Any] | None = None
        self._checkpointer: WalCheckpointer | None = None

    @classmethod
    def from_url(cls, url: str, bus: EventBus | None = None, echo: bool = False) -> SqlTicketStore:
        kwargs: dict[str, Any] = {"echo": echo}
        sqlite = make_url(url).get_backend_name() == "sqlite"
        if sqlite:
            database = make_url(url).database or ":memory:"
            # One connection, used inline (see storage/sqlite_inline.py), one session at a time.
            kwargs |= {"async_creator": inline_creator(database), "poolclass": StaticPool}
            checkpointer = WalCheckpointer(database) if database != ":memory:" else None
        else:
            kwargs["pool_pre_ping"] = True
            # A server that does not answer fails fast (503) instead of holding requests a minute.
            if make_url(url).get_driver_name() == "asyncpg":
                kwargs["connect_args"] = {"timeout": 5}
            kwargs["pool_timeout"] = 10
        engine = create_async_engine(url, **kwargs)
        if sqlite:
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            store = cls(engine, bus)
            store._checkpointer = checkpointer
            return store
        return cls(engine, bus)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[TicketSession]:
        if self._serial is None:
            async with self._session() as tx:
                yield tx
            return
        if self._serial_owner is not None and self._serial_owner is asyncio.current_task():
            raise StorageError("nested ticket-store session in one task (SQLite allows one at a time)")
        async with self._serial:
            if self._checkpointer is not None:
                self._checkpointer.start()
            self._serial_owner = asyncio.current_task()
            try:
                async with self._session() as tx:
                    yield tx
            finally:
                self._serial_owner = None

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[TicketSession]:
        try:
            async with self._sessions() as db:
                tx = TicketSession(db)
                try:
                    yield tx
                    await db.commit()
                except BaseException:
                    await _rollback_quietly(db)
                    raise
        except (IntegrityError, DeskbotError):
            raise  # callers tell duplicates apart (a delivery key seen before, …); domain errors
        except Exception as exc:
            unavailable = _unavailable(exc)
            if unavailable is not None:
                raise unavailable from exc
            if isinstance(exc, SQLAlchemyError):
                raise StorageError(f"ticket store: {exc.__class__.__name__}: {exc}") from exc
            raise
        if self.bus is not None:
            for bus_event in tx.pending_events:
                try:
                    await self.bus.publish(bus_event)
                except StoreUnavailable as exc:
                    # Redis is down: expected during an outage, and said once per event
                    # without a traceback. Live views catch up on reload.
                    log.warning(
                        "event not published: %s",
                        exc,
                        extra={"event": bus_event.kind, "ticket": bus_event.ticket_number},
                    )
                except Exception:  # noqa: BLE001
                    # The change is committed: raising now would make the caller treat a
                    # done turn as failed and redo it. Live views catch up on reload.
                    log.exception("event %s of ticket %s not published", bus_event.kind, bus_event.ticket_number)

    async def ping(self) -> None:
        """The database answers ``SELECT 1``, or StoreUnavailable (the readiness probe; the
        caller bounds the wait with ``asyncio.timeout``)."""
        async with self.session() as tx:
            await tx.db.execute(select(1))

    async def create_schema(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)

    async def close(self) -> None:
        await self.engine.dispose()
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
            self._checkpointer = None
