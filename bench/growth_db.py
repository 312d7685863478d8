"""What bench/growth.py asks the seeded database directly: the runs and seqs its requests use,
the database's size, and how long `signoff migrate` takes over the last migration."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from alembic import command
from sqlalchemy import Connection, func, select, text

from bench.seed import sqlite_path
from signoff.engine.storage.migrate import alembic_config, current
from signoff.engine.storage.queries import encode_cursor
from signoff.engine.storage.schema import HISTORY, RUNS
from signoff.engine.storage.store import Store


@dataclass(frozen=True)
class Sample:
    ids: list[str]  # random runs
    refs: list[str]  # their refs
    waiting: list[str]  # approval runs waiting for approval, newest first
    deep_cursor: str  # the cursor of the run halfway down the list
    day_seq: int  # the last seq stored before a day ago
    last_seq: int


async def sample(url: str, day_ago: datetime) -> Sample:
    store = Store.open(url)
    try:
        async with store.read() as conn:
            n = (await conn.execute(select(func.count()).select_from(RUNS))).scalar_one()
            rows = await conn.execute(
                select(RUNS.c.id, RUNS.c.ref_id).order_by(func.random()).limit(500)
            )
            ids, refs = zip(*rows.all(), strict=True)
            waiting = await conn.execute(
                select(RUNS.c.id)
                .where(
                    RUNS.c.definition == "approval",
                    RUNS.c.state == "waiting_for_approval",
                    RUNS.c.lifecycle == "waiting",
                )
                .order_by(RUNS.c.id.desc())
                .limit(1000)
            )
            deep = await conn.execute(
                select(RUNS.c.id).order_by(RUNS.c.id.desc()).offset(n // 2).limit(1)
            )
            first = await conn.execute(
                select(func.min(HISTORY.c.seq)).where(HISTORY.c.at >= day_ago)
            )
            last = (await conn.execute(select(func.max(HISTORY.c.seq)))).scalar_one()
            return Sample(
                list(ids),
                [r for r in refs if r],
                list(waiting.scalars()),
                encode_cursor(deep.scalar_one()),
                (first.scalar_one() or last + 1) - 1,
                last,
            )
    finally:
        await store.dispose()


async def sizes(url: str, runs: int) -> dict[str, Any]:
    """The database's bytes per run, and history's share (its table and indexes)."""
    if url.startswith("sqlite"):
        total, history = _sqlite_sizes(sqlite_path(url))
    else:
        store = Store.open(url)
        try:
            async with store.read() as conn:
                got = await conn.execute(
                    text(
                        "SELECT pg_database_size(current_database()),"
                        " pg_total_relation_size('history')"
                    )
                )
                total, history = got.one()
        finally:
            await store.dispose()
    return {"bytes_per_run": total / runs, "history_share": history / total, "bytes": total}


def _sqlite_sizes(path: str) -> tuple[int, int]:
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    history = db.execute(
        "SELECT sum(pgsize) FROM dbstat WHERE name = 'history' OR name IN"
        " (SELECT name FROM sqlite_master WHERE tbl_name = 'history')"
    ).fetchone()[0]
    # The pages in use: pages a delete freed (the seed's fold empties `pending_counts`) stay
    # in the file for the next writes.
    page, count, free = (
        db.execute(f"PRAGMA {p}").fetchone()[0]
        for p in ("page_size", "page_count", "freelist_count")
    )
    db.close()
    return page * (count - free), int(history)


def _alembic(connection: Connection, action: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    getattr(command, action)(config, revision)


async def migrate_down(url: str) -> dict[str, Any]:
    """The schema one revision down (alembic), then `signoff migrate` timed back to head."""
    store = Store.open(url)
    try:
        head = await current(store)
        started = time.perf_counter()
        async with store.migrating() as conn:
            await conn.run_sync(partial(_alembic, action="downgrade", revision="-1"))
            await conn.commit()
        down = time.perf_counter() - started
        below = await current(store)
    finally:
        await store.dispose()
    env = {**os.environ, "SIGNOFF_DATABASE_URL": url}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "signoff", "migrate"], env=env, check=True)
    return {
        "from": below,
        "to": head,
        "downgrade_s": down,
        "migrate_s": time.perf_counter() - started,
    }
