"""Resume drain: an SSE client that reconnects with Last-Event-ID 0 on a database of many
entries, and how many entries per second it receives until it has the newest one.

    .venv/bin/python -m bench.resume [--checkout PATH] [--backend sqlite|postgresql]
        [--entries 100000] [--reps 3]

A real `signoff serve` of `checkout` (its own virtualenv, so two checkouts compare A/B)
writes a realistic mix of runs (bench/history_mix.py) through HTTP; their runs and history
rows are then cloned (new run ids and seqs, the engine's own column values) up to
`--entries`. The client is a raw socket reading `GET /api/stream` until the frame whose id
is the newest seq arrives.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sqlite3
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from bench.common import fresh_database
from bench.history_mix import TOKENS, deploy, mix
from tests.helpers import free_socket

ROOT = Path(__file__).resolve().parent.parent
VIEWER = b"Authorization: Bearer o-secret\r\n"


def _clone_id(run_id: str, k: int) -> str:
    return f"{run_id[:24]}{k:012d}"


def _clone_sqlite(path: str, entries: int) -> int:
    conn = sqlite3.connect(path)
    runs = conn.execute("SELECT * FROM runs").fetchall()
    run_cols = [d[0] for d in conn.execute("SELECT * FROM runs LIMIT 0").description]
    hist = conn.execute("SELECT * FROM history ORDER BY seq").fetchall()
    hist_cols = [d[0] for d in conn.execute("SELECT * FROM history LIMIT 0").description]
    rid, hrun, hseq = run_cols.index("id"), hist_cols.index("run_id"), hist_cols.index("seq")
    seq = hist[-1][hseq]
    k = 0
    while seq < entries:
        k += 1
        new_runs = [
            tuple(_clone_id(v, k) if i == rid else v for i, v in enumerate(r)) for r in runs
        ]
        new_hist = []
        for h in hist:
            seq += 1
            row = list(h)
            row[hrun], row[hseq] = _clone_id(h[hrun], k), seq
            new_hist.append(tuple(row))
        conn.executemany(f"INSERT INTO runs VALUES ({','.join('?' * len(run_cols))})", new_runs)
        conn.executemany(f"INSERT INTO history VALUES ({','.join('?' * len(hist_cols))})", new_hist)
    conn.commit()
    conn.close()
    return int(seq)


async def _clone_pg(dsn: str, entries: int) -> int:
    conn = await asyncpg.connect(dsn)
    runs = [list(r.values()) for r in await conn.fetch("SELECT * FROM runs")]
    run_cols = [a.name for a in (await conn.prepare("SELECT * FROM runs")).get_attributes()]
    hist = [list(r.values()) for r in await conn.fetch("SELECT * FROM history ORDER BY seq")]
    hist_cols = [a.name for a in (await conn.prepare("SELECT * FROM history")).get_attributes()]
    rid, hrun, hseq = run_cols.index("id"), hist_cols.index("run_id"), hist_cols.index("seq")
    seq = hist[-1][hseq]
    k = 0
    while seq < entries:
        k += 1
        new_runs = [[_clone_id(v, k) if i == rid else v for i, v in enumerate(r)] for r in runs]
        new_hist = []
        for h in hist:
            seq += 1
            row = list(h)
            row[hrun], row[hseq] = _clone_id(h[hrun], k), seq
            new_hist.append(row)
        await conn.copy_records_to_table("runs", records=new_runs, columns=run_cols)
        await conn.copy_records_to_table("history", records=new_hist, columns=hist_cols)
    await conn.execute("SELECT setval('history_seq_seq', $1)", seq)
    await conn.execute("VACUUM ANALYZE")
    await conn.close()
    return int(seq)


async def _wait_up(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        for _ in range(600):
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError("server did not start")


async def drain(port: int, last: int) -> float:
    """Seconds from the request to the frame of seq `last`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    mark = b"id: %d\n" % last
    started = time.perf_counter()
    writer.write(
        b"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        + VIEWER
        + b"Last-Event-ID: 0\r\n\r\n"
    )
    tail, first = b"", True
    while chunk := await reader.read(1 << 20):
        if mark in tail + chunk[: len(mark)] or mark in chunk:
            took = time.perf_counter() - started
            writer.close()
            return took
        if first and not chunk.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(chunk[:500].decode(errors="replace"))
        first = False
        tail = chunk[-len(mark) :]
    raise RuntimeError("stream ended before the last entry")


