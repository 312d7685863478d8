"""The write path under concurrency: every transaction that returns is durable and visible, a
failed one leaves nothing behind, and cancelled callers neither hang nor lose others' work
(on SQLite this exercises group commit: many transactions share one commit)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from signoff.engine.errors import WriteConflictError
from signoff.engine.storage.migrate import upgrade
from signoff.engine.storage.schema import IDEMPOTENCY
from signoff.engine.storage.statements import sql
from signoff.engine.storage.store import Store

_INSERT = sql(
    "INSERT INTO idempotency (key, actor, route, request_hash, created, body, created_at)"
    " VALUES ($1, 't', 'r', 'h', false, '{}', $2)"
)


class Boom(Exception):
    pass


async def _keys(db: Store) -> set[str]:
    async with db.read() as conn:
        return set((await conn.execute(select(IDEMPOTENCY.c.key))).scalars())


async def _write(db: Store, key: str, *, fail: bool = False) -> str:
    async with db.write() as tx:
        await tx.execute(_INSERT, key, datetime.now(UTC))
        await asyncio.sleep(0)  # let others queue up behind this one
        if fail:
            raise Boom(key)
    # Returned: the row must be committed, visible to a new reader at once.
    assert key in await _keys(db)
    return key


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Store]:
    db = Store.open(database_url)
    await upgrade(db)
    yield db
    await db.dispose()


async def test_concurrent_writes_are_all_durable_and_failures_leave_nothing(db: Store) -> None:
    tasks = [_write(db, f"k{i}", fail=i % 3 == 0) for i in range(60)]
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failed = {f"k{i}" for i in range(60) if i % 3 == 0}
    assert all(isinstance(r, Boom) for i, r in enumerate(results) if i % 3 == 0)
    assert await _keys(db) == {f"k{i}" for i in range(60)} - failed


async def test_cancelled_writers_do_not_stall_the_others(db: Store) -> None:
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


async def test_a_duplicate_key_is_a_write_conflict_and_changes_nothing(db: Store) -> None:
    await _write(db, "same")
    with pytest.raises(WriteConflictError):
        await _write(db, "same")
    results = await asyncio.gather(_write(db, "x1"), _write(db, "x1"), return_exceptions=True)
    assert sorted(type(r).__name__ for r in results) == ["WriteConflictError", "str"]
    assert await _keys(db) == {"same", "x1"}


async def test_a_member_cancelled_waiting_for_the_group_commit_does_not_fail_the_others(
    tmp_path: Path,
) -> None:
    """SQLite group commit: A hands the commit on to B and waits for it; cancelling A's wait
    must leave the commit B is about to make, and B's return, alone."""
    db = Store.open(f"sqlite+aiosqlite:///{tmp_path / 'signoff.db'}")
    await upgrade(db)
    a_may_finish, b_inside, b_may_finish = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def a() -> None:
        async with db.write() as tx:
            await tx.execute(_INSERT, "a", datetime.now(UTC))
            await a_may_finish.wait()

    async def b() -> str:
        async with db.write() as tx:
            # A released the lock to get here: it joined the group and waits for its commit.
            b_inside.set()
            await tx.execute(_INSERT, "b", datetime.now(UTC))
            await b_may_finish.wait()
        return "b"

    try:
        async with asyncio.timeout(10):
            member_a = asyncio.create_task(a())
            await asyncio.sleep(0)  # A holds the write lock
            member_b = asyncio.create_task(b())
            await asyncio.sleep(0)  # B queues behind A, so A will hand the commit on
            a_may_finish.set()
            await b_inside.wait()
            member_a.cancel()
            with pytest.raises(asyncio.CancelledError):
                await member_a
            b_may_finish.set()
            assert await member_b == "b"
        # A's savepoint was already in the group: its wait was cancelled, not its work.
        assert await _keys(db) == {"a", "b"}
    finally:
        await db.dispose()
