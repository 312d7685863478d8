"""Retention: deleting finished runs with everything kept for them, a batch per transaction.

A run is purged when it finished (completed or cancelled: it will never change again) before
the given time, and none of its history entries is above `upto`: below the first entry whose
counters the stats fold has not added yet (the others are in `stat_counts`, which keep them)
and below the newest entry (the next entry links to the newest one's hash and, on SQLite,
takes its seq + 1, so the newest entry stays).

The audit chain runs over every entry in seq order, and a purged run's entries lie between those
of runs that stay. So each batch, in its own transaction, records for every kept entry whose
predecessor it deletes the hash that entry links to (`audit_purged`, read back by the export as
a `purged` line): the kept entries still verify, and a changed one still fails.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select

from signoff.engine.model.lifecycle import FINISHED
from signoff.engine.storage import census, job_counts
from signoff.engine.storage.schema import HISTORY, PENDING_COUNTS, RUNS
from signoff.engine.storage.statements import Sql, Tx, sql
from signoff.engine.storage.stats_rollup import roll_up
from signoff.engine.storage.store import Store

BATCH = 500  # runs per transaction: a few thousand rows, so no lock is held for long
FINAL = sorted(FINISHED)
_FINAL_SQL = ", ".join(f"'{state}'" for state in FINAL)
# A transaction of the purge at a time (PostgreSQL; SQLite has one writer anyway): two purges
# computing the neighbours of the entries they delete must not interleave.
PURGE_LOCK = 0x5160FC


class PurgeError(ValueError):
    """The purge cannot be done as asked (nothing was changed)."""


def in_list(column: str, n: int, pg_type: str) -> Sql:
    """`column` among the list given as parameter `n` (an array on PostgreSQL, JSON on SQLite)."""
    return Sql(
        f"{column} = ANY(${n}::{pg_type}[])", f"{column} IN (SELECT value FROM json_each(?{n}))"
    )


def with_list(template: str, where: Sql, *, of: Any = None) -> Sql:
    made = sql(template.replace("{in}", "@IN@"), of=of)
    return Sql(
        made.pg.replace("@IN@", where.pg),
        made.sqlite.replace("@IN@", where.sqlite),
        made.json,
        made.times,
    )


_BATCH = sql(
    "SELECT r.id, r.definition, r.state, r.lifecycle FROM runs r WHERE r.lifecycle IN ("
    + _FINAL_SQL
    + ") AND r.updated_at < $1"
    " AND r.id > $2 AND NOT EXISTS (SELECT 1 FROM history h WHERE h.run_id = r.id AND h.seq > $3)"
    " ORDER BY r.id LIMIT $4"
)
# The batch's entries with their neighbours among all entries, purged or kept.
_ENTRIES = with_list(
    "SELECT h.seq, h.hash AS last_hash, h.seq AS last_seq,"
    " (SELECT max(p.seq) FROM history p WHERE p.seq < h.seq) AS pred,"
    " (SELECT min(n.seq) FROM history n WHERE n.seq > h.seq) AS succ"
    " FROM history h WHERE {in} ORDER BY h.seq",
    in_list("h.run_id", 1, "text"),
)
_ANCHORS = with_list(
    "SELECT seq, last_seq, last_hash FROM audit_purged WHERE {in}", in_list("seq", 1, "bigint")
)
_UNANCHOR = with_list("DELETE FROM audit_purged WHERE {in}", in_list("seq", 1, "bigint"))
_FIELDS = "seq, after_seq, last_seq, last_hash"
# Every range a batch ends, in one statement (a list of objects: JSON on both dialects).
_ANCHOR = Sql(
    f"INSERT INTO audit_purged ({_FIELDS}, purged_at) SELECT {_FIELDS}, $2"
    " FROM jsonb_to_recordset($1::jsonb)"
    " AS x(seq bigint, after_seq bigint, last_seq bigint, last_hash text)",
    f"INSERT INTO audit_purged ({_FIELDS}, purged_at) SELECT "
    + ", ".join(f"json_extract(value, '$.{f}')" for f in _FIELDS.split(", "))
    + ", ?2 FROM json_each(?1)",
)
_DELETES = {
    table: with_list(f"DELETE FROM {table} WHERE {{in}}", in_list(column, 1, "text"))
    for table, column in (
        ("history", "run_id"),
        ("jobs", "run_id"),
        ("inbox", "run_id"),
        ("runs", "id"),
    )
}
_LOCK = sql(f"SELECT pg_advisory_xact_lock({PURGE_LOCK})")


@dataclass(frozen=True)
class Plan:
    """What a purge of the runs finished before `before` deletes: `runs` runs, `entries`
    history entries between seq `first_seq` and `last_seq`. `upto`: no entry above it is
    purged; `held` finished runs are kept this time because an entry of theirs is above it."""

    before: datetime
    upto: int
    runs: int
    entries: int
    first_seq: int | None
    last_seq: int | None
    held: int


@dataclass
class Purged:
    """What a purge deleted, by table, in how many transactions, and the longest any of them
    held the write lock, through its commit (s)."""

    rows: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    longest_s: float = 0.0

    def add(self, table: str, n: int) -> None:
        self.rows[table] = self.rows.get(table, 0) + n


def eligible(before: datetime, upto: int) -> Any:
    """Runs finished before `before` with no history entry above `upto`."""
    h = HISTORY.alias("later")
    later = select(h.c.seq).where(h.c.run_id == RUNS.c.id, h.c.seq > upto).correlate(RUNS)
    return and_(RUNS.c.lifecycle.in_(FINAL), RUNS.c.updated_at < before, ~later.exists())


async def plan(store: Store, before: datetime, now: datetime, *, fold: bool = True) -> Plan:
    """What purging the runs finished before `before` would delete. With `fold`, the stats
    first fold every entry stored so far (so those may go); without, nothing is written and
    the plan counts as if they had been."""
    if before > now:
        raise PurgeError(
            f"{before.isoformat()} is in the future: a purge takes runs finished before a "
            "time that has passed"
        )
    if fold:
        await roll_up(store)
    async with store.read() as conn:
        newest = (await conn.execute(select(func.max(HISTORY.c.seq)))).scalar() or 0
        pending = (await conn.execute(select(func.min(PENDING_COUNTS.c.seq)))).scalar()
        upto = newest - 1 if pending is None or not fold else min(pending - 1, newest - 1)
        runs = await conn.execute(
            select(func.count()).select_from(RUNS).where(eligible(before, upto))
        )
        entries = await conn.execute(
            select(func.count(), func.min(HISTORY.c.seq), func.max(HISTORY.c.seq))
            .select_from(HISTORY.join(RUNS, RUNS.c.id == HISTORY.c.run_id))
            .where(eligible(before, upto))
        )
        finished = await conn.execute(
            select(func.count())
            .select_from(RUNS)
            .where(RUNS.c.lifecycle.in_(FINAL), RUNS.c.updated_at < before)
        )
        n_runs, n_finished = runs.scalar_one(), finished.scalar_one()
        n_entries, first, last = entries.one()
    return Plan(before, upto, n_runs, n_entries, first, last, n_finished - n_runs)


async def purge(
    store: Store,
    plan: Plan,
    now: datetime,
    *,
    batch: int = BATCH,
    progress: Callable[[Purged], Awaitable[None]] | None = None,
) -> Purged:
    """Delete what `plan` found, `batch` runs per transaction; what was deleted."""
    if batch < 1:
        raise PurgeError("--batch must be at least 1")
    done = Purged()
    cursor = ""
    while True:
        async with store.write() as tx:
            started = time.perf_counter()  # held from here: waiting for the lock is not
            if store.engine.dialect.name == "postgresql":
                await tx.execute(_LOCK)
            rows = await tx.fetch(_BATCH, plan.before, cursor, plan.upto, batch)
            ids = [row["id"] for row in rows]
            if ids:
                await _delete(tx, ids, now, done)
                # Their entries are all at or below `upto`, their counters folded: so
                # the run census can let them go (signoff.engine.storage.census).
                places = [(r["definition"], r["state"], r["lifecycle"]) for r in rows]
                await census.forget(store, tx, places, plan.upto)
        done.longest_s = max(done.longest_s, time.perf_counter() - started)
        if not ids:
            return done
        # The jobs it deleted left moves behind (signoff.engine.storage.job_counts): folded
        # batch by batch, a big purge leaves no backlog for the next /metrics read to add up.
        await job_counts.fold(store)
        done.batches += 1
        cursor = ids[-1]
        if progress is not None:
            await progress(done)


async def _delete(tx: Tx, ids: Sequence[str], now: datetime, done: Purged) -> None:
    entries = await tx.fetch(_ENTRIES, list(ids))
    gone = {int(e["seq"]) for e in entries}
    ends: list[tuple[int, int | None, dict[str, Any]]] = []  # (kept entry, after_seq, last)
    start: dict[str, Any] | None = None  # the first entry of the purged range being walked
    for entry in entries:
        if entry["pred"] not in gone:
            start = entry
        if entry["succ"] in gone:
            continue
        if entry["succ"] is None or start is None:  # the newest entry is never purged
            raise PurgeError(f"seq {entry['seq']} is the newest entry: it cannot be purged")
        ends.append((int(entry["succ"]), start["pred"], entry))
    # A kept entry that already ends an earlier purged range, now joined to this one: it
    # still links to the last entry of that range.
    earlier = {r["seq"]: r for r in await tx.fetch(_ANCHORS, [seq for seq, _, _ in ends])}
    # Ranges end at kept entries only: an entry purged now loses the row it had.
    await tx.execute(_UNANCHOR, [*gone, *earlier])
    ranges = []
    for seq, after, last in ends:
        linked = earlier.get(seq, last)
        ranges.append(
            {
                "seq": seq,
                "after_seq": after,
                "last_seq": linked["last_seq"],
                "last_hash": linked["last_hash"],
            }
        )
    if ranges:
        await tx.execute(_ANCHOR, ranges, now)
    done.add("purged ranges recorded", len(ends))
    for table, statement in _DELETES.items():
        done.add(table, await tx.execute(statement, list(ids)))
