"""Bounded inbox counts, A/B on the same data: `GET /api/tasks` from two `signoff serve`
processes on one seeded database, A the commit before (counts exact over every task the caller
sees) and B this checkout (counts stop at SIGNOFF_TASK_COUNT_LIMIT, 1,000), taking turns.

    git clone -q /work/main /tmp/tasks_before && git -C /tmp/tasks_before checkout SHA
    (cd /tmp/tasks_before && python3 -m venv .venv && .venv/bin/pip install -q -e ".[test]")
    flock /tmp/bench.lock .venv/bin/python -m bench.inbox_counts --before /tmp/tasks_before \\
        --backend both --runs 100000 --rounds 3 --requests 60 --save

The database is bench/tasks.py's (bench/inbox_seed.py: every run waiting, 2,000 tasks per
approver, every one the admin's), seeded once per database. Each round, A then B (B then A in
every other round), each side times `--requests` sequential requests of each kind on one
keep-alive client after 5 unrecorded ones; a kind's figure is the median over rounds of each
round's p50 (and p99). `--save` keeps them in bench/inbox_counts.json; bench/report.py renders
them into RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from bench.common import Figure, fresh_database, percentile
from bench.inbox_seed import (
    copy_pg,
    copy_sqlite,
    definition,
    headers,
    make_templates,
    plan_copies,
    tokens,
)
from bench.server import serve_on

RAW = Path(__file__).parent / "inbox_counts.json"
NOTE = """
The admin's inbox was the one figure that grew with the open tasks ("Growth (issue 17)": 5 ms at
10k runs, 148 ms on SQLite and 51 ms on PostgreSQL at 1M): A counts all 100,000 of them with a
GROUP BY on every request; B reads the first 1,001 entries of `ix_inbox_who_due` and stops, so
what is left is the page (50 rows of the same index) and the request itself, which no longer
depend on how many tasks are open past the limit (1M runs was not measured here: the Growth
table's "after" rows, measured again with this change, have the inbox at 1M at 0.77× its 10k
time on SQLite and 1.00× on PostgreSQL). Smaller inboxes got faster too, the floor most: the
inbox's statements are now built once per shape and run with parameters (building them had cost
about 1 ms of every request). The approver's inbox on SQLite (2,000 tasks, over the limit) is the
one figure not better, its spread overlapping A's: both sides read all 2,000 rows for the page,
which sorts every task offered to the caller's names (several ranges of the index, merged by a
sort), and B then reads 1,001 rows under each of two names and hands 1,001 rows to Python where A
grouped 2,000 in SQL. Bounding that page as the counts are (a walk per name, merged) is what
would make an approver's request independent of their inbox's size. The page has one more such
case: tasks without a due time all sort at 9999-12-31, and a `sort=due` page orders those by when
they opened, which the index does not hold, so an inbox of many of them reads them all for its
page (seen in tests/test_plans.py's data, where no task has a due time; not measured here).
"""
# What each kind asks, and as whom: a07 holds 2,000 tasks, 400 of them of one definition.
KINDS = {
    "admin": ("admin", {"sort": "due"}),
    "approver": ("a07", {"sort": "due"}),
    "definition": ("a07", {"sort": "due", "definition": definition(2)}),
    "empty": ("ann", {"sort": "due"}),
}
LABELS = {
    "admin": "the admin's inbox (every task: {runs:,})",
    "approver": "an approver's inbox (2,000 tasks)",
    "definition": "the same, `definition=…` (400 tasks)",
    "empty": "an approver offered nothing (the floor)",
}


def _sha(checkout: Path) -> str:
    found = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    )
    return found.stdout.strip()


async def _round(base: str, requests: int) -> dict[str, dict[str, Any]]:
    """Each kind's p50 and p99 in ms on one server, and the counts it answered."""
    found: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        for kind, (who, params) in KINDS.items():
            took = []
            for n in range(5 + requests):
                started = time.perf_counter()
                answer = await client.get("/api/tasks", params=params, headers=headers(who))
                if n >= 5:
                    took.append(time.perf_counter() - started)
                assert answer.status_code == 200, answer.text
            counts = answer.json()["counts"]
            found[kind] = {
                "p50": percentile(took, 50) * 1000,
                "p99": percentile(took, 99) * 1000,
                "counts": {k: counts.get(k) for k in ("total", "overdue", "exact")},
            }
    return found


async def _seed(backend: str, url: str, runs: int, env: dict[str, str]) -> None:
    """bench/tasks.py's runs: templates moved through B's API, then copied on the raw driver."""
    async with serve_on(url, env) as (base, _), httpx.AsyncClient(base_url=base) as client:
        templates = await make_templates(client)
    plans = plan_copies(templates, runs)
    if backend == "sqlite":
        await asyncio.to_thread(copy_sqlite, make_url(url).database or "", templates, plans)
    else:
        await copy_pg(url.replace("postgresql+asyncpg", "postgresql"), templates, plans)


async def ab(backend: str, before: Path, runs: int, rounds: int, requests: int) -> dict[str, Any]:
    env = {"SIGNOFF_TOKENS": tokens()}
    figures: dict[str, dict[str, dict[str, list[float]]]] = {"A": {}, "B": {}}
    counts: dict[str, dict[str, Any]] = {}
    loads = []
    # Neither server runs workers: no fold of the copies' stats counters beside the requests.
    quiet = {**env, "SIGNOFF_WORKERS": "0"}
    async with fresh_database(backend) as url:
        await _seed(backend, url, runs, env)
        print(f"{backend}: seeded {runs:,} runs", flush=True)
        async with serve_on(url, quiet, before) as (a, _), serve_on(url, quiet) as (b, _):
            for i in range(rounds):
                order = [("A", a), ("B", b)]
                for side, base in order if i % 2 == 0 else order[::-1]:
                    measured = await _round(base, requests)
                    for kind, m in measured.items():
                        kept = figures[side].setdefault(kind, {"p50": [], "p99": []})
                        kept["p50"].append(m["p50"])
                        kept["p99"].append(m["p99"])
                        counts.setdefault(side, {})[kind] = m["counts"]
                    loads.append(os.getloadavg()[0])
                    shown = {k: round(m["p50"], 1) for k, m in measured.items()}
                    print(f"{backend} round {i + 1} {side} p50 ms {shown}", flush=True)
    return {
        "runs": runs,
        "a": _sha(before),
        "b": _sha(Path(__file__).parents[1]),
        "ms": figures,
        "counts": counts,
        "load": loads,
    }


def load(path: Path = RAW) -> dict[str, Any]:
    return dict(json.loads(path.read_text())) if path.exists() else {}


def section(data: dict[str, Any]) -> list[str]:
    """The bounded-counts section of RESULTS.md, from inbox_counts.json."""
    if not data:
        return []
    first = data[sorted(data)[0]]
    loads = [x for r in data.values() for x in r["load"]]
    lines = [
        "",
        "## Check after issue 17: bounded inbox counts",
        "",
        "`flock /tmp/bench.lock .venv/bin/python -m bench.inbox_counts --before /tmp/tasks_before",
        f"--backend both --runs {first['runs']} --rounds 3 --requests 60 --save`: bench/tasks.py's",
        "database (bench/inbox_seed.py: every run waiting, 2,000 tasks per approver, the admin",
        "seeing all of them), seeded once per database and served by two `signoff serve`",
        f"processes taking turns: A at {first['a']}, the commit before, whose counts are exact",
        f"over every task the caller may see, and B at {first['b']}, whose counts stop at",
        "`SIGNOFF_TASK_COUNT_LIMIT` (1,000), each checkout with its own virtualenv and neither",
        "running workers. Per round and side, 60 sequential requests of each kind on one",
        "keep-alive client (each figure includes the client's ~0.5 ms); the median over 3 rounds",
        "(A first in rounds 1 and 3) of each round's p50 and p99, min–max in brackets. Load",
        f"average {min(loads):.1f} to {max(loads):.1f} during the runs.",
        "",
        "| database | request | A p50 ms | B p50 ms | A/B | A p99 ms | B p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    ms = "{:,.1f}"
    for key in sorted(data, reverse=True):  # SQLite first
        r = data[key]
        name = "SQLite" if key == "sqlite" else "PostgreSQL"
        for kind, label in LABELS.items():
            a, b = (r["ms"][side][kind] for side in ("A", "B"))
            a50, b50 = Figure(a["p50"]), Figure(b["p50"])
            lines.append(
                f"| {name} | {label.format(runs=r['runs'])} | {a50.show(ms)} | {b50.show(ms)} |"
                f" {a50.median / b50.median:.1f}× | {Figure(a['p99']).show(ms)} |"
                f" {Figure(b['p99']).show(ms)} |"
            )
    a, b = first["counts"]["A"], first["counts"]["B"]
    answered = (
        f"What they answered: the admin's counts {_counts(a['admin'])} from A,"
        f" {_counts(b['admin'])} from B; the approver's {_counts(a['approver'])} and"
        f" {_counts(b['approver'])}; with the definition filter both {_counts(b['definition'])},"
        " exact. (The seed moves each copy's times back by up to 30 days, so most tasks are"
        " overdue, and B's overdue count reaches the limit too.)"
    )
    return [*lines, "", *textwrap.wrap(answered, 96), "", *NOTE.strip().splitlines()]


def _counts(c: dict[str, Any]) -> str:
    more = "+" if c.get("exact") is False else ""  # A's answer has no `exact`
    return f"{c['total']:,}{more} ({c['overdue']:,} overdue)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, required=True, help="the A checkout")
    parser.add_argument("--backend", choices=("sqlite", "pg", "both"), default="both")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args()
    for backend in ("sqlite", "pg") if args.backend == "both" else (args.backend,):
        result = asyncio.run(ab(backend, args.before, args.runs, args.rounds, args.requests))
        for kind in KINDS:
            a, b = (statistics.median(result["ms"][s][kind]["p50"]) for s in ("A", "B"))
            print(f"{backend} {kind}: A {a:.1f} ms, B {b:.1f} ms p50 ({a / b:.1f}×)")
        if args.save:
            data = load()
            data[backend] = result
            RAW.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
