"""The write path under concurrency: every transaction that returns is durable and visible, a
failed one leaves nothing behind, and cancelled callers neither hang nor lose others' work
(on SQLite this exercises group commit: many transactions share one commit)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from engine.database import Database
from engine.errors import WriteConflictError
from engine.migrate import upgrade
from engine.sql import sql
from engine.tables import IDEMPOTENCY

_INSERT = sql(
    "INSERT INTO idempotency (key, actor, route, request_hash, status_code, body, created_at)"
    " VALUES ($1, 't', 'r', 'h', 200, '{}', $2)"
)


class Boom(Exception):
    pass


async def _keys(db: Database) -> set[str]:
    async with db.read() as conn:
        return set((await conn.execute(select(IDEMPOTENCY.c.key))).scalars())


async def _write(db: Database, key: str, *, fail: bool = False) -> str:
    async with db.write() as tx:
        await tx.execute(_INSERT, key, datetime.now(UTC))
        await asyncio.sleep(0)  # let others queue up behind this one
        if fail:
            raise Boom(key)
    # Returned: the row must be committed, visible to a new reader at once.
    assert key in await _keys(db)
    return key


@pytest.fixture
async def db(database_url: str) -> Database:
    db = Database(database_url)
    await upgrade(db)
    yield db  # type: ignore[misc]
    await db.dispose()


async def test_concurrent_writes_are_all_durable_and_failures_leave_nothing(db: Database) -> None:
    tasks = [_write(db, f"k{i}", fail=i % 3 == 0) for i in range(60)]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failed = {f"k{i}" for i in range(60) if i % 3 == 0}
    assert all(isinstance(r, Boom) for i, r in enumerate(results) if i % 3 == 0)
    assert await _keys(db) == {f"k{i}" for i in range(60)} - failed


async def test_cancelled_writers_do_not_stall_the_others(db: Database) -> None:
    tasks = [asyncio.create_task(_write(db, f"c{i}")) for i in range(40)]
    await asyncio.sleep(0)
    for task in tasks[1::4]:
        task.cancel()
    async with asyncio.timeout(30):
        results = await asyncio.gather(*tasks, return_exceptions=True)
    done = {r for r in results if isinstance(r, str)}
    assert done >= {f"c{i}" for i in range(40) if i % 4 != 1}
    assert done <= await _keys(db)
    # and the writer still works afterwards
    assert await _write(db, "after") == "after"


async def test_a_duplicate_key_is_a_write_conflict_and_changes_nothing(db: Database) -> None:
    await _write(db, "same")
    with pytest.raises(WriteConflictError):
        await _write(db, "same")
    results = await asyncio.gather(_write(db, "x1"), _write(db, "x1"), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["WriteConflictError", "str"]
    assert await _keys(db) == {"same", "x1"}
