"""The query plans of the statements `GET /api/tasks` runs, for one approver.

The statements are the engine's own: `tasks_page` runs on a Store opened on the benchmark's
database while a listener records each statement and its parameters; each is then explained
with the same parameters (SQLite: EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN (ANALYZE, BUFFERS)).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import make_url

from signoff.engine import Inbox, Store, TaskFilter, tasks_page


async def statements(url: str, actor: str, group: str, where: TaskFilter, sort: str) -> list[Any]:
    """(statement, parameters) of each query one inbox page runs."""
    store = Store.open(url)
    seen: list[tuple[str, Any]] = []

    def record(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen.append((statement, parameters))

    event.listen(store.engine.sync_engine, "before_cursor_execute", record)
    try:
        inbox = Inbox(actor, frozenset({group}))
        await tasks_page(store, inbox, where, datetime.now(UTC), sort=sort)  # type: ignore[arg-type]
    finally:
        await store.dispose()
    return [(s, p) for s, p in seen if s.lstrip().upper().startswith("SELECT")]


async def explain(url: str, actor: str, definition: str) -> str:
    """The plans for `actor`'s inbox (group t + their number) by due time, by age, and
    filtered by `definition`, as text."""
    group = "t" + actor[1:]
    out = []
    for label, where, sort in (
        ("sort=due", TaskFilter(), "due"),
        ("sort=age", TaskFilter(), "age"),
        (f"sort=due&definition={definition}", TaskFilter(definition=definition), "due"),
    ):
        for n, (statement, params) in enumerate(await statements(url, actor, group, where, sort)):
            kind = "page" if n == 0 else "counts"
            out.append(f"--- {actor} {label}: {kind} query\n{' '.join(statement.split())}")
            out.append(f"params: {params}")
            out.append(await _plan(url, statement, params))
    return "\n".join(out)


async def _plan(url: str, statement: str, params: Any) -> str:
    if url.startswith("sqlite"):
        conn = sqlite3.connect(make_url(url).database or "")
        try:
            rows = conn.execute("EXPLAIN QUERY PLAN " + statement, params).fetchall()
        finally:
            conn.close()
        return "\n".join(f"  {'  ' * _depth(rows, r)}{r[3]}" for r in rows)
    pg = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        rows = await pg.fetch("EXPLAIN (ANALYZE, BUFFERS) " + statement, *params)
    finally:
        await pg.close()
    return "\n".join("  " + r[0] for r in rows)


def _depth(rows: list[Any], row: Any) -> int:
    """How deep a row of EXPLAIN QUERY PLAN sits (its parent chain)."""
    parents = {r[0]: r[1] for r in rows}
    depth, parent = 0, row[1]
    while parent in parents:
        depth, parent = depth + 1, parents[parent]
    return depth