async def measure(checkout: Path, backend: str, entries: int, reps: int) -> dict[str, Any]:
    async with fresh_database(backend) as url:
        sock = free_socket()
        port = sock.getsockname()[1]
        sock.close()
        env = {
            **os.environ,
            "SIGNOFF_DATABASE_URL": url,
            "SIGNOFF_PORT": str(port),
            "SIGNOFF_FAILURE_RATE": "0",
            "SIGNOFF_TOKENS": TOKENS,
            "PYTHONPATH": str(checkout),
        }
        proc = subprocess.Popen(
            [str(checkout / ".venv/bin/python"), "-m", "signoff", "serve"],
            env=env,
            cwd=checkout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            await _wait_up(base)
            await deploy(base)
            await mix(base, 60)
            await asyncio.sleep(0.5)
            if backend == "sqlite":
                path = make_url(url).database
                assert path is not None
                last = _clone_sqlite(path, entries)
            else:
                dsn = make_url(url).set(drivername="postgresql").render_as_string(False)
                last = await _clone_pg(dsn, entries)
            # The server's feed finds the clones by polling and reads past them first, else
            # they would also arrive live, overflow the client's mailbox and drop it.
            await asyncio.sleep(2 + last / 10_000)
            took = [await drain(port, last) for _ in range(reps)]
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    rates = [last / t for t in took]
    return {"entries": last, "per_s": rates, "median_per_s": round(statistics.median(rates))}


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkout", type=Path, default=ROOT)
    parser.add_argument("--backend", default="sqlite")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    result = asyncio.run(measure(args.checkout, args.backend, args.entries, args.reps))
    print("RESULT", json.dumps({"checkout": str(args.checkout), "backend": args.backend, **result}))


# The figures measured with this and bench/history_size.py, as bench/RESULTS.md shows them
# (bench/report.py renders it).
SECTION = """
## Check after issue 17: history size and resume

History rows now store a compact run view, `[definition_version, state, lifecycle, context,
allowed_events, tasks]`, instead of the whole view; readers rebuild the rest from the entry's
columns and the run's creation columns (README "What a history entry stores"). The feed reads
entries after a seq in one joined query per batch, builds each frame from the stored JSON text
without decoding it, and writes a resuming client's batch of 2,000 entries as one chunk.

**Bytes of history per run.** `.venv/bin/python -m bench.history_size --runs 300`, run from
each checkout (main d38fdab and this branch) under `flock /tmp/bench.lock`: 300 runs through a
real server (a third each: approval with its job and an approval; purchase order with legal
and two finance approvals; a chart document with a task claimed and approved), 1,400 entries;
the history table with its TOAST and indexes after VACUUM (SQLite: dbstat pages of `history`
and its indexes; PostgreSQL: `pg_total_relation_size('history')` after VACUUM FULL).

| | SQLite per run | per row | `run` column | PostgreSQL per run | per row | `run` column |
|---|---|---|---|---|---|---|
| whole view (main) | 8,506 | 1,823 | 876 | 8,684 | 1,861 | 954 |
| compact view | 4,560 | 977 | 259 | 5,844 | 1,252 | 356 |
| change | −46 % | | −70 % | −33 % | | −63 % |
| and the counters out of history | 3,072 | 658 | 259 | 4,178 | 895 | 356 |
| change from the whole view | −64 % | | | −52 % | | |

The compact view alone did not halve it on PostgreSQL: what was left per row there was the
stats counters (`counts`, 324 bytes, needed only until the fold reads them), jsonb's own
overhead on the compact array (356 bytes where SQLite's text takes 259), three indexes (~130
bytes) and the 65-byte hash. The counters now wait in a table of their own, `pending_counts`
(migration 0011), which the fold empties as it adds them (signoff.engine.storage.stats_rollup):
the last row, from `.venv/bin/python -m bench.history_size --runs 300` on this branch once that
landed (one run; the figures are bytes, not times). No migration rewrites history: rows written
before keep their whole view and their counters and read as before, so `signoff migrate` takes
no longer than it did on any database.

**Resume drain.** `.venv/bin/python -m bench.resume --checkout C --backend B --entries 30000
--reps 2`, under `flock /tmp/bench.lock`, each checkout with its own virtualenv: a real `signoff
serve` of checkout C writes 60 runs of the mix above through HTTP, their runs and history rows
are cloned (new run ids and seqs, the engine's own column values) to 30,240 entries, and a raw
socket client sends `GET /api/stream` with `Last-Event-ID: 0` and reads until the frame of the
newest seq. Entries/s, each repetition:

| database | main d38fdab | this branch | × |
|---|---|---|---|
| SQLite | 14,212 · 14,186 | 47,900 · 49,406 | 3.4 |
| PostgreSQL | 19,451 · 20,066 | 37,373 · 45,002 | 2.1 |

Where the time went before (cProfile of the feed's replay in-process, SQLite, 30,100 entries):
decoding the seven JSON columns of every row through SQLAlchemy (208,550 msgspec decodes, 0.74
of 1.97 s), converting and re-encoding each view, and a batch of 256 rows per read; one frame
per transport write. Now a row costs one small decode (the compact array into raw parts) and
one encode of the frame; on PostgreSQL `msgspec.json.format` compacts jsonb's text (8 calls per
row, the largest remaining cost there: one `json_build_array` of the columns per row would make
it one). The feed's guarantees hold: the replay still subscribes before reading, and every
chunk moves the client's last-sent seq, so the switch to live has no gap and no duplicate
(tests/test_feed.py, tests/test_history_views.py).
"""


def section() -> list[str]:
    return ["", *SECTION.strip().splitlines()]


if __name__ == "__main__":
    main()
