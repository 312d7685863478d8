"""`signoff purge` of 100,000 finished runs, on SQLite and PostgreSQL, while live runs keep
moving: how fast it exports and deletes, its longest transaction, what a transition on a live
run waits meanwhile, and the database's size before, after, and after VACUUM.

The database is filled directly (the dispatcher would take an hour): finished `approval` runs
of four history entries each (create, process, processed, approve or cancel) and one job,
finished 60 to 30 days ago, with the entries of live runs interleaved among theirs (a live
run's entry after about one finished run in three, so the purge leaves ~30,000 ranges), every
entry chained by `signoff.engine.audit.chain` as the write path does and the stats fold's mark at
the last one. Then a runtime creates 20 live runs through the engine and toggles them (pause,
resume) in a loop while the purge runs: the purge is the engine function behind the command,
exporting to a file first and checking it.

    flock /tmp/bench.lock .venv/bin/python -m bench.purge [--runs 100000] [--backend sqlite]
        [--repeat 3] [--save]

`--save` adds each repetition's figures to bench/purge.json (by database); bench/report.py renders
them into RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from bench.common import Figure, fresh_database, percentile
from signoff.engine.audit import chain
from signoff.engine.audit.formats import ndjson, read
from signoff.engine.audit.verify import Checker
from signoff.engine.runtime import Runtime
from signoff.engine.settings import Settings
from signoff.engine.storage.audit import chain_start, export
from signoff.engine.storage.migrate import upgrade
from signoff.engine.storage.purge import plan, purge
from signoff.engine.storage.purge_records import purge_records
from signoff.engine.storage.reclaim import size, vacuum
from signoff.engine.storage.store import Store
from signoff.machines.registry import build_registry

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
RAW = Path(__file__).parent / "purge.json"
ENC = msgspec.json.Encoder()
RUN_COLUMNS = (
    "id", "definition", "definition_version", "version", "ref_id", "ref_type", "input", "state",
    "configuration", "business_history", "lifecycle", "lifecycle_configuration",
    "lifecycle_history", "context", "created_by", "created_at", "updated_at", "tasks", "entered",
)  # fmt: skip
HISTORY_COLUMNS = (
    "seq", "run_id", "version", "at", "actor", "event", "data", "reason", "business_from",
    "business_to", "lifecycle_from", "lifecycle_to", "run", "hash",
)  # fmt: skip
JOB_COLUMNS = (
    "run_id", "kind", "state", "payload", "status", "attempts", "max_attempts", "due_at",
    "created_for_version", "created_at", "updated_at",
)  # fmt: skip
STEPS = [  # event, business from → to, lifecycle from → to
    ("create", [], ["unprocessed"], [], ["running"]),
    ("process", ["unprocessed"], ["sending_to_queue"], ["running"], ["running"]),
    ("processed", ["sending_to_queue"], ["waiting_for_approval"], ["running"], ["waiting"]),
]
FINISH = {
    "approve": (["waiting_for_approval"], ["finished"], ["waiting"], ["completed"], "completed"),
    "cancel": (
        ["waiting_for_approval"], ["waiting_for_approval"], ["waiting"], ["cancelled"], "cancelled"
    ),
}  # fmt: skip


def synthetic(runs: int, now: datetime) -> Iterator[tuple[str, Any]]:
    """("run", row), ("entry", row), ("job", row) in seq order, chained."""
    rng = random.Random(17)
    prev, seq = chain.GENESIS, 0
    start = now - timedelta(days=60)
    step = timedelta(days=30) / runs
    live: list[tuple[str, int]] = []

    def entry(run_id: str, version: int, at: datetime, event: str, ends: Any) -> tuple[str, Any]:
        nonlocal prev, seq
        seq += 1
        bf, bt, lf, lt = ends
        actor = "alice" if event in ("create", "process") else "approver"
        view = {
            "id": run_id,
            "version": version,
            "state": bt[0] if bt else "",
            "input": {"output": 0.9},
        }
        d = chain.digest(run_id, version, at, actor, event, {}, None, (bf, bt), (lf, lt))
        prev = chain.link(prev, seq, d)
        return "entry", (
            seq,
            run_id,
            version,
            at,
            actor,
            event,
            {},
            None,
            bf,
            bt,
            lf,
            lt,
            view,
            prev,
        )

    for i in range(runs):
        t = start + step * i
        run_id = str(uuid.UUID(int=rng.getrandbits(128)))
        for v, (event, bf, bt, lf, lt) in enumerate(STEPS, start=1):
            yield entry(run_id, v, t + timedelta(seconds=v), event, (bf, bt, lf, lt))
        finish = "approve" if rng.random() < 0.8 else "cancel"
        bf, bt, lf, lt, lifecycle = FINISH[finish]
        done = t + timedelta(seconds=10)
        yield entry(run_id, 4, done, finish, (bf, bt, lf, lt))
        yield "run", _run(run_id, bt, lifecycle, lt, 4, t, done)
        yield "job", (run_id, "send_to_queue", "sending_to_queue", {}, "done", 1, 5, t, 2, t, t)
        if rng.random() < 0.3:  # a live run's entry between this finished run and the next
            if not live or rng.random() < 0.5:
                live.append((str(uuid.UUID(int=rng.getrandbits(128))), 0))
            k = rng.randrange(len(live))
            live_id, version = live[k]
            event = "create" if version == 0 else "pause"
            _, bf, bt, lf, lt = STEPS[0]
            yield entry(live_id, version + 1, t + timedelta(seconds=11), event, (bf, bt, lf, lt))
            live[k] = (live_id, version + 1)
    for live_id, version in live:
        yield (
            "run",
            _run(
                live_id,
                ["unprocessed"],
                "running",
                ["running"],
                version,
                start,
                now - timedelta(days=1),
            ),
        )


def _run(
    run_id: str,
    state: list[str],
    lifecycle: str,
    lc: list[str],
    version: int,
    created: datetime,
    updated: datetime,
) -> tuple[Any, ...]:
    return (
        run_id, "approval", 1, version, None, None, {"output": 0.9}, state[0], state, {}, lifecycle,
        lc, {}, {}, "alice", created, updated, [], {},
    )  # fmt: skip


def fill_sqlite(url: str, runs: int, now: datetime) -> int:
    db = sqlite3.connect(url.split(":///", 1)[1])
    db.execute("PRAGMA synchronous=OFF")

    def cell(v: Any) -> Any:
        if isinstance(v, dict | list):
            return ENC.encode(v).decode()
        if isinstance(v, datetime):
            return v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        return v

    tables = {
        "run": ("runs", RUN_COLUMNS),
        "entry": ("history", HISTORY_COLUMNS),
        "job": ("jobs", JOB_COLUMNS),
    }
    batches: dict[str, list[Any]] = {k: [] for k in tables}
    last = 0

    def flush(kind: str) -> None:
        table, columns = tables[kind]
        marks = ",".join("?" * len(columns))
        db.executemany(f"INSERT INTO {table} ({','.join(columns)}) VALUES ({marks})", batches[kind])
        batches[kind].clear()

    for kind, row in synthetic(runs, now):
        batches[kind].append([cell(v) for v in row])
        last = row[0] if kind == "entry" else last
        if len(batches[kind]) == 20_000:
            flush(kind)
    for kind in tables:
        flush(kind)
    db.execute("UPDATE stats_rollup SET seq = ? WHERE id = 1", (last,))
    db.commit()
    db.execute("ANALYZE")
    db.close()
    return last


async def fill_pg(url: str, runs: int, now: datetime) -> int:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    tables = {
        "run": ("runs", RUN_COLUMNS),
        "entry": ("history", HISTORY_COLUMNS),
        "job": ("jobs", JOB_COLUMNS),
    }
    batches: dict[str, list[Any]] = {k: [] for k in tables}
    last = 0

    def cell(v: Any) -> Any:
        return ENC.encode(v).decode() if isinstance(v, dict | list) else v

    async def flush(kind: str) -> None:
        table, columns = tables[kind]
        await conn.copy_records_to_table(table, records=batches[kind], columns=list(columns))
        batches[kind].clear()

    try:
        for kind, row in synthetic(runs, now):
            batches[kind].append(tuple(cell(v) for v in row))
            last = row[0] if kind == "entry" else last
            if len(batches[kind]) == 20_000:
                await flush(kind)
        for kind in tables:
            await flush(kind)
        await conn.execute("SELECT setval('history_seq_seq', $1)", last)
        await conn.execute("UPDATE stats_rollup SET seq = $1 WHERE id = 1", last)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return last


async def measure(backend: str, runs: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    async with fresh_database(backend) as url:
        store = Store.open(url)
        await upgrade(store)
        await store.dispose()
        t = time.perf_counter()
        await asyncio.to_thread(
            fill_sqlite, url, runs, now
        ) if backend == "sqlite" else await fill_pg(url, runs, now)
        filled_s = time.perf_counter() - t
        rt = Runtime(Settings(database_url=url, workers=0, failure_rate=0.0), build_registry(0.0))
        await rt.start()
        try:
            live = [
                (
                    await rt.dispatcher.create("approval", actor="alice", input={"output": 0.9})
                ).run_id
                for _ in range(20)
            ]
            return await _purge(rt, url, live, now, runs, filled_s)
        finally:
            await rt.stop()


async def _purge(
    rt: Runtime, url: str, live: list[str], now: datetime, runs: int, filled_s: float
) -> dict[str, Any]:
    store = Store.open(url, pool_size=2)  # the command's own connections
    waits: dict[str, list[float]] = {"export": [], "delete": []}
    phase = ["export"]
    stop = asyncio.Event()

    async def transitions() -> None:
        paused = False
        while not stop.is_set():
            for run_id in live:
                t = time.perf_counter()
                await rt.dispatcher.dispatch(run_id, "resume" if paused else "pause", actor="ops")
                waits[phase[0]].append(time.perf_counter() - t)
            paused = not paused

    try:
        size_before = await size(store)
        mover = asyncio.create_task(transitions())
        t0 = time.perf_counter()
        found = await plan(store, now - timedelta(days=29), datetime.now(UTC))
        t1 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "purged.ndjson"
            assert found.first_seq is not None
            start = await chain_start(store)
            with path.open("wb") as out:
                async for line in export(
                    store, start, since_seq=found.first_seq - 1, until_seq=found.last_seq
                ):
                    out.write(ndjson(line))
            # In a thread: the command checks in its own process, not on the engine's loop.
            verdict = await asyncio.to_thread(_check, path)
            assert verdict.ok, verdict
            export_bytes = path.stat().st_size
        t2 = time.perf_counter()
        phase[0] = "delete"
        done = await purge(store, found, datetime.now(UTC))
        await purge_records(store, found.before, done)
        t3 = time.perf_counter()
        stop.set()
        await mover
        size_after = await size(store)
        t4 = time.perf_counter()
        await vacuum(store)
        t5 = time.perf_counter()
        size_vacuumed = await size(store)
        return {
            "runs": runs, "purged": done.rows.get("runs", 0), "entries": found.entries,
            "exported": verdict.checked, "ranges": done.rows.get("purged ranges recorded", 0),
            "fill_s": filled_s, "plan_s": t1 - t0, "export_s": t2 - t1, "delete_s": t3 - t2,
            "batches": done.batches, "longest_ms": done.longest_s * 1000,
            "vacuum_s": t5 - t4, "export_mb": export_bytes / 1e6,
            "size_before_mb": size_before / 1e6, "size_after_mb": size_after / 1e6,
            "size_vacuumed_mb": size_vacuumed / 1e6,
            **{f"{p}_{k}": v for p, w in waits.items() for k, v in _waits(w).items()},
        }  # fmt: skip
    finally:
        await store.dispose()


def _check(path: Path) -> Any:
    checker = Checker()
    with path.open() as lines:
        checker.feed(read(lines))
    return checker.verdict()


def _waits(waits: list[float]) -> dict[str, float]:
    """A live run's transitions meanwhile: how many, and what they took (ms)."""
    return {
        "transitions": len(waits),
        "p50_ms": percentile(waits, 50) * 1000,
        "p99_ms": percentile(waits, 99) * 1000,
        "max_ms": max(waits, default=0.0) * 1000,
    }


