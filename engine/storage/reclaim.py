"""Giving a purge's space back: SQLite's VACUUM, PostgreSQL's VACUUM, and the size before and after.

SQLite reuses a deleted row's pages but keeps the file its size until VACUUM rewrites it (which
holds the write lock for as long as that takes: seconds per hundred megabytes). PostgreSQL's
VACUUM (what autovacuum also runs) makes the space reusable without locking out writes, but
seldom shrinks the files; VACUUM FULL or pg_repack would, and the first locks each table.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3

from sqlalchemy import text
from sqlalchemy.engine import make_url

from signoff.engine.storage.store import Store

TABLES = (
    "history",
    "runs",
    "jobs",
    "job_moves",
    "pending_counts",
    "inbox",
    "idempotency",
    "events",
    "audit_purged",
)


async def size(store: Store) -> int:
    """The database's size in bytes (SQLite: the file and its write-ahead log)."""
    if store.engine.dialect.name == "sqlite":
        return _file_size(_path(store))
    async with store.read() as conn:
        found = await conn.execute(text("SELECT pg_database_size(current_database())"))
        return int(found.scalar_one())


async def vacuum(store: Store) -> None:
    """VACUUM: SQLite rewrites the file without the free pages; PostgreSQL marks the purged
    tables' dead rows reusable and refreshes their statistics."""
    if store.engine.dialect.name == "sqlite":
        await asyncio.to_thread(_sqlite_vacuum, _path(store))
        return
    async with store.engine.connect() as conn:
        auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await auto.exec_driver_sql(f"VACUUM (ANALYZE) {', '.join(TABLES)}")


def _path(store: Store) -> str:
    return make_url(store.url).database or ""


def _file_size(path: str) -> int:
    return sum(os.path.getsize(p) for p in (path, f"{path}-wal") if os.path.exists(p))


def _sqlite_vacuum(path: str) -> None:
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # and the log the rewrite went through
    finally:
        conn.close()
