"""Jobs per (kind, status), kept incrementally, for /metrics' `signoff_queue_depth`.

Every job write is counted where it happens: triggers on `jobs` (migration 0012) append a
row to `job_moves` for each job inserted, deleted or moved to another status, in the
writer's own transaction, whoever the writer is (a transition enqueueing or cancelling, a
worker's claim, settle or retry, a webhook redelivery, a purge, code not written yet). A
move is a row of its own, so concurrent writers share no counter row (one updated by every
job write would serialize them, as the census's would: signoff.engine.storage.stats_rollup).

`fold` adds the moves into `job_counts` and deletes them in one transaction: the counters
plus the moves left are the jobs, at every commit. A process with workers folds every
SIGNOFF_STATS_ROLLUP_S; a reader that finds moves left folds them first and reads the
counters again (RunQueries.census), as the run census does: exact as of its fold, and a
handful of rows whatever the number of jobs. Whether moves are left is one step down
`job_moves`' primary key, never a scan of it: on PostgreSQL the moves a fold deleted stay in
the table as dead rows until VACUUM, and a scan would read them all.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from signoff.engine.storage.statements import sql
from signoff.engine.storage.store import Store

BATCH = 10_000  # moves per fold transaction: short, whatever piled up
# PostgreSQL: folds take turns (SQLite has one writer anyway). Two folds deleting the same
# moves could otherwise lock them in different orders.
FOLD_LOCK = 0x5160FB

Key = tuple[str, str]  # kind, status

_COUNTED = text("SELECT kind, status, n FROM job_counts WHERE n <> 0")
_BEHIND = text("SELECT min(id) FROM job_moves")
# PostgreSQL: one statement deletes the oldest moves and counts exactly those it deleted (ids
# are not in commit order there: a smaller id may still be uncommitted when a larger one is
# folded, and a second statement's snapshot could see it appear).
_TAKE_PG = sql(
    "WITH gone AS (DELETE FROM job_moves"
    " WHERE id IN (SELECT id FROM job_moves ORDER BY id LIMIT $1)"
    " RETURNING kind, from_status, to_status)"
    " SELECT kind, from_status, to_status, COUNT(*) AS n FROM gone"
    " GROUP BY kind, from_status, to_status"
)
# SQLite: the write lock is held from BEGIN IMMEDIATE, so the oldest moves stay the same
# between the statement that counts them and the one that deletes them.
_COUNT_SQLITE = sql(
    "SELECT kind, from_status, to_status, COUNT(*) AS n"
    " FROM (SELECT kind, from_status, to_status FROM job_moves ORDER BY id LIMIT $1)"
    " GROUP BY kind, from_status, to_status"
)
_DELETE_SQLITE = sql(
    "DELETE FROM job_moves WHERE id IN (SELECT id FROM job_moves ORDER BY id LIMIT $1)"
)
_ADD = sql(
    "INSERT INTO job_counts (kind, status, n) VALUES ($1, $2, $3)"
    " ON CONFLICT (kind, status) DO UPDATE SET n = job_counts.n + excluded.n"
)
_LOCK = sql(f"SELECT pg_advisory_xact_lock({FOLD_LOCK})")


@dataclass(frozen=True)
class Counted:
    jobs: dict[Key, int]  # (kind, status) -> jobs, as folded; a pair with none is not listed
    behind: bool  # moves are left that the counters do not hold yet: fold, then read again

    def of(self, status: str) -> dict[str, int]:
        """Jobs in `status`, by kind."""
        return {kind: n for (kind, s), n in self.jobs.items() if s == status}


async def read(conn: AsyncConnection) -> Counted:
    """The counters as `conn` sees them, and whether moves are left to fold into them."""
    jobs = {(kind, status): int(n) for kind, status, n in await conn.execute(_COUNTED)}
    return Counted(jobs, (await conn.execute(_BEHIND)).scalar() is not None)


async def fold(store: Store, *, batch: int = BATCH) -> int:
    """Fold every move stored so far into `job_counts`; how many were folded."""
    folded = 0
    while True:
        done = await _fold(store, batch)
        folded += done
        if done < batch:
            return folded


async def _fold(store: Store, batch: int) -> int:
    async with store.write() as tx:
        if store.engine.dialect.name == "postgresql":
            await tx.execute(_LOCK)
            rows = await tx.fetch(_TAKE_PG, batch)
        else:
            rows = await tx.fetch(_COUNT_SQLITE, batch)
            await tx.execute(_DELETE_SQLITE, batch)
        totals: Counter[Key] = Counter()
        for row in rows:
            if row["from_status"] is not None:
                totals[(row["kind"], row["from_status"])] -= int(row["n"])
            if row["to_status"] is not None:
                totals[(row["kind"], row["to_status"])] += int(row["n"])
        for key, n in sorted(totals.items()):  # one order everywhere: no lock cycles
            if n:
                await tx.execute(_ADD, *key, n)
    return sum(int(row["n"]) for row in rows)
