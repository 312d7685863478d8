"""SQLite's write path: one write connection per process, with group commit.

SQLite has one writer at a time anyway, so the process keeps one connection for writing and an
asyncio lock in front of it. Once a transaction holds SQLite's write lock its statements are
memory-speed (no lock waits in WAL mode), so they run inline with plain `sqlite3`: no pool, no
greenlet, no thread hop per statement.

Group commit: each caller's transaction is a SAVEPOINT inside one open database transaction.
When a caller finishes while others are queued, it passes the lock on and waits; the last one
in the group commits everything with one fsync, off the event loop, and every caller returns
only after that commit (durable, as if each had committed alone). A caller whose block fails
rolls back to its savepoint; the others' work is unaffected.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec

from signoff.engine.storage.statements import Row, Sql, decode_row

PRAGMAS = ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=10000")
BUSY_TIMEOUT_MS = 10_000
MAX_GROUP = 64  # transactions per commit at most, so a burst still commits regularly


class SqliteWriter:
    """Serializes this process's write transactions onto one connection."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="signoff-sqlite-writer")
        self._conn: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._queued = 0  # callers waiting for the lock
        self._group: asyncio.Future[None] | None = None  # the open group's commit
        self._members = 0

    @asynccontextmanager
    async def transaction(self, *, single: bool = False) -> AsyncIterator[SqliteTx]:
        """A write transaction: durable when the block exits cleanly, else rolled back.
        (`single` is for PostgreSQL; here every transaction is a savepoint in a group.)"""
        self._queued += 1
        try:
            await self._lock.acquire()
        except BaseException:
            if self._group is not None and not self._lock.locked() and self._queued == 1:
                # The group was handed on to this caller, who is leaving: commit it for them.
                asyncio.get_running_loop().create_task(self._flush())
            raise
        finally:
            self._queued -= 1
        try:
            conn = await self._connection()
            if self._group is None:
                await self._begin(conn)
                self._group = asyncio.get_running_loop().create_future()
                self._members = 0
            group = self._group
            conn.execute("SAVEPOINT tx")
            try:
                yield SqliteTx(conn)
            except BaseException as exc:
                if not _undo(conn):
                    # SQLite rolled the whole transaction back itself (it may, on SQLITE_FULL
                    # or an I/O error): the others' savepoints went with it, so they fail too.
                    self._abort(conn, group, exc)
                    raise
                if self._members == 0:  # nothing of anyone's to keep: end the group here
                    conn.rollback()
                    self._group = None
                    group.set_result(None)
                else:
                    await self._hand_on_or_commit(conn, group)
                raise
            conn.execute("RELEASE tx")
            self._members += 1
            joined = await self._hand_on_or_commit(conn, group)
        finally:
            if self._lock.locked():
                self._lock.release()
        if joined:
            # The commit of this group, by its last member. Shielded: a member cancelled
            # while waiting must not cancel the future the other members wait on.
            await asyncio.shield(group)

    async def probe(self) -> None:
        """Commit a write that changes no data: the header's user_version, rewritten as it
        is. Its commit appends a page to the WAL, so a full, read-only or failing disk
        refuses it just as it refuses a real write."""
        async with self.transaction() as tx:
            (version,) = tx.conn.execute("PRAGMA user_version").fetchone()
            tx.conn.execute(f"PRAGMA user_version = {int(version)}")

    async def _hand_on_or_commit(
        self, conn: sqlite3.Connection, group: asyncio.Future[None]
    ) -> bool:
        """Leave the commit to the next queued caller (True), or commit the group now."""
        if self._queued > 0 and self._members < MAX_GROUP:
            return True
        await self._commit(conn, group)
        return False

    async def _flush(self) -> None:
        async with self._lock:
            if self._group is not None and self._conn is not None:
                await self._commit(self._conn, self._group)

    async def _commit(self, conn: sqlite3.Connection, group: asyncio.Future[None]) -> None:
        self._group = None
        done = asyncio.get_running_loop().run_in_executor(self._executor, conn.commit)
        try:
            # The fsync runs off the event loop. Cancelling the caller must not release the
            # connection mid-commit, so the commit is awaited to its end either way.
            await asyncio.shield(done)
        except asyncio.CancelledError:
            await _settle(done, group)
            if (failure := done.exception()) is not None:
                self._abort(conn, group, failure)
            raise
        except BaseException as exc:
            self._abort(conn, group, exc)
            raise
        group.set_result(None)

    def _abort(
        self, conn: sqlite3.Connection, group: asyncio.Future[None], exc: BaseException
    ) -> None:
        """End the group uncommitted: every member fails with `exc` (none had returned yet),
        and the connection is left outside any transaction, ready for the next group."""
        self._group = None
        if conn.in_transaction:  # a failed COMMIT can leave it open
            with contextlib.suppress(sqlite3.Error):
                conn.rollback()
        if conn.in_transaction:  # cannot even roll back: start over on a new connection
            with contextlib.suppress(sqlite3.Error):
                conn.close()
            self._conn = None
        if not group.done():
            failure = exc if isinstance(exc, Exception) else sqlite3.OperationalError(str(exc))
            group.set_exception(failure)
            group.exception()  # retrieved: members that were cancelled need not see it

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


async def _settle(done: asyncio.Future[None], group: asyncio.Future[None]) -> None:
    while not done.done():
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            continue
        except BaseException:
            break
    if done.exception() is not None:
        group.set_exception(done.exception())  # type: ignore[arg-type]
    else:
        group.set_result(None)


def _undo(conn: sqlite3.Connection) -> bool:
    """Roll back one caller's savepoint; False if the transaction holding it is gone."""
    if not conn.in_transaction:
        return False
    try:
        conn.execute("ROLLBACK TO tx")
        conn.execute("RELEASE tx")
    except sqlite3.Error:
        return False
    return True


def _begin_waiting(conn: sqlite3.Connection) -> None:
    """Another process is writing: wait for its lock (up to the busy timeout), on the thread."""
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    try:
        conn.execute("BEGIN IMMEDIATE")
    finally:
        conn.execute("PRAGMA busy_timeout=0")


_ENCODER = msgspec.json.Encoder()


def sqlite_param(value: Any) -> Any:
    """SQLite keeps JSON as text and timestamps as naive-UTC text in SQLAlchemy's format, so
    the raw writes and SQLAlchemy's reads see one representation."""
    if isinstance(value, dict | list):
        return _ENCODER.encode(value).decode()
    if isinstance(value, msgspec.Raw):  # JSON encoded already (the run view)
        return bytes(value).decode()
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


class SqliteTx:
    """One write transaction (a savepoint) holding SQLite's write lock; statements run inline."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    async def fetch(self, stmt: Sql, *args: Any) -> list[Row]:
        cursor = self.conn.execute(stmt.sqlite, [sqlite_param(a) for a in args])
        if cursor.description is None:
            return []
        names = [d[0] for d in cursor.description]
        return [decode_row(stmt, dict(zip(names, row, strict=True))) for row in cursor.fetchall()]

    async def fetchrow(self, stmt: Sql, *args: Any) -> Row | None:
        rows = await self.fetch(stmt, *args)
        return rows[0] if rows else None

    async def execute(self, stmt: Sql, *args: Any) -> int:
        return self.conn.execute(stmt.sqlite, [sqlite_param(a) for a in args]).rowcount
