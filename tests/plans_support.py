"""For the plan test: a database filled with skewed synthetic rows, each statement the code
sends captured with its parameters, and each plan judged (SQLite: EXPLAIN QUERY PLAN;
PostgreSQL: EXPLAIN (FORMAT JSON), with the statement's own parameters)."""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
from sqlalchemy import event
from sqlalchemy.engine import make_url

from signoff.engine.storage.schema import HISTORY, INBOX, JOBS, PENDING_COUNTS, RUNS
from signoff.engine.storage.store import Store
from signoff.engine.views import run_view

RUNS_N = 4000
NOW = datetime(2026, 6, 1, tzinfo=UTC)
# A rare value of each column next to common ones: an index that fits is the planner's
# choice for it, and a walk of the primary key would read most of the table.
DEFINITIONS = (("d_common", 0.89), ("d_mid", 0.10), ("d_rare", 0.01))
STATES = (("done", 0.90), ("waiting", 0.095), ("s_rare", 0.005))
LIFECYCLES = (("completed", 0.90), ("waiting", 0.09), ("paused", 0.005), ("errored", 0.005))
REF_TYPES = (("invoice", 0.995), ("rare_type", 0.005))
# The tables a plan may not read whole (their aliases in the statements too).
# (job_moves: on PostgreSQL the moves a fold deleted stay as dead rows until VACUUM, and a
# scan would read them all; the fold, which takes every move there is, is not checked.)
GUARDED = {"runs", "history", "jobs", "inbox", "job_moves", "r", "j", "h", "other"}


def run_id(i: int) -> str:
    return f"{i:08x}-0000-7000-8000-000000000000"


def _pick(rng: random.Random, choices: Sequence[tuple[str, float]]) -> str:
    return rng.choices([c for c, _ in choices], [w for _, w in choices])[0]


def rows(
    rng: random.Random, n: int = RUNS_N, *, entries: int = 4, tasks: bool = True
) -> dict[str, list[dict[str, Any]]]:
    """Runs with `entries` history entries each, two finished jobs each, a ready job for the
    live ones (one in a hundred due now, the others later), and with `tasks` inbox rows (not
    tied to the runs' states: the plans do not look)."""
    runs: list[dict[str, Any]] = []
    history: list[dict[str, Any]] = []
    jobs: list[dict[str, Any]] = []
    inbox: list[dict[str, Any]] = []
    seq = 0
    for i in range(n):
        rid, at = run_id(i), NOW - timedelta(minutes=n - i)
        state, lifecycle = _pick(rng, STATES), _pick(rng, LIFECYCLES)
        definition = _pick(rng, DEFINITIONS)
        ref = {"ref_type": _pick(rng, REF_TYPES), "ref_id": f"INV-{i:07d}"}
        runs.append(
            {
                "id": rid, "definition": definition, "definition_version": 1, "version": 4,
                **ref, "input": {}, "state": state, "configuration": [state],
                "business_history": {}, "lifecycle": lifecycle,
                "lifecycle_configuration": [lifecycle], "lifecycle_history": {}, "context": {},
                "created_by": "u1", "created_at": at, "updated_at": at, "tasks": [],
                "replay_of": run_id(i - 1) if i % 500 == 1 else None, "entered": {},
            }
        )  # fmt: skip
        view = msgspec.to_builtins(run_view(runs[-1], [], loaded=False))
        for version in range(1, entries + 1):
            seq += 1
            history.append(
                {
                    "seq": seq, "run_id": rid, "version": version, "at": at, "actor": "u1",
                    "event": "e", "data": {}, "reason": None, "business_from": [],
                    "business_to": [state], "lifecycle_from": [], "lifecycle_to": [lifecycle],
                    "run": view, "counts": None, "hash": None,
                }
            )  # fmt: skip
        live = lifecycle not in ("completed",)
        for status in ("done", "done", "ready") if live else ("done", "done"):
            jobs.append(
                {
                    "run_id": rid, "kind": "k_common" if i % 50 else "k_rare", "state": state,
                    "payload": {}, "status": status, "attempts": 1, "max_attempts": 5,
                    "due_at": NOW + timedelta(days=i % 30) if status == "ready" and i % 100 else at,
                    "created_for_version": 1, "created_at": at, "updated_at": at,
                    "attempt_log": [],
                }
            )  # fmt: skip
        if (
            tasks and i % 8 < 5
        ):  # open tasks, each reaching 8 names (the table only holds open ones)
            names = [f"group:g{(i + k) % 20}" for k in range(4)] + [f"user:u{i % 50}"]
            for who in ("#all", "*", f"user:u{i % 7 + 50}", *names):
                inbox.append(
                    {
                        "who": who, "run_id": rid, "slot": "s", "state": state,
                        "definition": definition, **ref, "created_by": "u1", "assignee": None,
                        "voters": [], "shared": False, "due_at": None,
                        "due_sort": datetime(9999, 1, 1, tzinfo=UTC), "opened_at": at,
                    }
                )  # fmt: skip
    return {"runs": runs, "history": history, "jobs": jobs, "inbox": inbox}


