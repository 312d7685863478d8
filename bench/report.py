"""Renders bench/RESULTS.md from one run's figures (medians, with min–max over repetitions)."""

from __future__ import annotations

from typing import Any

COMMAND = ".venv/bin/python -m bench.run --n {n} --reps {reps}"


def ratio(a: Any, b: Any) -> str:
    return f"{a.median / b.median:.1f}×"


def report(r: dict[str, Any], n: int, reps: int, machine: str, cpus: int, pg: str) -> str:
    ms = "{:,.1f}"
    lines = [
        "# Benchmark results",
        "",
        f"Produced by `{COMMAND.format(n=n, reps=reps)}` (the whole file, in one run of "
        f"{r['elapsed'] / 60:.0f} minutes) on {machine}, {cpus} CPUs; PostgreSQL at {pg} "
        "(local, stock settings); SQLite files in a temp directory (WAL, synchronous=FULL). "
        f"Every figure is the median of {reps} repetitions with the min–max in brackets; "
        "Signoff and DBOS Transact ran one after the other in the same run, on the same "
        "databases. Setup: `pip install -e \".[test,bench]\"` (DBOS 3.4 from PyPI, the `bench` "
        "extra) and `apt-get install wrk`.",
        "",
        "## 1–2. Approval round trips, in-process, Signoff beside DBOS",
        "",
        "### The issue's pattern: start N, then approve N",
        "",
        f"N = {n} runs (Signoff) or workflows (DBOS), 16 at a time in each phase: start them "
        "(create + process; DBOS: `start_workflow`) until every one waits for approval, then "
        "approve all (Signoff: `dispatch(approve)`; DBOS: `DBOS.send`). Round trips/s = N / "
        "(start phase + approval phase), the definition limits.md used for DBOS's reference "
        "figures (58/s SQLite, 86/s PostgreSQL); DBOS also gets 0.5 s, not counted, for its "
        "`recv`s to register. Latency: approve (send) → finished.",
        "",
        "| backend | Signoff round trips/s | DBOS round trips/s | Signoff / DBOS | "
        "Signoff start / approval phase, per s | DBOS start / approval phase, per s | "
        "Signoff approve→finished p50 / p99 ms | DBOS p50 / p99 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for backend in ("sqlite", "pg"):
        s, d = r[f"batch-{backend}"], r[f"dbos-batch-{backend}"]
        lines.append(
            f"| {'SQLite' if backend == 'sqlite' else 'PostgreSQL'} | "
            f"{s['rps'].show('{:,.1f}')} | {d['rps'].show('{:,.1f}')} | "
            f"{ratio(s['rps'], d['rps'])} | {s['start_rps'].show()} / "
            f"{s['approve_rps'].show()} | {d['start_rps'].show()} / {d['approve_rps'].show()} | "
            f"{s['p50_ms'].show(ms)} / {s['p99_ms'].show(ms)} | "
            f"{d['p50_ms'].show(ms)} / {d['p99_ms'].show(ms)} |")
    lines += [
        "",
        "### One round trip after another, in C lanes",
        "",
        f"N = {n} round trips per measurement: create → process → job → waiting_for_approval → "
        "approve → finished (Signoff: the engine's Python API, failure rate 0, input.output "
        "= 0.9, an embedded worker woken on commit; DBOS: a workflow with one step, then "
        "`DBOS.recv()`, approved with `DBOS.send`), each round trip one after the other within "
        "a lane, C lanes at once. Latency: approve (send) → finished, as the caller sees it.",
        "",
        "| backend | C | Signoff round trips/s | DBOS round trips/s | Signoff / DBOS | "
        "Signoff approve→finished p50 / p99 ms | DBOS p50 / p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for backend in ("sqlite", "pg"):
        for c in (1, 16):
            s, d = r[f"rt-{backend}-{c}"], r[f"dbos-{backend}-{c}"]
            dn = r[f"dbos-{backend}-{c}-n"]
            note = "" if dn == n else f" (N = {dn})"
            lines.append(
                f"| {'SQLite' if backend == 'sqlite' else 'PostgreSQL'} | {c} | "
                f"{s['rps'].show('{:,.1f}')} | {d['rps'].show('{:,.1f}')}{note} | "
                f"{ratio(s['rps'], d['rps'])} | {s['p50_ms'].show(ms)} / {s['p99_ms'].show(ms)} | "
                f"{d['p50_ms'].show(ms)} / {d['p99_ms'].show(ms)} |")
    lines += [
        "",
        "DBOS on SQLite polls for `recv` messages once a second (no push path), so one lane "
        "completes about one round trip per second; its C = 1 SQLite figure uses a smaller N "
        "(shown) so that the run stays within minutes.",
        "",
        "## 3. Over HTTP (`signoff serve`, SQLite, loopback)",
        "",
        "| measurement | figure |",
        "|---|---|",
        f"| round trips/s, {min(n, 300)} round trips, 16 at a time (an httpx client in the same "
        "2 CPUs polls `GET /api/runs/{id}` until the job has run) | "
        f"{r['http-rt']['rps'].show('{:,.1f}')} |",
        f"| approve request latency in those round trips, p50 / p99 ms | "
        f"{r['http-rt']['p50_ms'].show(ms)} / {r['http-rt']['p99_ms'].show(ms)} |",
        "| approve requests/s accepted (wrk -t1 -c32 -d4s on 10,000 runs prepared waiting "
        "through the engine API before the server starts; each run approved once, refusals "
        "not counted) | "
        f"{r['http-approve']['rps'].show('{:,.0f}')} |",
        f"| wrk approve latency p50 / p99 ms | {r['http-approve']['p50_ms'].show(ms)} / "
        f"{r['http-approve']['p99_ms'].show(ms)} |",
        "",
        "## 4. Live feed",
        "",
        "| measurement | figure |",
        "|---|---|",
        f"| approve → SSE event received, 1,000 clients on the global stream, p50 / p99 ms | "
        f"{r['sse']['p50_ms'].show(ms)} / {r['sse']['p99_ms'].show(ms)} |",
        f"| events delivered / expected | {r['sse']['delivered'].show()} / "
        f"{r['sse']['expected'].show()} |",
    ]
    for count in (1000, 5000, 10000):
        idle = r[f"idle-{count}"]
        lines.append(
            f"| {count:,} idle clients: held, KiB per client, RSS MiB, seconds to connect | "
            f"{idle['held'].show()}, {idle['kib_per_client'].show('{:,.1f}')}, "
            f"{idle['rss_mib'].show('{:,.0f}')}, {idle['connect_s'].show('{:,.1f}')} |")
    fs, fp, fc = r["floor-sqlite"]["ops"], r["floor-pg"]["ops"], r["floor-chart"]["ops"]
    ec = r["engine-chart"]["ops"]
    es, ep = r["rate-sqlite"]["tps"], r["rate-pg"]["tps"]
    lines += [
        "",
        "## 5. Floors: how close the engine runs to them",
        "",
        "| floor | floor ops/s | engine transitions/s (sequential, one run) | engine / floor |",
        "|---|---|---|---|",
        f"| sqlite3, one transaction shaped like a transition (SELECT, UPDATE, INSERT 1 KB, "
        f"COMMIT; FULL) | {fs.show()} | {es.show()} | {es.median / fs.median:.2f} |",
        f"| asyncpg, one connection, same shape + FOR UPDATE, advisory lock, NOTIFY | "
        f"{fp.show()} | {ep.show()} | {ep.median / fp.median:.2f} |",
        f"| python-statemachine: new instances of both charts + one event + the lifecycle "
        f"event | {fc.show()} | {ec.show()} (a pooled instance + a remembered lifecycle step) "
        f"| {ec.median / fc.median:.1f} |",
        "",
    ]
    lines += targets(r) + ANALYSIS.splitlines()
    return "\n".join(lines) + "\n"


def targets(r: dict[str, Any]) -> list[str]:
    def met(ok: bool) -> str:
        return "met" if ok else "**missed**"

    sq, pg = r["batch-sqlite"]["rps"], r["batch-pg"]["rps"]
    dsq, dpg = r["dbos-batch-sqlite"]["rps"], r["dbos-batch-pg"]["rps"]
    p50, p99 = r["rt-sqlite-1"]["p50_ms"].median, r["rt-sqlite-1"]["p99_ms"].median
    sse99 = r["sse"]["p99_ms"].median
    idle = r["idle-10000"]
    approve = r["http-approve"]["rps"].median
    return [
        "## Targets (from the benchmark issue)",
        "",
        "| figure | target | measured here | |",
        "|---|---|---|---|",
        f"| round trips/s, SQLite, in-process (start N, approve N) | ≥ 5× DBOS | "
        f"{sq.median / dsq.median:.1f}× ({sq.median:,.1f} vs {dsq.median:,.1f}) | "
        f"{met(sq.median >= 5 * dsq.median)} |",
        f"| round trips/s, PostgreSQL, in-process (start N, approve N) | ≥ 4× DBOS | "
        f"{pg.median / dpg.median:.1f}× ({pg.median:,.1f} vs {dpg.median:,.1f}) | "
        f"{met(pg.median >= 4 * dpg.median)} |",
        f"| approve → finished, p50 / p99 (SQLite, C = 1) | ≤ 5 / 20 ms | {p50:,.1f} / "
        f"{p99:,.1f} ms | {met(p50 <= 5 and p99 <= 20)} |",
        f"| approve → SSE event, 1,000 clients, p99 | ≤ 30 ms | {sse99:,.1f} ms | "
        f"{met(sse99 <= 30)} |",
        f"| idle SSE clients in one process | 10,000 at ≤ 30 KiB each | "
        f"{idle['held'].median:,.0f} at {idle['kib_per_client'].median:,.1f} KiB | "
        f"{met(idle['held'].median >= 10000 and idle['kib_per_client'].median <= 30)} |",
        f"| HTTP approve requests/s | ≥ 1,500 | {approve:,.0f} | {met(approve >= 1500)} |",
        "",
    ]


ANALYSIS = """## What limits each figure, measured, and what would move it

**One transition costs about 10 ms of CPU in the engine's process**, against well under 1 ms for
the same transaction shape in raw sqlite3 or raw asyncpg (section 5: the engine runs at 1–7 % of
those floors). Every figure above follows from that: throughput stays near 20
round trips/s whether 1 or 16 run at once (one event loop does all of it), latency under load is
the queue in front of that loop, and the HTTP figures add request handling on the same two CPUs.
Profiled with cProfile on the round-trip benchmark and by timing each statement:

1. **SQLAlchemy Core on the hot path, 6–8 statements per transition.** Building, coercing and
   cache-keying each statement, then a greenlet switch and (SQLite) a thread hop per statement:
   0.2–0.5 ms each, before any I/O. *Would move it:* one round trip per transition (on PostgreSQL
   a single statement: a CTE that updates the run, inserts history and jobs and calls pg_notify;
   limits.md measures 3.5k such transactions/s on one connection), prepared statements built once,
   and on SQLite the whole transaction in one hop on a writer thread with group commit (15k–46k
   durable transactions/s measured there).
2. **Restoring two charts per transition: ~1.2 ms** (section 5). python-statemachine
   3.2 builds a chart instance, resolving every callback by name, each time; our approval chart
   has validators, guards and entry actions, so a restore is ~0.55 ms (approval) + ~0.35 ms
   (lifecycle) before the event. *Would move it:* derive the lifecycle step from a transition table
   computed once from the lifecycle chart instead of restoring it; reuse chart instances per
   (definition, configuration) by resetting their model; keep `allowed_events` cached (done).
3. **The feed reads back every committed entry** (one read transaction and a decode of the stored
   run view per transition) even when nobody follows it. *Would move it:* hand the committed entry
   to the in-process broadcaster directly, and read from the table only to catch up on other
   processes' commits (NOTIFY) or when a client is subscribed.
4. **DBOS beside it.** On SQLite Signoff wins because DBOS's `recv` polls once a second; on
   PostgreSQL DBOS (LISTEN/NOTIFY, plain psycopg) currently completes more round trips per second
   than Signoff: item 1 above is the difference.
5. **The live feed** delivers every event to every client (section 4). Fan-out to 1,000 clients is
   bounded by one process writing 1,000 sockets (encoded once, shared bytes); the p99 also carries
   the 1,000 reading clients running in the same two CPUs. Idle clients cost ~30 KiB each (uvicorn
   protocol + Litestar stream + one subscription queue); 10,000 were held.

None of these is a design change: the dispatch path, the schema and the guarantees stay; the work
is to make each transition cheaper. That is the next step for this issue.
"""


if __name__ == "__main__":
    # Re-render RESULTS.md from the last run's bench/results.json (no measuring).
    import json
    import os
    import platform
    import sys
    from pathlib import Path

    from bench.common import PG_ADMIN, Figure

    here = Path(__file__).parent
    raw = json.loads((here / "results.json").read_text())
    results: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, dict):
            results[key] = {k: Figure(v) for k, v in value.items()}
        else:
            results[key] = value
    n, reps = int(sys.argv[1]), int(sys.argv[2])
    text = report(results, n, reps, platform.platform(), os.cpu_count() or 0, PG_ADMIN)
    (here / "RESULTS.md").write_text(text)
