"""History storage per run: a realistic mix (bench/history_mix.py) through a real server,
then the history table's bytes per row and per run on SQLite and PostgreSQL.

    .venv/bin/python -m bench.history_size [--runs 600]

SQLite: after VACUUM, the pages of `history` and its indexes (dbstat); PostgreSQL: after
VACUUM FULL, pg_total_relation_size('history') (heap, TOAST, indexes). Also the average
stored size of the `run` column alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sqlite3

import asyncpg
from sqlalchemy.engine import make_url

from bench.common import fresh_database
from bench.history_mix import TOKENS, deploy, mix
from tests.helpers import serve


async def _sqlite(url: str) -> dict[str, float]:
    path = make_url(url).database
    assert path is not None
    conn = sqlite3.connect(path)
    conn.execute("VACUUM")
    rows, runs = conn.execute("SELECT count(*), count(DISTINCT run_id) FROM history").fetchone()
    (total,) = conn.execute(
        "SELECT sum(pgsize) FROM dbstat WHERE name = 'history'"
        " OR name IN (SELECT name FROM sqlite_master WHERE tbl_name = 'history')"
    ).fetchone()
    (view,) = conn.execute("SELECT avg(length(run)) FROM history").fetchone()
    conn.close()
    return _figures(total, rows, runs, view)


async def _pg(url: str) -> dict[str, float]:
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    await conn.execute("VACUUM FULL history")
    rows, runs = await conn.fetchrow("SELECT count(*), count(DISTINCT run_id) FROM history")
    total = await conn.fetchval("SELECT pg_total_relation_size('history')")
    view = await conn.fetchval("SELECT avg(pg_column_size(run)) FROM history")
    await conn.close()
    return _figures(total, rows, runs, float(view))


def _figures(total: int, rows: int, runs: int, view: float) -> dict[str, float]:
    return {
        "rows": rows,
        "runs": runs,
        "bytes_per_row": round(total / rows),
        "bytes_per_run": round(total / runs),
        "run_column_per_row": round(view),
    }


async def measure(backend: str, runs: int) -> dict[str, float]:
    async with fresh_database(backend) as url:
        async with serve(url, tokens=TOKENS) as live:
            await deploy(live.url)
            await mix(live.url, runs)
        return await (_sqlite(url) if backend == "sqlite" else _pg(url))


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=600)
    args = parser.parse_args()
    for backend in ("sqlite", "postgresql"):
        print(backend, json.dumps(asyncio.run(measure(backend, args.runs))), flush=True)


if __name__ == "__main__":
    main()
