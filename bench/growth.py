"""Cost against data size (issue 17): each per-run figure at 10k, 100k and 1M runs, SQLite and
PostgreSQL, on a `signoff serve` process over a database filled by bench/seed.py.

    flock /tmp/bench.lock .venv/bin/python -m bench.growth --sizes 10000 --db sqlite \\
        --label before --save
    .venv/bin/python -m bench.growth --render      # the Growth section of RESULTS.md

Each (size, database) is one fresh database: seeded, then served, then measured in 3
repetitions (median and spread reported): sequential GETs over HTTP (p50/p99 of up to 100
requests or 4 s per repetition) of every list filter (a common and a rare value of state,
lifecycle and ref_type; a ref_id; a ref_id prefix; a page deep in the cursor), one run, its
history, the inbox, the stats and /metrics; an SSE client resuming from the first seq of the
last day, until it has every entry stored when it connected (entries/s, seconds to drain; the
last day holds more entries on a bigger database), and from 20,000 entries back (entries/s at
the same drain at every size);
creates and approves of seeded waiting runs, 16 at a time (runs/s). Then, server stopped: the
database's size per run and history's share, and `signoff migrate` timed after alembic took the
schema one revision down (it upgrades that last migration over the full tables).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.common import fresh_database, gather_limited, percentile
from bench.growth_db import Sample, migrate_down, sample, sizes
from bench.seed import seed
from tests.helpers import free_socket

RAW = Path(__file__).parent / "growth.json"
REQUESTS, SECONDS, FLOOR = 100, 4.0, 20  # per repetition of a read
WRITES, CONCURRENCY = 300, 16
SSE_BACK = 20_000  # entries: the same drain at every size


def reads(s: Sample) -> dict[str, Any]:
    """Figure name → a request path (or a function of the request number giving one)."""
    rng = random.Random(3)

    def pick(values: list[str], fmt: str) -> Any:
        return lambda i: fmt.format(rng.choice(values))

    return {
        "list": "/api/runs",
        "list definition": "/api/runs?definition=purchase_order",
        "list state": "/api/runs?state=waiting_for_approval",
        "list state (rare)": "/api/runs?state=error",
        "list lifecycle": "/api/runs?lifecycle=waiting",
        "list lifecycle (rare)": "/api/runs?lifecycle=cancelled",
        "list ref_type": "/api/runs?ref_type=order",
        "list ref_type (rare)": "/api/runs?ref_type=contract",
        "list ref_id": pick(s.refs, "/api/runs?ref_id={}"),
        "list ref_id_prefix": pick([r[:-2] for r in s.refs], "/api/runs?ref_id_prefix={}"),
        "list deep cursor": f"/api/runs?cursor={s.deep_cursor}",
        "get run": pick(s.ids, "/api/runs/{}"),
        "get history": pick(s.ids, "/api/runs/{}/history"),
        "tasks": "/api/tasks",
        "stats": "/api/definitions/approval/stats",
        "metrics": "/metrics",
    }


async def _read(client: httpx.AsyncClient, path: Any) -> list[float]:
    took: list[float] = []
    begun = time.perf_counter()
    for i in range(REQUESTS):
        url = path(i) if callable(path) else path
        started = time.perf_counter()
        response = await client.get(url)
        took.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code, response.text[:200])
        if i + 1 >= FLOOR and time.perf_counter() - begun > SECONDS:
            break
    return took


async def _drain(base: str, after: int, last: int) -> tuple[int, float]:
    """(entries, seconds) an SSE client takes from seq `after` to `last`."""
    count = 0
    started = time.perf_counter()
    headers = {"Last-Event-ID": str(after)}
    async with (
        httpx.AsyncClient(base_url=base, timeout=120) as client,
        client.stream("GET", "/api/stream", headers=headers) as response,
    ):
        async for line in response.aiter_lines():
            if line.startswith("id:"):
                count += 1
                if int(line[3:]) >= last:
                    break
    return count, time.perf_counter() - started


async def _writes(client: httpx.AsyncClient, waiting: list[str]) -> dict[str, float]:
    async def create(_: int) -> None:
        body = {"definition": "approval", "input": {"output": 0.9}, "ref_type": "request"}
        assert (await client.post("/api/runs", json=body)).status_code == 201

    async def approve(i: int) -> None:
        response = await client.post(f"/api/runs/{waiting[i]}/approve", json={})
        assert response.status_code == 200, response.text[:200]

    rates = {}
    for name, work in (("create", create), ("approve", approve)):
        started = time.perf_counter()
        await gather_limited(len(waiting), CONCURRENCY, work)
        rates[name] = len(waiting) / (time.perf_counter() - started)
    return rates


@asynccontextmanager
async def serve(url: str) -> AsyncIterator[str]:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "SIGNOFF_DATABASE_URL": url, "SIGNOFF_PORT": str(port)}
    env["SIGNOFF_FAILURE_RATE"] = "0"
    proc = subprocess.Popen(
        [sys.executable, "-m", "signoff", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            for _ in range(1200):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=60)


async def measure(backend: str, runs: int, reps: int) -> dict[str, Any]:
    found: dict[str, Any] = {"runs": runs}
    async with fresh_database(backend) as url:
        found["seed_s"] = await seed(url, runs)
        s = await sample(url, datetime.now(UTC) - timedelta(days=1))
        found["day_entries"] = s.last_seq - s.day_seq
        paths = reads(s)
        figures: dict[str, dict[str, list[float]]] = {}

        def add(name: str, key: str, value: float) -> None:
            figures.setdefault(name, {}).setdefault(key, []).append(value)

        async with serve(url) as base:
            limits = httpx.Limits(max_connections=CONCURRENCY)
            async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
                for path in paths.values():  # warm up: connections, caches, descriptions
                    for i in range(3):
                        await client.get(path(i) if callable(path) else path)
                for rep in range(reps):
                    for name, path in paths.items():
                        took = await _read(client, path)
                        add(name, "p50_ms", percentile(took, 50))
                        add(name, "p99_ms", percentile(took, 99))
                    entries, seconds = await _drain(base, s.day_seq, s.last_seq)
                    add("sse resume (a day back)", "entries_per_s", entries / seconds)
                    add("sse resume (a day back)", "drain_s", seconds)
                    back = max(0, s.last_seq - SSE_BACK)
                    entries, seconds = await _drain(base, back, s.last_seq)
                    add(f"sse resume ({SSE_BACK:,} back)", "entries_per_s", entries / seconds)
                    each = min(WRITES, len(s.waiting) // reps)
                    chunk = s.waiting[rep * each : (rep + 1) * each]
                    for name, rate in (await _writes(client, chunk)).items():
                        add(name, "per_s", rate)
        found["figures"] = figures
        found.update(await sizes(url, runs))
        found["migrate"] = await migrate_down(url)
    return found


def load() -> dict[str, Any]:
    return dict(json.loads(RAW.read_text())) if RAW.exists() else {}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--label", default="before")
    parser.add_argument("--save", action="store_true")
    parser.add_argument("--render", action="store_true", help="print RESULTS.md's section")
    args = parser.parse_args()
    if args.render:
        from bench.growth_report import section

        print("\n".join(section(load())))
        return
    for db in args.db.split(","):
        backend = "sqlite" if db == "sqlite" else "postgresql"
        for runs in (int(n) for n in args.sizes.split(",")):
            found = await measure(backend, runs, args.reps)
            found["at"] = datetime.now(UTC).isoformat(timespec="seconds")
            print(db, runs, json.dumps(found)[:2000], flush=True)
            if args.save:
                data = load()
                data.setdefault(args.label, {}).setdefault(db, {})[str(runs)] = found
                RAW.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
