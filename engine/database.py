"""The database: SQLAlchemy for the schema and reads, the raw driver for write transactions."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from engine.errors import WriteConflictError
from engine.pg_writer import PgWriter
from engine.sql import Row, Sql, Tx
from engine.sqlite_writer import PRAGMAS, SqliteWriter

_ENCODER = msgspec.json.Encoder()


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

        A unique-key violation (two requests racing on one key) surfaces as WriteConflictError.
        """
        try:
            async with self._writer.transaction(single=single) as tx:
                yield tx
        except (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError) as exc:
            raise WriteConflictError() from exc

    async def fetch_once(self, stmt: Sql, *args: Any) -> list[Row]:
        """Run one write statement as a transaction of its own; its rows."""
        try:
            return await self._writer.fetch_once(stmt, *args)
        except (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError) as exc:
            raise WriteConflictError() from exc

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only snapshot (no write lock taken)."""
        async with self.engine.connect() as conn, conn.begin():
            yield conn

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
