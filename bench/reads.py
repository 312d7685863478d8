"""Reads at scale, before and after issue 17, A/B on the same data: `GET /api/runs?ref_id=X`,
filters on a rare state and a rare ref type, and what `/metrics` reads (the run census and the
job gauges), as the engine runs them (RunQueries, on the server's own kind of connection).

`prepare` fills a database at migration 0008 (the indexes before issue 17) with synthetic runs
(tests/plans_support.py: skewed definitions, states, lifecycles and ref types; 2 history
entries and 2-3 jobs per run), copies it and migrates the copy to the head, timing that
migration. `measure` alternates A (0008, the census counted with GROUP BY as before) and B
(head, the census read from run_counts) for `--rounds` rounds of `--requests` sequential
calls each, and prints medians in ms (median over rounds, and their spread).

    flock -s /tmp/bench.lock .venv/bin/python -m bench.reads prepare --backend sqlite --runs 100000
    flock /tmp/bench.lock .venv/bin/python -m bench.reads measure --save
    .venv/bin/python -m bench.reads drop

`--save` keeps the figures (each round's median) in bench/reads.json; bench/report.py renders
them into RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import func, select

from bench.common import PG_ADMIN, Figure
from signoff.engine.storage.migrate import upgrade
from signoff.engine.storage.queries import RunFilter, RunQueries
from signoff.engine.storage.schema import RUNS
from signoff.engine.storage.store import Store
from signoff.machines.registry import build_registry
from tests.plans_support import NOW, fill

STATE = Path("/tmp/signoff_bench_reads.json")
RAW = Path(__file__).parent / "reads.json"


async def prepare(backend: str, runs: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    if backend == "sqlite":
        a, b = (f"/tmp/signoff_bench_reads_{tag}_{x}.db" for x in "ab")
        url_a, url_b = (f"sqlite+aiosqlite:///{p}" for p in (a, b))
    else:
        names = [f"signoff_bench_reads_{tag}_{x}" for x in "ab"]
        url_a, url_b = (f"postgresql+asyncpg://postgres@127.0.0.1:5432/{n}" for n in names)
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'CREATE DATABASE "{names[0]}"')
        await admin.close()
    store = Store.open(url_a)
    started = time.perf_counter()
    await upgrade(store, "0008")
    await fill(store, runs, entries=2, tasks=False)
    await store.dispose()
    filled = time.perf_counter() - started
    if backend == "sqlite":
        shutil.copy(a, b)
    else:
        admin = await asyncpg.connect(PG_ADMIN)
        await admin.execute(f'CREATE DATABASE "{names[1]}" TEMPLATE "{names[0]}"')
        await admin.close()
    store = Store.open(url_b)
    started = time.perf_counter()
    await upgrade(store)
    migrated = time.perf_counter() - started
    if backend != "sqlite":
        async with store.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("ANALYZE")
    await store.dispose()
    print(
        f"{backend} {runs:,} runs: filled in {filled:.0f} s; migrate 0008 -> head {migrated:.1f} s"
    )
    return {"backend": backend, "runs": runs, "a": url_a, "b": url_b, "migrate_s": migrated}


def _old_census(store: Store) -> Callable[[], Awaitable[Any]]:
    """/metrics before issue 17: every run counted on each scrape (then the job gauges)."""
    q = RunQueries(store, build_registry(0.0))
    group = (RUNS.c.definition, RUNS.c.state, RUNS.c.lifecycle)

    async def census() -> Any:
        async with store.read() as conn:
            await conn.execute(select(*group, func.count()).group_by(*group))
        return await q.overdue(NOW)

    return census


async def measure(state: dict[str, Any], rounds: int, requests: int) -> dict[str, Any]:
    stores = {"A": Store.open(state["a"]), "B": Store.open(state["b"])}
    registry = build_registry(0.0)
    calls: dict[str, dict[str, Callable[[], Awaitable[Any]]]] = {}
    for variant, store in stores.items():
        q = RunQueries(store, registry)
        filters = {
            "GET /api/runs?ref_id=X": RunFilter(ref_id="INV-0004242"),
            "GET /api/runs?state=<rare>": RunFilter(state="s_rare"),
            "GET /api/runs?ref_type=<rare>": RunFilter(ref_type="rare_type"),
            "GET /api/runs?definition=&state=<rare in it>": RunFilter(
                definition="d_rare", state="waiting"
            ),
        }
        calls[variant] = {name: partial(q.page, where, 50, None) for name, where in filters.items()}
        calls[variant]["/metrics (census + job gauges)"] = (
            _old_census(store) if variant == "A" else partial(q.census, NOW)
        )
    got: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for variant in ("A", "B"):
            for name, call in calls[variant].items():
                await call()  # warm
                times = []
                for _ in range(requests):
                    started = time.perf_counter()
                    await call()
                    times.append((time.perf_counter() - started) * 1000)
                got.setdefault((name, variant), []).append(statistics.median(times))
    for store in stores.values():
        await store.dispose()
    print(f"{state['backend']}, {state['runs']:,} runs: median ms (spread over {rounds} rounds)")
    for name in calls["A"]:
        a, b = got[(name, "A")], got[(name, "B")]
        print(f"| {name} | {_show(a)} | {_show(b)} |")
    return {
        "runs": state["runs"],
        "migrate_s": state.get("migrate_s"),
        "ms": {name: {"A": got[(name, "A")], "B": got[(name, "B")]} for name in calls["A"]},
    }


def _show(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}–{max(values):.2f})"


async def drop(state: dict[str, Any]) -> None:
    for url in (state["a"], state["b"]):
        if not url.startswith("sqlite"):
            admin = await asyncpg.connect(PG_ADMIN)
            await admin.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
            await admin.close()


def load(path: Path = RAW) -> dict[str, Any]:
    return dict(json.loads(path.read_text())) if path.exists() else {}


def section(data: dict[str, Any]) -> list[str]:
    """The reads-at-scale section of RESULTS.md, from reads.json."""
    if not data:
        return []
    lines = [
        "",
        "## Check after issue 17: reads at scale",
        "",
        "`flock -s /tmp/bench.lock .venv/bin/python -m bench.reads prepare --backend B --runs N`,",
        "then `flock /tmp/bench.lock .venv/bin/python -m bench.reads measure --save` (3 rounds of",
        "30 sequential calls, A and B alternating in one lock hold): A is a database at migration",
        "0008 (the indexes before issue 17, `/metrics` counting runs with GROUP BY), B its copy",
        "migrated to the head, the same rows (synthetic, skewed: see bench/reads.py). Each call is",
        "the engine's own read (RunQueries) on the server's kind of connection, without HTTP.",
        "Median ms over the rounds (min–max).",
        "",
        "| database | runs | read | A: before | B: after | A/B |",
        "|---|---|---|---|---|---|",
    ]
    ms = "{:,.2f}"
    for key in sorted(data):
        r = data[key]
        name = "SQLite" if key.startswith("sqlite") else "PostgreSQL"
        for read, ab in r["ms"].items():
            a, b = Figure(ab["A"]), Figure(ab["B"])
            lines.append(
                f"| {name} | {r['runs']:,} | {read} | {a.show(ms)} | {b.show(ms)} |"
                f" {a.median / b.median:.1f}× |"
            )
    migrations = ", ".join(
        f"{'SQLite' if k.startswith('sqlite') else 'PostgreSQL'} {data[k]['migrate_s']:.1f} s"
        for k in sorted(data)
        if data[k].get("migrate_s") is not None
    )
    lines += [
        "",
        f"`signoff migrate` from 0008 to the head on these databases: {migrations} (new",
        "indexes, the census counted once). `/metrics` after: the census is a handful of",
        "`run_counts` rows; what is left is the job gauges, counted over the index of ready jobs",
        "(10,000 here: one per live run), which grows with the live runs, not with history.",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("step", choices=["prepare", "measure", "drop"])
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args()
    if args.step == "prepare":
        STATE.write_text(json.dumps(asyncio.run(prepare(args.backend, args.runs))))
        return
    state = json.loads(STATE.read_text())
    if args.step == "measure":
        found = asyncio.run(measure(state, args.rounds, args.requests))
        if args.save:
            data = load()
            data[f"{state['backend']}_{state['runs']}"] = found
            RAW.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        return
    asyncio.run(drop(state))
    for url in (state["a"], state["b"]):
        if url.startswith("sqlite"):
            Path(url.split("///", 1)[1]).unlink(missing_ok=True)
    STATE.unlink()


if __name__ == "__main__":
    main()
