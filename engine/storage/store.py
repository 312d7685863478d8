"""The database: SQLAlchemy for the schema and reads, the raw driver for write transactions."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec
import sqlalchemy.exc
from signoff.engine.errors import StorageUnavailableError, WriteConflictError
from signoff.engine.storage.postgres import PgWriter
from signoff.engine.storage.sqlite import PRAGMAS, SqliteWriter
from signoff.engine.storage.statements import Row, Sql, Tx
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

_ENCODER = msgspec.json.Encoder()

# What a driver raises; `is_storage_failure` decides which of these mean the storage failed.
_DRIVER_ERRORS = (
    OSError,  # ConnectionRefusedError, ConnectionResetError, TimeoutError: unreachable
    sqlite3.Error,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    sqlalchemy.exc.SQLAlchemyError,
)
# The disk is full, read-only or failing, or the file cannot be opened (primary result codes;
# SQLite's extended codes carry them in the low byte).
_SQLITE_STORAGE_CODES = frozenset(
    {sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR}
)
_STORAGE_ERRORS = (
    OSError,
    asyncpg.PostgresConnectionError,  # class 08: the connection failed or was closed mid-query
    asyncpg.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.AdminShutdownError,  # 57P01
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.InsufficientResourcesError,  # class 53: disk full, out of memory, too many connections
    asyncpg.ReadOnlySQLTransactionError,  # 25006: a read-only server (a standby, or set so)
    sqlalchemy.exc.TimeoutError,  # no connection free in the read pool in time
)


def is_storage_failure(exc: BaseException) -> bool:
    """Whether `exc`, or the driver error it wraps, says the storage failed (so the same
    request may succeed later) rather than the statement (a conflict, or a bug)."""
    cause: BaseException | None = exc
    for _ in range(4):  # SQLAlchemy's error → its DBAPI adapter's → the driver's
        if cause is None:
            return False
        if isinstance(cause, sqlite3.Error):
            return getattr(cause, "sqlite_errorcode", 0) & 0xFF in _SQLITE_STORAGE_CODES
        if isinstance(cause, _STORAGE_ERRORS):
            return True
        if isinstance(cause, asyncpg.InterfaceError):
            return "closed" in str(cause)  # "connection is closed", not "another operation…"
        if isinstance(cause, sqlalchemy.exc.DBAPIError) and cause.connection_invalidated:
            return True
        cause = getattr(cause, "orig", None) or cause.__cause__
    return False


def _json_serializer(value: Any) -> str:
    return _ENCODER.encode(value).decode()


class Database:
    """SQLAlchemy's async engine for reads and migrations; `write()` for write transactions.

    Writes go straight to the driver (engine/sql.py says why). SQLite: one write connection on
    its own thread, `BEGIN IMMEDIATE` taking the write lock up front, WAL and a busy timeout for
    other processes. PostgreSQL: an asyncpg pool; writers lock the rows they change
    (`SELECT … FOR UPDATE`).
    """

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {
            "json_serializer": _json_serializer,
            "json_deserializer": msgspec.json.decode,
            "echo": echo,
        }
        if not self.is_sqlite:
            kwargs.update(pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        parsed = make_url(url)
        self._writer: SqliteWriter | PgWriter
        # The last write that failed for a storage reason, until a probe write succeeds.
        self.storage_failure: StorageUnavailableError | None = None
        if self.is_sqlite:
            _configure_sqlite(self.engine)
            self._writer = SqliteWriter(parsed.database or ":memory:")
        else:
            dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
            self._writer = PgWriter(dsn, size=pool_size)

    @asynccontextmanager
    async def write(self, *, single: bool = False) -> AsyncIterator[Tx]:
        """A write transaction, committed when the block exits without an error. `single`
        promises that the block runs exactly one statement (PostgreSQL then saves the
        BEGIN and COMMIT round trips).

        A unique-key violation (two requests racing on one key) surfaces as WriteConflictError;
        a full disk, a read-only or unreachable database as StorageUnavailableError (the
        transaction was rolled back, or never began).
        """
        try:
            async with self._writer.transaction(single=single) as tx:
                yield tx
        except (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError) as exc:
            raise WriteConflictError() from exc
        except _DRIVER_ERRORS as exc:
            if not is_storage_failure(exc):
                raise
            raise self._write_failed() from exc

    async def fetch_once(self, stmt: Sql, *args: Any) -> list[Row]:
        """Run one write statement as a transaction of its own; its rows."""
        try:
            return await self._writer.fetch_once(stmt, *args)
        except (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError) as exc:
            raise WriteConflictError() from exc
        except _DRIVER_ERRORS as exc:
            if not is_storage_failure(exc):
                raise
            raise self._write_failed() from exc

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only snapshot (no write lock taken); StorageUnavailableError if the database
        cannot be reached."""
        try:
            async with self.engine.connect() as conn, conn.begin():
                yield conn
        except _DRIVER_ERRORS as exc:
            if not is_storage_failure(exc):
                raise
            raise StorageUnavailableError() from exc

    async def check_writes(self) -> None:
        """Raise StorageUnavailableError while writes fail for a storage reason.

        Only after a real write failed: then a probe write (one that commits, without user
        data, see the writers' `probe`) is tried, and its success clears the failure. A probe
        that rolled back would prove nothing (it writes nothing, so a full disk accepts it),
        and nor would a successful write that changed no rows (an empty job claim), so
        neither clears it.
        """
        if self.storage_failure is None:
            return
        try:
            await self._writer.probe()
        except _DRIVER_ERRORS as exc:
            if not is_storage_failure(exc):
                raise
            raise self._write_failed() from exc
        self.storage_failure = None

    def _write_failed(self) -> StorageUnavailableError:
        self.storage_failure = StorageUnavailableError()
        return self.storage_failure

    async def dispose(self) -> None:
        await self._writer.close()
        await self.engine.dispose()


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # The driver must not issue its own BEGIN: the "begin" hook below chooses the mode.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in PRAGMAS:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Readers use a plain deferred BEGIN and never block the writer (WAL).
        conn.exec_driver_sql("BEGIN")
