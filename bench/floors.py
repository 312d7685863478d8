"""Floors: the raw cost of a transaction shaped like a transition, and of the statechart step."""

from __future__ import annotations

import json
import sqlite3
import tempfile
import time
from pathlib import Path

import asyncpg

from bench.common import fresh_database
from signoff.engine.charts import snapshots
from signoff.engine.charts.run_charts import RunCharts
from signoff.engine.model.registry import Registry
from signoff.engine.model.run_model import RunModel
from signoff.machines.registry import build_registry

ROW = json.dumps({"run": {"id": "x" * 36, "context": {"output": 0.9}, "pad": "y" * 900}})


def sqlite_floor(n: int = 3000) -> float:
    """Transactions/s: BEGIN IMMEDIATE; SELECT run; UPDATE run; INSERT 1 KB history; COMMIT."""
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "floor.db", isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, version INT, state TEXT)")
        db.execute("CREATE TABLE history (seq INTEGER PRIMARY KEY, run_id TEXT, run TEXT)")
        db.execute("INSERT INTO runs VALUES ('r', 0, 's')")
        started = time.perf_counter()
        for _ in range(n):
            db.execute("BEGIN IMMEDIATE")
            version = db.execute("SELECT version FROM runs WHERE id = 'r'").fetchone()[0]
            db.execute("UPDATE runs SET version = ?, state = 't' WHERE id = 'r'", (version + 1,))
            db.execute("INSERT INTO history (run_id, run) VALUES ('r', ?)", (ROW,))
            db.execute("COMMIT")
        return n / (time.perf_counter() - started)


async def postgres_floor(n: int = 2000) -> float:
    """The same shape on asyncpg, one connection: FOR UPDATE, advisory lock, NOTIFY."""
    async with fresh_database("pg") as url:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
        await conn.execute("CREATE TABLE runs (id TEXT PRIMARY KEY, version INT, state TEXT)")
        await conn.execute(
            "CREATE TABLE history (seq BIGSERIAL PRIMARY KEY, run_id TEXT, run JSONB)"
        )
        await conn.execute("INSERT INTO runs VALUES ('r', 0, 's')")
        started = time.perf_counter()
        for _ in range(n):
            async with conn.transaction():
                version = await conn.fetchval("SELECT version FROM runs WHERE id = 'r' FOR UPDATE")
                await conn.execute(
                    "UPDATE runs SET version = $1, state = 't' WHERE id = 'r'", version + 1
                )
                await conn.execute("SELECT pg_advisory_xact_lock(1)")
                seq = await conn.fetchval(
                    "INSERT INTO history (run_id, run) VALUES ('r', $1) RETURNING seq", ROW
                )
                await conn.execute("SELECT pg_notify('floor', $1)", str(seq))
        rate = n / (time.perf_counter() - started)
        await conn.close()
    return rate


def chart_floor(n: int = 3000, registry: Registry | None = None) -> float:
    """python-statemachine alone: new instances of both charts at a stored snapshot, one
    business event, then the derived lifecycle event (what each transition did before the
    engine pooled instances and remembered lifecycle steps)."""
    registry = registry or build_registry(0.0)
    spec = registry.get("approval")
    started = time.perf_counter()
    for _ in range(n):
        business = snapshots.restore(spec.chart, RunModel(None, {}, {}), _APPROVING, {})
        lifecycle = snapshots.restore(registry.lifecycle, RunModel(None, {}, {}), _WAITING, {})
        business.send("approve", data={}, reason=None, actor="a", at="t")
        lifecycle.send("complete")
    return n / (time.perf_counter() - started)


def engine_chart_rate(n: int = 3000, registry: Registry | None = None) -> float:
    """The same work as the engine does it: a pooled instance, a remembered lifecycle step."""
    registry = registry or build_registry(0.0)
    spec = registry.get("approval")
    row = {
        "configuration": ["waiting_for_approval"],
        "business_history": {},
        "lifecycle_configuration": _WAITING,
        "lifecycle_history": {},
        "context": {},
    }
    started = time.perf_counter()
    for _ in range(n):
        charts = RunCharts.restore(spec, registry.lifecycle, row, {})
        charts.business.send("approve", data={}, reason=None, actor="a", at="t")
        derived = charts.derived_lifecycle_event()
        if derived:
            charts.send_lifecycle(derived)
        charts.release()
    return n / (time.perf_counter() - started)


_WAITING = ["active", "waiting"]
_APPROVING = ["waiting_for_approval"]
