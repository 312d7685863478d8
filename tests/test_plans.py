"""Plans, not luck: every list, inbox, stats, census and claim query reads the runs, history,
jobs and inbox tables through an index, on SQLite and PostgreSQL, and the inbox's counts stop
at their limit instead of reading every task the caller may see; /metrics reads jobs only by a
range of due time, and job_moves (whose folded rows PostgreSQL keeps until VACUUM) only one step
down its primary key.

The database holds a few thousand runs with skewed values (rare definitions, states,
lifecycles and ref types next to common ones) and PostgreSQL has statistics, so the planner
would take an index if one fitted the rare value. The read statements are those the engine
sends (captured while its own reads run); the write path's claims and lookups are its own
statement constants. SQLite is checked as the product runs it (no ANALYZE: it never runs one)
and again after ANALYZE, for a database someone analysed."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import text

from signoff.engine.runtime import Runtime
from signoff.engine.stats.period import Period
from signoff.engine.storage import census, events, jobs, postgres, sqlite, stats_rollup
from signoff.engine.storage.inbox import Inbox, TaskFilter
from signoff.engine.storage.inbox import page as tasks_page
from signoff.engine.storage.queries import RunFilter
from signoff.engine.storage.stats import read_stats
from signoff.engine.storage.store import UNLIST_INBOX
from tests.helpers import eventually
from tests.plans_support import (
    NOW,
    RUNS_N,
    capturing,
    fill,
    plan,
    run_id,
    scans,
    text_of,
    unbounded,
    work,
)

RARE = {
    "definition": "d_rare",
    "state": "s_rare",
    "lifecycle": "paused",
    "ref_id": "INV-0000042",
    "ref_type": "rare_type",
    "ref_id_prefix": "INV-000004",
}
CURSOR = run_id(3000)
INBOXES = {"u7": Inbox("u7", frozenset({"g7"})), "admin": Inbox("admin", None)}
TASK_FILTERS = (
    TaskFilter(),
    TaskFilter(definition="d_rare"),
    TaskFilter(ref_type="rare_type"),
    TaskFilter(ref_id="INV-0000042"),
    TaskFilter(due_before=NOW),
)
# The inbox's counts stop at their limit: far below the 2,500 open tasks here. Without a filter,
# or with a due time (a range of the due index), they read at most one more row than the limit
# per name of the caller; a definition or ref the index does not hold is read until enough
# rows match, as the page is.
COUNTED = 100
BOUNDED = (TaskFilter(), TaskFilter(due_before=NOW))
# SQLite steps per row a bounded count may read: it takes about 13 for the admin's (one name,
# no conditions) and 35 for u7's (three names, each row's dedup and voters checked); reading
# every open task takes more than three times the budget (20,000 and 82,000 steps).
STEPS_PER_ROW = 60
PAGE = 50  # the inbox's default page
Statement = tuple[str, str, Any]
# Read in index order with no filter, stopped by LIMIT: a page of all runs, the last entry.
_ORDERED_WALKS = ("GET /api/runs?", "GET /api/runs?cursor", "transition: last entry")
# /metrics and the worker's watch for unclaimed jobs read jobs by a range of due time only:
# the due jobs no worker has claimed yet, not every ready job (the ready ones by kind are
# counted: signoff.engine.storage.job_counts), so what they read does not grow with them.
_DUE_RANGES = ("GET /metrics (census)", "worker: unclaimed jobs")


async def reads(rt: Runtime) -> list[Statement]:
    """Each read the API and the worker make, as sent, labelled with what asked for it."""
    q, store = rt.queries, rt.store
    async with capturing(store) as got:
        for n in range(len(RARE) + 1):
            for names in itertools.combinations(RARE, n):
                where = RunFilter(**{k: RARE[k] for k in names})
                for cursor in (None, CURSOR):
                    query = "&".join([*(f"{k}=" for k in names), *(["cursor"] if cursor else [])])
                    got.label = f"GET /api/runs?{query}"
                    await q.page(where, 50, cursor)
        some, day = run_id(1), NOW.date()
        for label, read in (
            ("GET /api/runs/{id}", q.detail(some)),
            ("GET /api/runs/{id} (engine get)", q.get(some)),
            ("GET /api/runs/{id}/history", q.history(some)),
            ("GET /api/runs/{id}/jobs", q.jobs(some)),
            ("GET /metrics (census)", q.census(NOW)),
            ("worker: unclaimed jobs", q.overdue(NOW)),
            ("stats read", read_stats(store, rt.registry, "approval", Period(day, day))),
            ("POST /api/events by ref", events.by_ref(store, ["d_rare"], "invoice", "INV-0000042")),
            ("POST /api/events by key", events.by_key(store, ["d_rare"], "order")),
        ):  # fmt: skip
            got.label = label
            await read
        for who, inbox in INBOXES.items():
            for tasks in TASK_FILTERS:
                for sort in ("due", "age"):
                    got.label = f"GET /api/tasks as {who} {tasks} sort={sort}"
                    await tasks_page(store, inbox, tasks, NOW, sort=sort, count_limit=COUNTED)
    return got.statements


def writes(url: str, rt: Runtime) -> list[Statement]:
    """The write path's lookups and the worker's claims, as each dialect sends them."""
    lite = url.startswith("sqlite")
    now: Any = NOW.replace(tzinfo=None).isoformat(" ") if lite else NOW
    later: Any = (NOW + timedelta(seconds=30)).replace(tzinfo=None).isoformat(" ") if lite else NOW
    kinds: Any = json.dumps(["k_rare"]) if lite else ["k_rare"]
    some = run_id(1)
    found = [
        ("worker claim", sqlite._CLAIM if lite else postgres._CLAIM, ("w", later, now, 9, kinds)),
        ("stats fold: pending counters", stats_rollup._PENDING, (2000,)),
        ("stats fold: delete the folded", stats_rollup._FOLDED, (15000,)),
        ("purge: unfolded counters", census._UNFOLDED, (15000,)),
        ("transition: lock the run", rt.store._lock_run, (some,)),
        ("job settle", jobs.SETTLE, (1, "w", now)),
        ("transition: unlist the inbox", UNLIST_INBOX, (some,)),
    ]  # fmt: skip
    if lite:
        found += [
            ("transition: last entry", sqlite._LAST, ()),
            ("transition: cancel jobs", sqlite._CANCEL_ALL, (some, now, -1)),
            ("claim: inputs", sqlite._INPUTS, (json.dumps([some]),)),
        ]
    return [(label, s.sqlite if lite else s.pg, args) for label, s, args in found]


async def failures(url: str, statements: list[Statement], note: str = "") -> list[str]:
    bad = []
    for label, statement, params in statements:
        if not statement.lstrip().upper().startswith(("SELECT", "UPDATE", "WITH", "DELETE")):
            continue
        found = await plan(url, statement, params)
        walk = label in _ORDERED_WALKS
        if scanned := scans(found, ordered_walk=walk):
            bad.append(f"{label}{note} scans {scanned}:\n{' '.join(statement.split())}\n"
                       f"{text_of(found)}")  # fmt: skip
        if label in _DUE_RANGES and (whole := unbounded(found, {"jobs", "j"}, "due_at")):
            bad.append(f"{label}{note} reads jobs beyond those due {whole}:\n"
                       f"{' '.join(statement.split())}\n{text_of(found)}")  # fmt: skip
    return bad


def bounded_counts(statements: list[Statement]) -> list[tuple[Statement, int]]:
    """The inbox counts (the statements that read `late`) that must stop at their limit,
    each with the rows it may read."""
    found = []
    for label, statement, params in statements:
        who = next((w for w in INBOXES if label.startswith(f"GET /api/tasks as {w} ")), None)
        bounded = any(f"{f} " in label for f in BOUNDED)
        if who is not None and bounded and " AS late" in statement:
            rows = len(INBOXES[who].names()) * (COUNTED + 1)
            found.append(((label, statement, params), rows))
    return found


def admin_pages(statements: list[Statement]) -> list[tuple[Statement, int]]:
    """The admin's unfiltered inbox pages (one name: one walk of an index that holds the
    page's whole order), each with the rows it may read: its page (50) and one more. The
    filled tasks have no due time, the case where a due index without `opened_at` read them
    all to sort them."""
    prefix = f"GET /api/tasks as admin {TaskFilter()} sort="
    return [
        ((label, statement, params), PAGE + 1)
        for label, statement, params in statements
        if label.startswith(prefix) and "FROM inbox" in statement and " AS late" not in statement
    ]


async def overcounted(
    url: str, counts: list[tuple[Statement, int]], note: str = "", kind: str = "counts"
) -> list[str]:
    bad = []
    for (label, statement, params), rows in counts:
        budget = rows * (STEPS_PER_ROW if url.startswith("sqlite") else 1)
        if (read := await work(url, statement, params)) > budget:
            bad.append(f"{label} ({kind}){note} reads {read}, over {budget}:\n{statement}")
    return bad


async def test_every_read_and_claim_uses_an_index(runtime: Runtime, database_url: str) -> None:
    await fill(runtime.store)

    async def fed() -> bool:  # the feed has read the new rows: its reads are not captured
        return runtime.feed.last_seq >= RUNS_N * 4

    await eventually(fed, timeout=30)
    statements = [*await reads(runtime), *writes(database_url, runtime)]
    assert len(statements) > 200
    counts = bounded_counts(statements)
    assert len(counts) == len(INBOXES) * len(BOUNDED) * 2  # each sort
    bad = await failures(database_url, statements)
    bad += await overcounted(database_url, counts)
    pages = admin_pages(statements)
    assert len(pages) == 2  # each sort
    bad += await overcounted(database_url, pages, kind="page")
    if database_url.startswith("sqlite"):
        async with runtime.store.engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
        bad += await failures(database_url, statements, " (after ANALYZE)")
        bad += await overcounted(database_url, counts, " (after ANALYZE)")
    assert not bad, "\n\n".join(bad)
