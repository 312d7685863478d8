"""SQLite's write path: the process's one write connection, serialized by an asyncio lock.

SQLite has one writer at a time anyway, so the process keeps one connection for writing. Once
a transaction holds the write lock, its statements are memory-speed (no lock waits in WAL
mode), so they run inline with plain `sqlite3`: no pool, no greenlet, no thread hop per
statement. Only what can block goes to the connection's thread: COMMIT (the fsync) and a
`BEGIN IMMEDIATE` that has to wait for another process's writer. Readers use SQLAlchemy's own
connections; WAL lets them read while this one writes.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from engine.sql import Row, Sql, sqlite_param, sqlite_row

PRAGMAS = ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=10000")
BUSY_TIMEOUT_MS = 10_000


class SqliteWriter:
    """Serializes this process's write transactions onto one connection."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="signoff-sqlite-writer")
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteTx]:
        """A write transaction: committed if the block exits cleanly, else rolled back."""
        async with self._lock:
            conn = await self._connection()
            await self._begin(conn)
            try:
                yield SqliteTx(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.rollback()
                raise
            # The fsync happens off the event loop; nobody else uses `conn` meanwhile.
            await self._off_loop(conn.commit)

    async def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = await self._off_loop(self._connect)
        return self._conn

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        for pragma in PRAGMAS:
            conn.execute(f"PRAGMA {pragma}")
        # Inline statements must never wait: a busy database is waited for off the loop.
        conn.execute("PRAGMA busy_timeout=0")
        return conn

    async def _begin(self, conn: sqlite3.Connection) -> None:
        # IMMEDIATE takes the write lock up front: no two writers can both read version 7.
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            await self._off_loop(_begin_waiting, conn)

    async def _off_loop(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def close(self) -> None:
        if self._conn is not None:
            await self._off_loop(self._conn.close)
            self._conn = None
        self._executor.shutdown(wait=True)


def _begin_waiting(conn: sqlite3.Connection) -> None:
    """Another process is writing: wait for its lock (up to the busy timeout), on the thread."""
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    try:
        conn.execute("BEGIN IMMEDIATE")
    finally:
        conn.execute("PRAGMA busy_timeout=0")


class SqliteTx:
    """One write transaction holding SQLite's write lock; statements run inline."""

    is_sqlite = True

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def fetch(self, stmt: Sql, *args: Any) -> list[Row]:
        cursor = self.conn.execute(stmt.sqlite, [sqlite_param(a) for a in args])
        if cursor.description is None:
            return []
        names = [d[0] for d in cursor.description]
        return [sqlite_row(stmt, names, values) for values in cursor.fetchall()]

    async def fetchrow(self, stmt: Sql, *args: Any) -> Row | None:
        rows = await self.fetch(stmt, *args)
        return rows[0] if rows else None

    async def execute(self, stmt: Sql, *args: Any) -> int:
        return self.conn.execute(stmt.sqlite, [sqlite_param(a) for a in args]).rowcount
