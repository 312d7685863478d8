"""The run census (`run_counts`): runs per (definition, state, lifecycle), kept incrementally.

Each transition stores how it moves the census with its counters (`pending_counts`,
signoff.engine.stats.census); the stats fold (signoff.engine.storage.stats_rollup) adds those
rows here, off the write path. Reading the census folds what is pending first, then reads a
handful of rows: it is exact as of the read, whatever the number of runs.

Deleting runs (`signoff purge`): call `forget(store, tx, runs, through_seq)` in the transaction that
deletes them, with each deleted run's (definition, state, lifecycle) as stored and the highest
seq among the history entries deleted with them. Only entries the fold has already counted
may be deleted (no counters at or below that seq are pending; `roll_up` first): a run's last
move is then in `run_counts`, and forgetting it takes the run out exactly once. The fold's row
is locked first, as the fold does, and the counters are changed in the fold's order: no lock
cycles.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from sqlalchemy import text

from signoff.engine.storage.statements import Sql, Tx, sql
from signoff.engine.storage.stats_rollup import MOVE, behind, roll_up
from signoff.engine.storage.store import Store

Place = tuple[str, str, str]  # definition, state, lifecycle

_UNFOLDED = sql("SELECT seq FROM pending_counts WHERE seq <= $1 LIMIT 1")
_READ = text("SELECT definition, state, lifecycle, n FROM run_counts WHERE n <> 0")


class UnfoldedError(RuntimeError):
    """Runs whose history the census has not counted yet cannot be forgotten."""


async def read(store: Store) -> dict[Place, int]:
    """How many runs each (definition, state, lifecycle) holds now (none: not listed)."""
    async with store.read() as conn:
        if not await behind(conn):
            return {(d, s, lc): int(n) for d, s, lc, n in await conn.execute(_READ)}
    await roll_up(store)
    async with store.read() as conn:
        return {(d, s, lc): int(n) for d, s, lc, n in await conn.execute(_READ)}


async def forget(store: Store, tx: Tx, runs: Iterable[Place], through_seq: int) -> None:
    """Take deleted runs out of the census, in the transaction that deletes them (`tx`, of
    `store`); `through_seq` is the highest seq of the history entries deleted with them."""
    await tx.fetchrow(_lock(store.lock_clause))
    if await tx.fetchrow(_UNFOLDED, through_seq) is not None:
        raise UnfoldedError(f"history up to seq {through_seq} is not folded yet: roll_up first")
    gone = Counter(runs)
    for place, n in sorted(gone.items()):  # the fold's order
        await tx.execute(MOVE, *place, -n)


def _lock(lock_clause: str) -> Sql:
    return sql(f"SELECT seq FROM stats_rollup WHERE id = 1{lock_clause}")
