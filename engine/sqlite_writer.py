"""SQLite's write path: the process's one write connection, on a thread of its own.

SQLite has one writer at a time anyway, so the process keeps one connection for writing and
runs every statement of a write transaction on that connection's thread, with plain `sqlite3`:
no pool, no per-statement greenlet, `BEGIN IMMEDIATE` issued with the first statement.
Readers use SQLAlchemy's own connections; WAL lets them read while this one writes.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from engine.sql import Row, Sql, sqlite_param, sqlite_row

T = TypeVar("T")
PRAGMAS = ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=10000")


class SqliteWriter:
    """Serializes this process's write transactions onto one connection and one thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="signoff-sqlite-writer")
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqliteTx]:
        """A write transaction: committed if the block exits cleanly, else rolled back."""
        async with self._lock:
            tx = SqliteTx(self)
            try:
                yield tx
            except BaseException:
                if tx.begun:
                    await self.call(_finish("ROLLBACK"))
                raise
            if tx.begun:
                await self.call(_finish("COMMIT"))

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._with_connection, fn)

    def _with_connection(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            for pragma in PRAGMAS:
                conn.execute(f"PRAGMA {pragma}")
            self._conn = conn
        return fn(self._conn)

    async def close(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=True)


def _finish(verb: str) -> Callable[[sqlite3.Connection], None]:
    def finish(conn: sqlite3.Connection) -> None:
        if conn.in_transaction:  # BEGIN itself may have failed (busy timeout)
            conn.execute(verb)

    return finish


class SqliteTx:
    """One write transaction on the writer thread; each call is one hop to that thread."""

    is_sqlite = True

    def __init__(self, writer: SqliteWriter) -> None:
        self.writer = writer
        self.begun = False

    async def fetch(self, stmt: Sql, *args: Any) -> list[Row]:
        rows, _ = await self.writer.call(self._run(stmt, args))
        return rows

    async def fetchrow(self, stmt: Sql, *args: Any) -> Row | None:
        rows = await self.fetch(stmt, *args)
        return rows[0] if rows else None

    async def execute(self, stmt: Sql, *args: Any) -> int:
        _, count = await self.writer.call(self._run(stmt, args))
        return count

    def _run(
        self, stmt: Sql, args: tuple[Any, ...]
    ) -> Callable[[sqlite3.Connection], tuple[list[Row], int]]:
        params = [sqlite_param(a) for a in args]
        begin = not self.begun
        self.begun = True

        def run(conn: sqlite3.Connection) -> tuple[list[Row], int]:
            if begin:
                # Takes the write lock up front: no two writers can both read version 7.
                conn.execute("BEGIN IMMEDIATE")
            cursor = conn.execute(stmt.sqlite, params)
            if cursor.description is None:
                return [], cursor.rowcount
            names = [d[0] for d in cursor.description]
            rows = [sqlite_row(stmt, names, values) for values in cursor.fetchall()]
            return rows, cursor.rowcount

        return run
