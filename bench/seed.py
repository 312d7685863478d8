"""Fill a migrated database with N runs as the engine would have written them, in minutes.

    .venv/bin/python -m bench.seed URL --runs 1000000

The real engine takes one template run along each path shape (bench/seed_templates.py: a mix
over `approval`, `purchase_order` and a chart document; waiting with tasks, with a timer,
approved, rejected then approved, failed, cancelled). Every row they wrote, in every table that
names the run (runs, history, jobs, inbox, idempotency, and whatever a later schema adds), is
read back as stored and copied N times in bulk (executemany in one transaction on SQLite, COPY on
PostgreSQL): each copy gets a time-ordered run id of its own start time (UUIDv7 as
signoff.engine.ids makes them), its own ref, every timestamp moved by the same whole number of
seconds (inside JSON too; dates alone, as in the stats counters, with them; times far outside
the templates' span, such as "no due date", stay), and history a new seq in time order with
the audit hash chain recomputed (signoff.engine.audit.chain). The templates' own rows are
removed: the database holds the N copies. Then the stats counters are folded from scratch by
the engine's own `roll_up`. Copies of finished paths start over the last year, live ones over
the last week (a waiting run is a recent one), so a seq a day old exists at every size.

The run census (`run_counts`, what /metrics reads) is folded from the copies' counters by the
same `roll_up`: each copy's entries get their template entry's counters (dates moved) in
`pending_counts`, as the engine writes them, and the fold adds and deletes them. The job
counts (`job_counts`, /metrics' queue gauges) need nothing of their own: the triggers on `jobs`
record each copy inserted and each template row removed as a move, as they do any writer's,
and the engine's own fold adds them up. A table with rows that are neither a run's nor known
here is reported: a new counter kept beside the runs would have to be rebuilt from the copies.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from bench.seed_pattern import Copies, Pattern, Tables, make_pattern
from bench.seed_templates import Template, make_templates
from signoff.engine.storage import job_counts
from signoff.engine.storage.stats_rollup import roll_up
from signoff.engine.storage.store import Store

YEAR = timedelta(days=365)
WEEK = timedelta(days=7)
# Tables whose rows are not a run's: the deployed document, the chain's start, the counters
# (and the job moves not folded yet).
KNOWN = {
    "alembic_version",
    "definitions",
    "audit_chain",
    "audit_purged",
    "stats_rollup",
    "pending_counts",
    "stat_counts",
    "run_counts",
    "job_counts",
    "job_moves",
}


def plan(patterns: list[Pattern], n: int, now: datetime, seed: int) -> list[tuple[float, int]]:
    """(start as a POSIX time, pattern index) of each copy, oldest first."""
    rng = random.Random(seed)
    weights = [p.template.shape.weight for p in patterns]
    picks = rng.choices(range(len(patterns)), weights, k=n)
    end = (now - timedelta(minutes=1)).timestamp()
    starts = []
    for k in picks:
        span = (WEEK if patterns[k].template.shape.live else YEAR).total_seconds()
        starts.append((float(int(end - rng.random() * span)), k))
    starts.sort()
    return starts


@dataclass
class Prepared:
    """The templates' patterns, their copies to make, and their own rows to remove."""

    copies: Copies
    remove: list[tuple[str, Any]]

    def batches(self, n: int, now: datetime, seed: int) -> Any:
        return self.copies.batches(plan(self.copies.patterns, n, now, seed))


def _owner(row: dict[str, Any], ids: Sequence[str]) -> str | None:
    for value in row.values():
        if isinstance(value, str):
            for run_id in ids:
                if run_id in value:
                    return run_id
    return None


def prepare(
    tables: Tables, rows: dict[str, list[dict[str, Any]]], templates: list[Template]
) -> Prepared:
    """Sort the stored rows (each with its `_key`) by the template run they name."""
    ids = [t.run_id for t in templates]
    # The templates' counters wait for the fold keyed by seq: each goes with its entry.
    pending = {int(r["seq"]): r["counts"] for r in rows.pop("pending_counts", [])}
    for row in rows.get("history", []):
        row["counts"] = pending.get(int(row["seq"]))
    found: dict[str, dict[str, list[dict[str, Any]]]] = {i: {} for i in ids}
    remove, unknown = [], set()
    for table, table_rows in rows.items():
        for row in table_rows:
            key = row.pop("_key")
            owner = _owner(row, ids)
            if owner is not None:
                found[owner].setdefault(table, []).append(row)
                remove.append((table, key))
            elif table not in KNOWN:
                unknown.add(table)
    if unknown:
        print(f"seed: rows that name no run, left as they are, in {sorted(unknown)}")
    patterns = [make_pattern(t, found[t.run_id], tables) for t in templates]
    return Prepared(Copies(patterns, tables), remove)


# --- SQLite: executemany in one transaction --------------------------------------------------


def _sqlite_tables(conn: sqlite3.Connection) -> Tables:
    names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    columns, serial, jsons = {}, {}, {}
    for name in names:
        if name.startswith("sqlite_"):
            continue
        info = list(conn.execute(f"PRAGMA table_info({name})"))
        columns[name] = [r[1] for r in info]
        keys = [r for r in info if r[5]]
        serial[name] = keys[0][1] if len(keys) == 1 and keys[0][2].upper() == "INTEGER" else None
        jsons[name] = {r[1] for r in info if r[2].upper() in ("JSON", "JSONB")}
    return Tables(columns, serial, jsons)