async def fill(store: Store, n: int = RUNS_N, *, entries: int = 4, tasks: bool = True) -> None:
    """Fill the tables (as `rows`), then have PostgreSQL gather statistics (autovacuum may
    not have yet)."""
    tables = {"runs": RUNS, "history": HISTORY, "jobs": JOBS, "inbox": INBOX}
    async with store.engine.begin() as conn:
        for name, values in rows(random.Random(17), n, entries=entries, tasks=tasks).items():
            for start in range(0, len(values), 1000):
                await conn.execute(tables[name].insert(), values[start : start + 1000])
        seq = await conn.exec_driver_sql("SELECT max(seq) FROM history")
        mark = int(seq.scalar_one())
        await conn.exec_driver_sql(f"UPDATE stats_rollup SET seq = {mark} WHERE id = 1")
        # Counters not folded yet, for the fold's own statements to be planned over (they add
        # nothing: a fold reading them leaves the counters as they are).
        pending = [{"seq": mark - i, "counts": []} for i in range(min(n, mark))]
        for start in range(0, len(pending), 1000):
            await conn.execute(PENDING_COUNTS.insert(), pending[start : start + 1000])
    if not store.url.startswith("sqlite"):
        async with store.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("ANALYZE")


@dataclass
class Captured:
    """The statements the engine sends while a block runs, by label."""

    statements: list[tuple[str, str, Any]] = field(default_factory=list)
    label: str = ""


@asynccontextmanager
async def capturing(store: Store) -> AsyncIterator[Captured]:
    got = Captured()

    def record(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        got.statements.append((got.label, statement, parameters))

    event.listen(store.engine.sync_engine, "before_cursor_execute", record)
    try:
        yield got
    finally:
        event.remove(store.engine.sync_engine, "before_cursor_execute", record)


async def plan(url: str, statement: str, params: Sequence[Any]) -> Any:
    """The plan: SQLite's EXPLAIN QUERY PLAN rows, or PostgreSQL's JSON plan."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(make_url(url).database or "")
        try:
            return conn.execute("EXPLAIN QUERY PLAN " + statement, tuple(params)).fetchall()
        finally:
            conn.close()
    pg = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        return json.loads(await pg.fetchval("EXPLAIN (FORMAT JSON) " + statement, *params))
    finally:
        await pg.close()


def scans(found: Any, *, ordered_walk: bool = False) -> list[str]:
    """What in a plan reads a guarded table whole: a table scan, or a walk of a whole index
    that filters what it reads (a walk in index order with no filter, stopped by LIMIT, is
    what an unfiltered page is, or the last entry: allowed with `ordered_walk`; SQLite shows
    a walk of a table by rowid as a SCAN)."""
    if isinstance(found, list) and found and isinstance(found[0], tuple):  # SQLite
        bad = []
        for row in found:
            words = str(row[3]).split()
            whole = len(words) > 1 and words[0] == "SCAN" and words[1] in GUARDED
            if whole and not ordered_walk:
                bad.append(str(row[3]))
        return bad
    return list(_pg_scans(found[0]["Plan"], ordered_walk))


def _pg_scans(node: dict[str, Any], ordered_walk: bool) -> list[str]:
    bad = []
    relation = node.get("Alias") or node.get("Relation Name")
    kind = node["Node Type"]
    if relation in GUARDED or node.get("Relation Name") in GUARDED:
        if kind == "Seq Scan":
            bad.append(f"Seq Scan on {relation}")
        elif (
            kind in ("Index Scan", "Index Only Scan")
            and "Index Cond" not in node
            and (not ordered_walk or "Filter" in node)
        ):
            bad.append(f"{kind} of all of {node['Index Name']} on {relation}")
    for child in node.get("Plans", ()):
        bad.extend(_pg_scans(child, ordered_walk))
    return bad


async def work(url: str, statement: str, params: Sequence[Any]) -> int:
    """What running the statement reads. PostgreSQL: the rows its scans of the inbox visit
    (EXPLAIN ANALYZE: returned and filtered out, times loops; the probes of alias `other`
    aside, one per row read). SQLite counts no rows, so its virtual machine's steps stand in
    (a progress handler called at every one)."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(make_url(url).database or "")
        steps = 0

        def step() -> int:
            nonlocal steps
            steps += 1
            return 0

        try:
            conn.set_progress_handler(step, 1)
            conn.execute(statement, tuple(params)).fetchall()
        finally:
            conn.close()
        return steps
    pg = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        found = await pg.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, *params)
    finally:
        await pg.close()
    return _pg_rows(json.loads(found)[0]["Plan"])


def _pg_rows(node: dict[str, Any]) -> int:
    rows = 0
    if node.get("Relation Name") == "inbox" and node.get("Alias") != "other":
        visited = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
        rows += visited * node["Actual Loops"]
    return rows + sum(_pg_rows(child) for child in node.get("Plans", ()))


def unbounded(found: Any, tables: set[str], column: str) -> list[str]:
    """What in a plan reads one of `tables` other than through a range of an index that
    `column` bounds: such a read grows with every row of the table, where a range on the
    column grows only with the rows in it."""
    if isinstance(found, list) and found and isinstance(found[0], tuple):  # SQLite
        bad = []
        for row in found:
            detail = str(row[3])
            words = detail.split()
            if len(words) > 1 and words[1] in tables and column not in detail:
                bad.append(detail)
        return bad
    return list(_pg_unbounded(found[0]["Plan"], tables, column))


def _pg_unbounded(node: dict[str, Any], tables: set[str], column: str) -> list[str]:
    bad = []
    if node.get("Relation Name") in tables or node.get("Alias") in tables:
        condition = node.get("Index Cond") or node.get("Recheck Cond") or ""
        if column not in condition:
            bad.append(f"{node['Node Type']} on {node.get('Alias')}: {condition or 'no range'}")
    for child in node.get("Plans", ()):
        bad.extend(_pg_unbounded(child, tables, column))
    return bad


def text_of(found: Any) -> str:
    if isinstance(found, list) and found and isinstance(found[0], tuple):
        return "\n".join(str(r[3]) for r in found)
    return json.dumps(found[0]["Plan"], indent=1)[:3000]
