"""Why PostgreSQL writes keep an asyncpg pool of their own: a write transaction on it, against
the same on a connection borrowed from SQLAlchemy's read pool (with and without its pre-ping).

`.venv/bin/python -m bench.pools [N]` prints write transactions/s for each, sequentially, on a
fresh database (SIGNOFF_BENCH_POSTGRES names the admin URL).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

ADMIN = os.environ.get("SIGNOFF_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
# A transaction shaped like a transition's: lock a row, write it, commit.
_WRITE = "UPDATE t SET v = v + 1 WHERE id = $1"


async def _asyncpg(pool: Any) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_WRITE, 1)


def _borrowed(engine: AsyncEngine) -> Callable[[], Awaitable[None]]:
    async def write() -> None:
        async with engine.connect() as sa:
            conn = (await sa.get_raw_connection()).driver_connection
            assert conn is not None
            async with conn.transaction():
                await conn.execute(_WRITE, 1)

    return write


async def _rate(write: Callable[[], Awaitable[None]], n: int) -> float:
    for _ in range(50):
        await write()
    started = time.perf_counter()
    for _ in range(n):
        await write()
    return n / (time.perf_counter() - started)


async def main(n: int) -> None:
    name = f"signoff_pools_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = ADMIN.rsplit("/", 1)[0] + "/" + name
    try:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=10)
        await pool.execute(
            "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 0)"
        )
        url = dsn.replace("postgresql://", "postgresql+asyncpg://")
        pinged = create_async_engine(url, pool_size=10, pool_pre_ping=True)
        plain = create_async_engine(url, pool_size=10)
        ways = {
            "asyncpg pool (today's write path)": lambda: _asyncpg(pool),
            "SQLAlchemy pool, pre-ping on": _borrowed(pinged),
            "SQLAlchemy pool, pre-ping off": _borrowed(plain),
        }
        rates: dict[str, list[float]] = {k: [] for k in ways}
        for _ in range(3):  # alternating, medians of 3
            for label, write in ways.items():
                rates[label].append(await _rate(write, n))
        for label, got in rates.items():
            print(f"{label:40} {statistics.median(got):8.0f} writes/s  {[round(r) for r in got]}")
        await pool.close()
        await pinged.dispose()
        await plain.dispose()
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
