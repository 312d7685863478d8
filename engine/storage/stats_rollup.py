"""Folding transitions' counters into `stat_counts` (stats) and `run_counts` (the run
census, signoff.engine.storage.census), off the write path.

Each transition stores the counters it adds in a row of its own (`pending_counts`, keyed by
its history entry's seq), so the write path touches no shared counter rows (under concurrency
those would be the hottest rows in the database, updated inside the lock that orders seq).
This folds them in, in seq order, and deletes the rows it folded in the same transaction: a
row is folded once, and the table holds only what is not folded yet (history itself keeps
nothing of them). Folds take turns on the `stats_rollup` row's lock, whose `seq` says the
last entry folded. Seq order is commit order, so no row at or below the ones a fold read can
commit after it read them: its delete removes exactly what it added.
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from signoff.engine.stats import census
from signoff.engine.storage.schema import PENDING_COUNTS
from signoff.engine.storage.statements import sql
from signoff.engine.storage.store import Store

BATCH = 2000  # entries per transaction: short, so transitions barely wait for a fold

_PENDING = sql("SELECT seq, counts FROM pending_counts ORDER BY seq LIMIT $1", of=PENDING_COUNTS)
_FOLDED = sql("DELETE FROM pending_counts WHERE seq <= $1")
_KEY = "definition, kind, key, day, bucket"
_ADD = sql(
    f"INSERT INTO stat_counts ({_KEY}, n) VALUES ($1, $2, $3, $4, $5, $6)"
    f" ON CONFLICT ({_KEY}) DO UPDATE SET n = stat_counts.n + excluded.n"
)
_MARK = sql("UPDATE stats_rollup SET seq = $1 WHERE id = 1 AND seq < $1")
_CENSUS = "definition, state, lifecycle"
MOVE = sql(
    f"INSERT INTO run_counts ({_CENSUS}, n) VALUES ($1, $2, $3, $4)"
    f" ON CONFLICT ({_CENSUS}) DO UPDATE SET n = run_counts.n + excluded.n"
)
# The first counters not folded yet, if any (one step down the primary key).
_BEHIND = text("SELECT min(seq) FROM pending_counts")

Key = tuple[str, str, str, str, int]
Place = tuple[str, str, str]  # definition, state, lifecycle


async def behind(conn: AsyncConnection) -> bool:
    """Whether some transition's counters are not folded yet."""
    return (await conn.execute(_BEHIND)).scalar() is not None


async def roll_up(store: Store, *, batch: int = BATCH) -> int:
    """Fold the counters of every transition stored so far; how many transitions' (those
    that added none are not counted)."""
    folded = 0
    while True:
        done = await _fold(store, batch)
        folded += done
        if done < batch:
            return folded


async def _fold(store: Store, batch: int) -> int:
    mark_sql = sql(f"SELECT seq FROM stats_rollup WHERE id = 1{store.lock_clause}")
    async with store.write() as tx:
        mark = await tx.fetchrow(mark_sql)  # locked: concurrent folds take turns
        if mark is None:
            raise RuntimeError("stats_rollup has no row: run `signoff migrate`")
        rows = await tx.fetch(_PENDING, batch)
        if not rows:
            return 0
        totals: Counter[Key] = Counter()
        moves: Counter[Place] = Counter()
        for row in rows:
            for definition, kind, key, day, bucket, n in row["counts"]:
                if kind == census.KIND:  # key: the state, day: the lifecycle
                    moves[(definition, key, day)] += int(n)
                else:
                    totals[(definition, kind, key, day, int(bucket))] += int(n)
        for key, n in sorted(totals.items()):  # one order everywhere: no lock cycles
            if n:
                await tx.execute(_ADD, *key, n)
        for place, n in sorted(moves.items()):
            if n:
                await tx.execute(MOVE, *place, n)
        last = int(rows[-1]["seq"])
        await tx.execute(_FOLDED, last)
        await tx.execute(_MARK, last)
    return len(rows)
