"""What the purge tests share: runs that finished long ago interleaved with a live one, and the
row counts of every table a purge touches."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text

from signoff.engine.audit.formats import Line
from signoff.engine.audit.verify import Checker, Verdict
from signoff.engine.dispatch.dispatcher import utcnow
from signoff.engine.runtime import Runtime
from signoff.engine.storage.audit import chain_start, export
from signoff.engine.storage.store import Store

TABLES = (
    "runs", "history", "jobs", "inbox", "idempotency", "events", "audit_purged", "stat_counts",
    "stats_rollup",
)  # fmt: skip


@dataclass(frozen=True)
class Seeded:
    """`old` runs cancelled before `before`, each with a job; `live` is paused and resumed
    between them (its entries interleave with theirs) and after; `quiet` is live but has not
    moved since before them; `late` finished after."""

    live: str
    quiet: str
    old: list[str]
    late: str
    before: datetime


async def seed(rt: Runtime, n_old: int = 5, *, prefix: str = "old") -> Seeded:
    d = rt.dispatcher
    quiet = (await d.create("approval", actor="alice", input={"output": 0.9})).run_id
    await d.dispatch(quiet, "process", actor="alice")
    live = (await d.create("approval", actor="alice", input={"output": 0.9})).run_id
    old = []
    for i in range(n_old):
        run = await d.create(
            "approval", actor="alice", input={"output": 0.9}, ref_id=f"{prefix}{i}"
        )
        await d.dispatch(run.run_id, "process", actor="alice")  # a job row for it
        await d.dispatch(live, "pause" if i % 2 == 0 else "resume", actor="ops")
        await d.dispatch(run.run_id, "cancel", actor="ops")
        old.append(run.run_id)
    before = utcnow()
    late = (await d.create("approval", actor="alice", input={"output": 0.9})).run_id
    await d.dispatch(late, "cancel", actor="ops")
    await toggle(rt, live)  # the newest entry is the live run's
    return Seeded(live, quiet, old, late, before)


async def toggle(rt: Runtime, run_id: str) -> None:
    """Pause the run if it runs, resume it if paused: one more history entry."""
    view = await rt.queries.get(run_id)
    event = "resume" if view.lifecycle == "paused" else "pause"
    await rt.dispatcher.dispatch(run_id, event, actor="ops")


async def counts(store: Store) -> dict[str, Any]:
    """Rows per table, and the fold's mark."""
    async with store.engine.connect() as conn:
        got: dict[str, Any] = {
            t: (await conn.execute(text(f"SELECT count(*) FROM {t}"))).scalar() for t in TABLES
        }
        got["mark"] = (await conn.execute(text("SELECT seq FROM stats_rollup"))).scalar()
    return got


def rows(got: dict[str, Any]) -> dict[str, Any]:
    """The counts but the stats fold's (a serving engine folds by itself)."""
    return {k: v for k, v in got.items() if k not in ("stat_counts", "stats_rollup", "mark")}


async def history_of(store: Store, run_id: str) -> list[tuple[Any, ...]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT seq, version, event, hash FROM history WHERE run_id = :r ORDER BY seq"),
            {"r": run_id},
        )
        return [tuple(r) for r in rows]


async def exported(store: Store, **window: int) -> list[Line]:
    """The export's lines (the whole history, or a window: since_seq, until_seq)."""
    start = await chain_start(store)
    return [line async for line in export(store, start, **window)]


def check(lines: list[Line]) -> Verdict:
    checker = Checker()
    checker.feed(lines)
    return checker.verdict()
