"""What /metrics' job gauges cost, before and after they came from counters (issue 17):
measured by the commands below, kept in bench/gauges17.json, rendered into RESULTS.md by
bench/check17_gauges.py.

    flock /tmp/bench.lock .venv/bin/python -m bench.gauges metrics \\
        --a /tmp/gauges_before --b . --sizes 10000,100000 --db sqlite,postgres --save
    flock /tmp/bench.lock .venv/bin/python -m bench.gauges metrics --sides B --sizes 1000000 \\
        --a /tmp/gauges_before --b . --save
    flock /tmp/bench.lock .venv/bin/python -m bench.gauges probe URL --save
    flock /tmp/bench.lock .venv/bin/python -m bench.gauges triggers --save
    flock /tmp/bench.lock .venv/bin/python -m bench.alternate --a /tmp/gauges_before --b . \\
        --pairs 3 --save gauges17 batch batch-pg

`metrics`: for each database and size, bench/growth.py's measurement (a database seeded by
bench/seed.py, a `signoff serve` over it, 3 repetitions of up to 100 sequential requests of each
read) by checkout A, then by B (B first at every other size), each with its own code and
virtualenv; /metrics' p50 and p99 are kept, with one run's GET as a control that neither side
changes. `probe`: on a database seeded and kept (URL), each read /metrics makes of the jobs,
timed alone on the engine's kind of read connection (median of 40): the ready jobs counted by
kind (what /metrics read before), the due count, the unclaimed jobs, the counts read now and the
whole census. `triggers`: microseconds per job write on the raw driver with the triggers on
`jobs` and without them (trigger_cost). The round trips A/B (bench/alternate.py) is kept in
bench/check15.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text

RAW = Path(__file__).parent / "gauges17.json"
KEPT = ("metrics", "get run")
READS = (
    "an empty read (SELECT 1)",
    "ready jobs by kind, GROUP BY (before)",
    "due jobs, a range by due time",
    "unclaimed due jobs by kind, a range by due time",
    "job counts: the counters, and whether moves are left (after)",
    "the whole census, runs and jobs (after)",
)
_MEASURE = (
    "import asyncio, json, sys; from bench.growth import measure; print('RESULT ' +"
    " json.dumps(asyncio.run(measure(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))))"
)


def load(path: Path = RAW) -> dict[str, Any]:
    return dict(json.loads(path.read_text())) if path.exists() else {}


def _save(key: str, value: Any) -> None:
    data = load()
    data[key] = value
    RAW.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


def grow(checkout: Path, backend: str, runs: int, reps: int) -> dict[str, Any]:
    """bench/growth.py's figures at one size, measured by `checkout`'s own code."""
    done = subprocess.run(
        [str(checkout / ".venv/bin/python"), "-c", _MEASURE, backend, str(runs), str(reps)],
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": str(checkout)},
        capture_output=True,
        text=True,
        timeout=3600,
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"{checkout} {backend} {runs}:\n{done.stdout}\n{done.stderr[-3000:]}")
    found = json.loads(line.removeprefix("RESULT "))
    return {name: found["figures"][name] for name in KEPT}


def metrics(
    checkouts: dict[str, Path], sizes: list[int], dbs: list[str], reps: int
) -> dict[str, Any]:
    got: dict[str, Any] = {}
    turn = 0
    for db in dbs:
        backend = "sqlite" if db == "sqlite" else "postgresql"
        for runs in sizes:
            order = list(checkouts.items())
            for side, checkout in order if turn % 2 == 0 else order[::-1]:
                figures = grow(checkout, backend, runs, reps)
                got.setdefault(db, {}).setdefault(str(runs), {})[side] = figures
                print(db, runs, side, json.dumps(figures), flush=True)
            turn += 1
    return got


async def probe(url: str, calls: int = 40) -> dict[str, Any]:
    """Each job read of /metrics, alone: the median ms of `calls`, with the rows it is over."""
    from signoff.engine.storage import job_counts
    from signoff.engine.storage.queries import RunQueries
    from signoff.engine.storage.schema import JOBS, RUNS
    from signoff.engine.storage.store import Store
    from signoff.machines.registry import build_registry

    store = Store.open(url)
    queries = RunQueries(store, build_registry(0.0))
    now = datetime.now(UTC)
    ready = JOBS.c.status == "ready"
    by_kind = select(JOBS.c.kind, func.count()).where(ready).group_by(JOBS.c.kind)
    due = select(func.count()).where(ready, JOBS.c.due_at <= now)

    def one(statement: Any) -> Callable[[], Awaitable[Any]]:
        async def run() -> Any:
            async with store.read() as conn:
                return (await conn.execute(statement)).all()

        return run

    async def counts() -> Any:
        async with store.read() as conn:
            return await job_counts.read(conn)

    calls_of: list[Callable[[], Awaitable[Any]]] = [
        one(text("SELECT 1")),
        one(by_kind),
        one(due),
        lambda: queries.overdue(now),
        counts,
        lambda: queries.census(now),
    ]
    reads = dict(zip(READS, calls_of, strict=True))
    found: dict[str, Any] = {"database": store.engine.dialect.name, "ms": {}}
    try:
        async with store.read() as conn:
            found["runs"] = (await conn.execute(select(func.count()).select_from(RUNS))).scalar()
            found["ready"] = (await conn.execute(select(func.count()).where(ready))).scalar()
            found["due"] = (await conn.execute(due)).scalar()
        for name, read in reads.items():
            await read()
            took = []
            for _ in range(calls):
                started = time.perf_counter()
                await read()
                took.append((time.perf_counter() - started) * 1000)
            found["ms"][name] = statistics.median(took)
    finally:
        await store.dispose()
    return found


_INSERT = (
    "INSERT INTO jobs (run_id, kind, state, payload, status, attempts, max_attempts, due_at,"
    " created_for_version, created_at, updated_at) VALUES ($1, 'approval', 's', $2, 'ready', 0,"
    " 5, $3, 1, $3, $3)"
)
_STATUS = "UPDATE jobs SET status = $2, updated_at = $3 WHERE id = $1"


async def trigger_cost(backend: str, n: int) -> dict[str, Any]:
    """Microseconds per job write on the raw driver, in one transaction of `n` inserts, `n`
    claims and `n` settles (each a statement of its own, as the engine writes them) and one
    delete of them all, with the triggers and with them dropped, on fresh databases."""
    from bench.common import fresh_database
    from signoff.engine.storage.migrate import upgrade
    from signoff.engine.storage.statements import sql
    from signoff.engine.storage.store import Store

    drop = {
        "sqlite": [f"DROP TRIGGER {t}" for t in ("job_moves_insert", "job_moves_update")]
        + [f"DROP TRIGGER {t}" for t in ("job_moves_rekind", "job_moves_delete")],
        "postgresql": ["ALTER TABLE jobs DISABLE TRIGGER USER"],
    }
    insert, status = sql(_INSERT), sql(_STATUS)
    found: dict[str, Any] = {"n": n}
    for triggers in (True, False):
        async with fresh_database(backend) as url:
            store = Store.open(url)
            try:
                await upgrade(store)
                if not triggers:
                    async with store.engine.begin() as conn:
                        for statement in drop[backend]:
                            await conn.execute(text(statement))
                took: dict[str, float] = {}
                now = datetime.now(UTC)
                async with store.write() as tx:
                    started = time.perf_counter()
                    for i in range(n):
                        await tx.execute(insert, f"run-{i}", {"i": i}, now)
                    took["insert"] = time.perf_counter() - started
                    for phase, to in (("claim", "running"), ("settle", "done")):
                        started = time.perf_counter()
                        for i in range(1, n + 1):
                            await tx.execute(status, i, to, now)
                        took[phase] = time.perf_counter() - started
                    started = time.perf_counter()
                    await tx.execute(sql("DELETE FROM jobs"))
                    took["delete"] = time.perf_counter() - started
            finally:
                await store.dispose()
        label = "with triggers" if triggers else "without"
        found[label] = {phase: s * 1e6 / n for phase, s in took.items()}
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("metrics")
    m.add_argument("--a", type=Path, required=True)
    m.add_argument("--b", type=Path, required=True)
    m.add_argument("--sizes", default="10000,100000")
    m.add_argument("--db", default="sqlite,postgres")
    m.add_argument("--reps", type=int, default=3)
    m.add_argument("--sides", default="A,B", help="B alone: the after side only")
    m.add_argument("--save", action="store_true")
    p = sub.add_parser("probe")
    p.add_argument("url")
    p.add_argument("--save", action="store_true")
    t = sub.add_parser("triggers")
    t.add_argument("--db", default="sqlite,postgres")
    t.add_argument("--n", type=int, default=20_000)
    t.add_argument("--reps", type=int, default=3)
    t.add_argument("--save", action="store_true")
    args = parser.parse_args()
    if args.command == "triggers":
        costs: dict[str, Any] = {}
        for db in args.db.split(","):
            backend = "sqlite" if db == "sqlite" else "postgresql"
            costs[db] = [asyncio.run(trigger_cost(backend, args.n)) for _ in range(args.reps)]
            print(db, json.dumps(costs[db]), flush=True)
        if args.save:
            _save("triggers", costs)
        return
    if args.command == "metrics":
        sizes = [int(n) for n in args.sizes.split(",")]
        both = {"A": args.a.resolve(), "B": args.b.resolve()}
        sides = {side: both[side] for side in args.sides.split(",")}
        got = metrics(sides, sizes, args.db.split(","), args.reps)
        if args.save:
            merged = load().get("metrics", {})
            for db, by_size in got.items():
                for runs, by_side in by_size.items():
                    merged.setdefault(db, {}).setdefault(runs, {}).update(by_side)
            _save("metrics", merged)
        return
    found = asyncio.run(probe(args.url))
    print(json.dumps(found, indent=1))
    if args.save:
        key = f"{found['database']} {found['runs']}"
        _save("probe", {**load().get("probe", {}), key: found})


if __name__ == "__main__":
    main()
