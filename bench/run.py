"""Runs every benchmark side by side on this machine; writes bench/results.json, then renders
bench/RESULTS.md and the README's benchmark headline from it (bench/report.py).

    .venv/bin/pip install -e ".[test,bench]" && apt-get install wrk
    .venv/bin/python -m bench.run [--n 1000] [--reps 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop

from bench import floors, http, report, roundtrip, sse
from bench.common import PG_ADMIN, Figure, fresh_database

RAW = report.RAW  # every repetition, to re-render or compare


async def repeat(reps: int, make: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Figure]:
    runs = [await make() for _ in range(reps)]
    return {key: Figure([r[key] for r in runs]) for key in runs[0]}


async def dbos(backend: str, n: int, concurrency: int, mode: str = "lanes") -> dict[str, Any]:
    async with fresh_database("sqlite" if backend == "sqlite" else "pg") as url:
        if backend == "sqlite":
            target = "sqlite:///" + url.split("///", 1)[1]
        else:
            target = url.replace("postgresql+asyncpg", "postgresql+psycopg")
        done = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "bench.dbos_peer",
                backend if backend == "sqlite" else "pg",
                str(n),
                str(concurrency),
                target,
                mode,
            ],
            capture_output=True,
            text=True,
            timeout=3600,
        )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def cpu_reference_us() -> float:
    """limits.md's CPU speed reference: `python -m timeit "sum(range(1000))"` (12.9 µs there).
    This VM's speed drifts by a third over hours; RESULTS.md records it at start and end."""
    import timeit

    return min(timeit.repeat("sum(range(1000))", number=20000, repeat=5)) / 20000 * 1e6


async def main(n: int, reps: int) -> None:
    started = time.time()
    out: dict[str, Any] = {"cpu-ref-us": [cpu_reference_us()]}
    for backend in ("sqlite", "pg"):
        for c in (1, 16):
            print(f"round trips {backend} c={c}", flush=True)
            out[f"rt-{backend}-{c}"] = await repeat(
                reps, lambda b=backend, c=c: roundtrip.roundtrips(b, n, c)
            )
            dbos_n = n if (backend == "pg" or c > 1) else min(30, n)
            print(f"dbos {backend} c={c} n={dbos_n}", flush=True)
            out[f"dbos-{backend}-{c}"] = await repeat(
                reps, lambda b=backend, c=c, m=dbos_n: dbos(b, m, c)
            )
            out[f"dbos-{backend}-{c}-n"] = dbos_n
        print(f"batch {backend}", flush=True)
        out[f"batch-{backend}"] = await repeat(reps, lambda b=backend: roundtrip.batch(b, n, 16))
        out[f"dbos-batch-{backend}"] = await repeat(reps, lambda b=backend: dbos(b, n, 16, "batch"))
        out[f"rate-{backend}"] = await repeat(reps, lambda b=backend: _rate(b))
    print("http", flush=True)
    out["http-rt"] = await repeat(reps, lambda: http.http_roundtrips("sqlite", min(n, 300), 16))
    out["http-approve"] = await repeat(reps, lambda: http.approve_rate("sqlite", 10000, 4))
    print("sse", flush=True)
    out["sse"] = await repeat(reps, lambda: sse.sse_latency("sqlite", 1000, 10))
    for count in (1000, 5000, 10000):
        out[f"idle-{count}"] = await repeat(1, lambda k=count: sse.idle_clients("sqlite", k))
    print("floors", flush=True)
    out["floor-sqlite"] = await repeat(reps, lambda: _wrap(asyncio.to_thread(floors.sqlite_floor)))
    out["floor-pg"] = await repeat(reps, lambda: _wrap(floors.postgres_floor()))
    out["floor-chart"] = await repeat(reps, lambda: _wrap(asyncio.to_thread(floors.chart_floor)))
    out["engine-chart"] = await repeat(
        reps, lambda: _wrap(asyncio.to_thread(floors.engine_chart_rate))
    )
    out["cpu-ref-us"].append(cpu_reference_us())
    out["elapsed"] = time.time() - started
    raw = {
        k: {kk: vv.values for kk, vv in v.items()} if isinstance(v, dict) else v
        for k, v in out.items()
    }
    raw["run"] = {
        "n": n,
        "reps": reps,
        "platform": platform.platform(),
        "cpus": os.cpu_count() or 0,
        "postgres": PG_ADMIN,
    }
    RAW.write_text(json.dumps(raw, indent=1))
    # Rendered from the file just written, so `python -m bench.report` gives the same bytes.
    report.write(report.load(RAW))
    print(f"wrote {RAW}, {report.RESULTS} and the headline in {report.README}", flush=True)


async def _rate(backend: str) -> dict[str, float]:
    return {"tps": await roundtrip.transition_rate(backend)}


async def _wrap(value: Awaitable[float]) -> dict[str, float]:
    return {"ops": await value}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1000, help="round trips per measurement")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each figure")
    args = parser.parse_args()
    tempfile.tempdir = tempfile.gettempdir()
    uvloop.run(main(args.n, args.reps))
