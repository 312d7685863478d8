"""PostgreSQL's write connections: an asyncpg pool of its own, with JSON codecs.

Statements are prepared once per connection (asyncpg's statement cache), JSON(B) values travel
as Python objects through msgspec codecs, and nothing sits between the engine and the driver.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import msgspec

from signoff.engine.storage.statements import Row, Sql

_ENCODER = msgspec.json.Encoder()


def _encode(value: Any) -> str:
    return _ENCODER.encode(value).decode()


async def _setup(conn: Any, pids: set[int]) -> None:
    pids.add(conn.get_server_pid())
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, encoder=_encode, decoder=msgspec.json.decode, schema="pg_catalog"
        )


async def _reset(conn: Any) -> None:
    # Write connections keep no session state (locks are transaction-scoped, no LISTEN, no
    # SET), so asyncpg's default reset query, one more round trip per transaction, is skipped.
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


class PgWriter:
    """A pool of write connections, opened on first use."""

    def __init__(self, dsn: str, *, size: int) -> None:
        self.dsn = dsn
        self.size = size
        self._pool: Any = None
        # The server process ids of this pool's connections, past and present: notifications
        # they sent are this process's own.
        self.pids: set[int] = set()

    async def _ensure(self) -> Any:
        if self._pool is None:
            pool = await asyncpg.create_pool(
                self.dsn,
                min_size=1,
                max_size=self.size,
                init=lambda conn: _setup(conn, self.pids),
                reset=_reset,
                command_timeout=60,
            )
            if self._pool is None:
                self._pool = pool
            else:  # another task won the race
                await pool.close()
        return self._pool

    @asynccontextmanager
    async def transaction(self, *, single: bool = False) -> AsyncIterator[PgTx]:
        """A transaction; `single`: the block runs one statement, atomic on its own, so no
        BEGIN/COMMIT round trips are spent on it."""
        pool = await self._ensure()
        async with pool.acquire() as conn:
            if single:
                yield PgTx(conn)
                return
            async with conn.transaction():
                yield PgTx(conn)

    async def probe(self) -> None:
        """Commit a transaction that writes no data: it takes a pooled connection (a fresh
        one if the server restarted) and a transaction id, whose commit the server must log;
        a read-only server is refused here as its writes would be."""
        pool = await self._ensure()
        async with pool.acquire() as conn, conn.transaction():
            read_only = await conn.fetchval(
                "SELECT current_setting('transaction_read_only'), pg_current_xact_id()"
            )
            if read_only == "on":
                raise asyncpg.ReadOnlySQLTransactionError("the server is read-only")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


class PgTx:
    """A write transaction on one pooled asyncpg connection."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def fetch(self, stmt: Sql, *args: Any) -> list[Row]:
        return [dict(r.items()) for r in await self.conn.fetch(stmt.pg, *args)]

    async def fetchrow(self, stmt: Sql, *args: Any) -> Row | None:
        record = await self.conn.fetchrow(stmt.pg, *args)
        return None if record is None else dict(record.items())

    async def execute(self, stmt: Sql, *args: Any) -> int:
        status: str = await self.conn.execute(stmt.pg, *args)
        # "UPDATE 3", "INSERT 0 1", "DELETE 0", "SELECT 1"
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0