def load(path: Path = RAW) -> dict[str, Any]:
    return dict(json.loads(path.read_text())) if path.exists() else {}


def section(data: dict[str, Any]) -> list[str]:
    """The purge section of RESULTS.md, from purge.json."""
    if not data:
        return []
    lines = [
        "",
        "## Check after issue 17: retention",
        "",
        "`flock /tmp/bench.lock .venv/bin/python -m bench.purge --backend B --repeat 3 --save`",
        "(one hold per database): 100,000 `approval` runs finished 60 to 30 days ago, four",
        "history entries and a job each, filled directly with their hashes chained as the write",
        "path chains them, and a live run's entry after about one finished run in three; then 20",
        "live runs created through the engine are paused and resumed in a loop while the",
        "engine's purge runs from connections of its own (500 runs per transaction): the plan",
        "(the stats fold first), the export of the purged seq range to a file and its check, the",
        "deletes, then VACUUM. Median over the repetitions (min–max). `longest tx` is the",
        "longest any batch held the write lock, through its commit; `transition` is what a live",
        "run's pause or resume took meanwhile.",
        "",
        "| | SQLite | PostgreSQL |",
        "|---|---|---|",
    ]
    rows = [
        ("runs purged", "purged", "{:,.0f}"),
        ("history entries exported (purged and between)", "exported", "{:,.0f}"),
        ("purged-range ends recorded (later joined ones too)", "ranges", "{:,.0f}"),
        ("export + check, s", "export_s", "{:,.1f}"),
        ("delete, s", "delete_s", "{:,.1f}"),
        ("delete rate, runs/s", "rate", "{:,.0f}"),
        ("longest tx, ms", "longest_ms", "{:,.0f}"),
        ("transition during the deletes p50, ms", "delete_p50_ms", "{:,.1f}"),
        ("transition during the deletes p99, ms", "delete_p99_ms", "{:,.1f}"),
        ("transition during the deletes max, ms", "delete_max_ms", "{:,.0f}"),
        ("database before, MB", "size_before_mb", "{:,.0f}"),
        ("after the deletes, MB", "size_after_mb", "{:,.0f}"),
        ("after VACUUM, MB", "size_vacuumed_mb", "{:,.0f}"),
        ("VACUUM, s", "vacuum_s", "{:,.1f}"),
    ]
    for label, key, fmt in rows:
        cells = []
        for db in ("sqlite", "postgresql"):
            runs = data.get(db, [])
            values = [r["purged"] / r["delete_s"] if key == "rate" else r[key] for r in runs]
            cells.append(Figure(values).show(fmt) if values else "–")
        lines.append(f"| {label} | {' | '.join(cells)} |")
    lines += ["", *NOTES]
    return lines


