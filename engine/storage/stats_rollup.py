"""Folding history entries' counters into `stat_counts` (stats) and `run_counts` (the run
census, signoff.engine.storage.census), off the write path.

Each transition stores the counters it adds in its own history entry (`history.counts`), so
the write path touches no shared counter rows (under concurrency those would be the hottest
rows in the database, updated inside the lock that orders seq). This folds them in, in seq
order, from where the last fold stopped (`stats_rollup.seq`): seq order is commit order, so
every entry below the mark has been folded and none is folded twice (the mark moves in the
same transaction as the counters).
"""

from __future__ import annotations

from collections import Counter

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from signoff.engine.stats import census
from signoff.engine.storage.schema import HISTORY
from signoff.engine.storage.statements import sql
from signoff.engine.storage.store import Store

BATCH = 2000  # entries per transaction: short, so transitions barely wait for a fold

_PENDING = sql("SELECT seq, counts FROM history WHERE seq > $1 ORDER BY seq LIMIT $2", of=HISTORY)
_KEY = "definition, kind, key, day, bucket"
_ADD = sql(
    f"INSERT INTO stat_counts ({_KEY}, n) VALUES ($1, $2, $3, $4, $5, $6)"
    f" ON CONFLICT ({_KEY}) DO UPDATE SET n = stat_counts.n + excluded.n"
)
_MARK = sql("UPDATE stats_rollup SET seq = $1 WHERE id = 1")
_CENSUS = "definition, state, lifecycle"
MOVE = sql(
    f"INSERT INTO run_counts ({_CENSUS}, n) VALUES ($1, $2, $3, $4)"
    f" ON CONFLICT ({_CENSUS}) DO UPDATE SET n = run_counts.n + excluded.n"
)
# The last entry's seq and the fold's mark: entries above it are not counted yet. (max(seq) is
# one step down the primary key; `WHERE seq > (mark) LIMIT 1` let PostgreSQL's planner, which
# cannot see the mark, read all of history sequentially.)
_BEHIND = text("SELECT (SELECT max(seq) FROM history), (SELECT seq FROM stats_rollup WHERE id = 1)")

Key = tuple[str, str, str, str, int]
Place = tuple[str, str, str]  # definition, state, lifecycle


async def behind(conn: AsyncConnection) -> bool:
    """Whether history holds entries the fold has not counted yet."""
    last, mark = (await conn.execute(_BEHIND)).one()
    return last is not None and (mark is None or last > mark)


async def roll_up(store: Store, *, batch: int = BATCH) -> int:
    """Fold every entry stored so far; how many were folded."""
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
        rows = await tx.fetch(_PENDING, int(mark["seq"]), batch)
        if not rows:
            return 0
        totals: Counter[Key] = Counter()
        moves: Counter[Place] = Counter()
        for row in rows:
            for definition, kind, key, day, bucket, n in row["counts"] or ():
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
        await tx.execute(_MARK, int(rows[-1]["seq"]))
    return len(rows)
