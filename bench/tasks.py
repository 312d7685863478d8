"""`GET /api/tasks` through `signoff serve` with 100,000 waiting runs across 50 approvers.

    .venv/bin/python -m bench.tasks [--backend sqlite|pg|both] [--runs 100000] [--requests 400]
                                    [--reps 3] [--save]

Seeds the database (bench/inbox_seed.py), checks the copies with the engine's own reads, then
times sequential requests for random approvers (one httpx client on keep-alive, so each figure
includes the client's own ~0.5 ms): sorted by due time, by age, and due-sorted with a definition
filter; per repetition p50 and p99. Prints the query plans of the inbox's statements
(bench/inbox_plan.py). Goal: p99 ≤ 10 ms on both databases.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from typing import Any

import httpx
from sqlalchemy.engine import make_url

from bench import inbox_plan
from bench.common import percentile
from bench.inbox_seed import (
    APPROVERS,
    DEFINITIONS,
    Template,
    approver,
    copy_pg,
    copy_sqlite,
    definition,
    headers,
    make_templates,
    plan_copies,
    tokens,
)
from bench.server import signoff_server
from signoff.engine.storage.inbox import COUNT_LIMIT

MODES = ("due", "age", "definition")


def _query(mode: str, rng: random.Random) -> dict[str, str]:
    if mode == "definition":
        return {"sort": "due", "definition": definition(rng.randrange(DEFINITIONS))}
    return {"sort": "due" if mode == "empty" else mode}


async def timed(client: httpx.AsyncClient, who: str, params: dict[str, str]) -> float:
    started = time.perf_counter()
    answer = await client.get("/api/tasks", params=params, headers=headers(who))
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200, answer.text
    return elapsed


async def verify(
    client: httpx.AsyncClient, templates: list[Template], copies: dict[str, Any], total: int
) -> dict[str, Any]:
    """The copies as the engine reads them: every approver's count (up to the count limit),
    and a sample of runs."""
    per = total // APPROVERS
    for k in range(APPROVERS):
        page = (await client.get("/api/tasks", headers=headers(approver(k)))).json()
        assert page["counts"] == counted(page["counts"], per), (approver(k), page["counts"])
        assert len(page["items"]) == 50
    admin = (await client.get("/api/tasks", headers=headers("admin"))).json()["counts"]
    assert admin == counted(admin, total), admin
    rng = random.Random(7)
    for t in rng.sample(templates, 20):
        template = (await client.get(f"/api/runs/{t.run_id}", headers=headers("admin"))).json()
        c = rng.choice(copies[t.run_id])
        run = (await client.get(f"/api/runs/{c.run_id}", headers=headers("admin"))).json()
        assert run["state"] == t.state and run["ref_id"] == c.ref_id, run
        assert run["tasks"][0]["candidates"] == template["tasks"][0]["candidates"]
        assert run["allowed_events"] == template["allowed_events"]
        past = await client.get(f"/api/runs/{c.run_id}/history", headers=headers("admin"))
        assert [e["run"]["version"] for e in past.json()["items"]] == [1, 2]
        assert past.json()["items"][1]["run"] == run
    return {"per_approver": per, "overdue_admin": admin["overdue"]}


def counted(counts: dict[str, Any], n: int) -> dict[str, Any]:
    """`counts` as they should read for `n` matching tasks: exact up to the server's count
    limit (the default, COUNT_LIMIT), the limit and `exact: false` past it."""
    total, exact = min(n, COUNT_LIMIT), n <= COUNT_LIMIT
    return {**counts, "total": total, "exact": exact}


async def decide_one(client: httpx.AsyncClient, t: Template, copy_id: str, per: int) -> None:
    """A copy is a real run: its approver decides it, and it leaves their inbox."""
    done = await client.post(f"/api/runs/{copy_id}/approve", headers=headers(t.approver))
    assert done.status_code == 200 and done.json()["state"] == "done", done.text
    page = (await client.get("/api/tasks", headers=headers(t.approver))).json()
    assert page["counts"] == counted(page["counts"], per - 1), page["counts"]


async def inbox_latency(backend: str, runs: int, requests: int, reps: int) -> dict[str, Any]:
    found: dict[str, str] = {}

    async def remember(url: str) -> None:
        found["url"] = url

    env = {"SIGNOFF_TOKENS": tokens()}
    async with signoff_server(backend, remember, **env) as (base, _pid):
        url = found["url"]
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            began = time.perf_counter()
            templates = await make_templates(client)
            plans = plan_copies(templates, runs)
            if backend == "sqlite":
                await asyncio.to_thread(copy_sqlite, make_url(url).database or "", templates, plans)
            else:
                await copy_pg(url.replace("postgresql+asyncpg", "postgresql"), templates, plans)
            seeded_s = time.perf_counter() - began
            checked = await verify(client, templates, plans, runs)
            print(f"{backend}: seeded {runs:,} runs in {seeded_s:.0f} s; checked", flush=True)
            rng = random.Random(15)
            for _ in range(200):  # warm-up
                who = approver(rng.randrange(APPROVERS))
                await timed(client, who, _query(rng.choice(MODES), rng))
            figures: dict[str, list[float]] = {}
            for _ in range(reps):
                for mode in (*MODES, "empty"):  # empty: ann, offered nothing (the floor)
                    took = []
                    for _ in range(requests):
                        who = "ann" if mode == "empty" else approver(rng.randrange(APPROVERS))
                        took.append(await timed(client, who, _query(mode, rng)))
                    figures.setdefault(f"{mode}_p50_ms", []).append(percentile(took, 50) * 1000)
                    figures.setdefault(f"{mode}_p99_ms", []).append(percentile(took, 99) * 1000)
            admin = [await timed(client, "admin", {"sort": "due"}) for _ in range(30)]
            plans_text = await inbox_plan.explain(url, approver(7), definition(2))
            t = templates[0]
            await decide_one(client, t, plans[t.run_id][0].run_id, checked["per_approver"])
    return {
        **figures,
        "admin_p50_ms": percentile(admin, 50) * 1000,
        "admin_p99_ms": percentile(admin, 99) * 1000,
        "load": os.getloadavg()[0],
        "seed_s": seeded_s,
        "overdue_admin": checked["overdue_admin"],
        "plans": plans_text,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("sqlite", "pg", "both"), default="both")
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--save", action="store_true", help="keep the figures in check15.json")
    args = parser.parse_args()
    backends = ("sqlite", "pg") if args.backend == "both" else (args.backend,)
    for backend in backends:
        result = asyncio.run(inbox_latency(backend, args.runs, args.requests, args.reps))
        print(result.pop("plans"))
        for key, value in result.items():
            print(f"{backend} {key}: {value}")
        if args.save:
            from bench import check15

            check15.save(f"tasks-{backend}", result)


if __name__ == "__main__":
    main()