NOTES = [
    "The purged runs' entries interleave with the live runs' (as old finished runs do with",
    "long-lived ones), so the export holds the whole seq range from the first purged entry to",
    "the last, and each kept entry right after purged ones gets a row in `audit_purged` (about",
    "one per purged run here: a worst case). SQLite's file grows during the deletes (the",
    "write-ahead log) and VACUUM brings it to a ninth of its size before. PostgreSQL's VACUUM",
    "makes the space reusable but gives the files back only at their ends: the size stays",
    "about where it was, and new rows fill the freed pages; VACUUM FULL (which locks each",
    "table while it rewrites it) or pg_repack returns it to the filesystem.",
    "",
    "The transitions' maxima are not the purge's locks alone: this harness runs the purge and",
    "the engine in one process, so a transition also waits out the purge's own Python work and",
    "the garbage collector on the shared event loop (a maximum above a second came in the",
    "export phase too, which takes no write lock); `signoff purge` runs in a process of its",
    "own. On SQLite a transition waits for the batch that holds the one write lock (p99 about",
    "one batch), and SQLite's busy handler polls with growing sleeps, so a waiter can miss",
    "the gaps between batches; `--batch` smaller shortens each hold.",
]


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), action="append")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args()
    for backend in args.backend or ("sqlite", "postgresql"):
        got = []
        for _ in range(args.repeat):
            got.append(await measure(backend, args.runs))
            print(backend, ENC.encode(got[-1]).decode(), flush=True)
        if args.save:
            data = load()
            data[backend] = got
            RAW.write_text(json.dumps(data, indent=1) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    asyncio.run(main())