def seed_sqlite(path: str, templates: list[Template], n: int, now: datetime, seed: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None, timeout=60)
    conn.row_factory = sqlite3.Row
    tables = _sqlite_tables(conn)
    rows = {
        t: [dict(r) for r in conn.execute(f"SELECT rowid AS _key, * FROM {t}")]
        for t in tables.columns
    }
    prepared = prepare(tables, rows, templates)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("DELETE FROM pending_counts")  # the templates': their copies get them
    for table, key in prepared.remove:
        conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (key,))
    for batch in prepared.batches(n, now, seed):
        for table, made in batch.items():
            cols = tables.copied(table)
            marks = ", ".join("?" * len(cols))
            conn.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", made)
    conn.execute("DELETE FROM stat_counts")
    conn.execute("DELETE FROM run_counts")  # the census, folded again from the copies' entries
    conn.execute("UPDATE stats_rollup SET seq = 0")
    conn.execute("COMMIT")
    # No ANALYZE: the engine never runs it on SQLite, so its planner works without statistics
    # (with them it plans differently: a skip-scan of (ref_type, ref_id) for a ref_id, say).
    conn.close()


# --- PostgreSQL: COPY in one transaction -----------------------------------------------------


async def _pg_tables(conn: asyncpg.Connection) -> Tables:
    found = await conn.fetch(
        "SELECT table_name, column_name, data_type, column_default, is_identity"
        " FROM information_schema.columns WHERE table_schema = 'public'"
        " ORDER BY table_name, ordinal_position"
    )
    columns: dict[str, list[str]] = {}
    serial: dict[str, str | None] = {}
    jsons: dict[str, set[str]] = {}
    for r in found:
        t = r["table_name"]
        columns.setdefault(t, []).append(r["column_name"])
        serial.setdefault(t, None)
        jsons.setdefault(t, set())
        if r["is_identity"] == "YES" or str(r["column_default"] or "").startswith("nextval"):
            serial[t] = r["column_name"]
        if r["data_type"] in ("json", "jsonb"):
            jsons[t].add(r["column_name"])
    return Tables(columns, serial, jsons)


async def seed_pg(dsn: str, templates: list[Template], n: int, now: datetime, seed: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        tables = await _pg_tables(conn)
        rows = {
            t: [dict(r) for r in await conn.fetch(f"SELECT ctid::text AS _key, * FROM {t}")]
            for t in tables.columns
        }
        prepared = prepare(tables, rows, templates)
        async with conn.transaction():
            await conn.execute("DELETE FROM pending_counts")  # the templates'
            for table, key in prepared.remove:
                await conn.execute(f"DELETE FROM {table} WHERE ctid = $1::text::tid", key)
            copied = set()
            for batch in prepared.batches(n, now, seed):
                for table, made in batch.items():
                    copied.add(table)
                    cols = tables.copied(table)
                    await conn.copy_records_to_table(table, records=made, columns=cols)
            for table in sorted(copied):  # history's seq was given: move its sequence past it
                column = tables.serial[table]
                if column is not None:
                    await conn.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'),"
                        f" (SELECT coalesce(max({column}), 0) + 1 FROM {table}), false)"
                    )
            await conn.execute("DELETE FROM stat_counts")
            await conn.execute("DELETE FROM run_counts")
            await conn.execute("UPDATE stats_rollup SET seq = 0")
        await conn.execute("VACUUM ANALYZE")  # what autovacuum does within a minute of a load
    finally:
        await conn.close()


def sqlite_path(url: str) -> str:
    return url.split(":///", 1)[1]


def pg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def seed(url: str, n: int, *, now: datetime | None = None, rand: int = 17) -> float:
    """Fill the database at `url` (a SQLAlchemy URL) with `n` runs; the seconds it took."""
    started = time.perf_counter()
    templates = await make_templates(url)
    now = now or datetime.now(UTC)
    if url.startswith("sqlite"):
        await asyncio.to_thread(seed_sqlite, sqlite_path(url), templates, n, now, rand)
    else:
        await seed_pg(pg_dsn(url), templates, n, now, rand)
    store = Store.open(url)
    try:
        await roll_up(store, batch=50_000)  # the stats counters, folded by the engine
        await job_counts.fold(store, batch=100_000)  # the copies' jobs, moved in by triggers
    finally:
        await store.dispose()
    if not url.startswith("sqlite"):
        await _settle_pg(pg_dsn(url))
    return time.perf_counter() - started


async def _settle_pg(dsn: str) -> None:
    """Give back what folding every copy's counters and job moves at once left in
    `pending_counts` and `job_moves` (a serving engine folds them a few at a time, and
    autovacuum keeps up): their heaps empty, their indexes are rebuilt small. SQLite reuses
    the freed pages (bench/growth_db.py counts the pages in use)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("VACUUM ANALYZE pending_counts, job_moves, job_counts")
        await conn.execute("REINDEX TABLE pending_counts")
        await conn.execute("REINDEX TABLE job_moves")
    finally:
        await conn.close()


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] = print) -> None:
    parser = argparse.ArgumentParser(description="Fill a database with N runs (bench/seed.py).")
    parser.add_argument("url", help="sqlite+aiosqlite:///FILE or postgresql+asyncpg://…")
    parser.add_argument("--runs", type=int, default=10_000)
    args = parser.parse_args(argv)
    took = asyncio.run(seed(args.url, args.runs))
    out(f"seeded {args.runs:,} runs in {took:.1f} s")


if __name__ == "__main__":
    main()
