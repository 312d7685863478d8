"""Reads: one run, a filtered page of runs, a run's history."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from signoff.engine.charts.run_charts import allowed_events
from signoff.engine.errors import InvalidCursorError, RunNotFoundError
from signoff.engine.model.registry import Registry
from signoff.engine.storage.jobs import JobStatus
from signoff.engine.storage.schema import HISTORY, JOBS, RUNS
from signoff.engine.storage.store import Store
from signoff.engine.views import (
    HistoryPage,
    RunPage,
    RunView,
    history_entry,
    run_view,
)


@dataclass(frozen=True)
class Census:
    runs: dict[tuple[str, str, str], int]  # (definition, state, lifecycle) -> runs
    ready_jobs: dict[str, int]  # job kind -> ready jobs and timers
    due_jobs: int  # ready jobs whose due time has passed


@dataclass(frozen=True)
class RunFilter:
    definition: str | None = None
    state: str | None = None
    lifecycle: str | None = None
    ref_id: str | None = None
    ref_type: str | None = None
    ref_id_prefix: str | None = None  # ref_id starts with this (the monitor's search box)


class RunQueries:
    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry

    async def get(self, run_id: str) -> RunView:
        async with self.store.read() as conn:
            row = (await conn.execute(select(RUNS).where(RUNS.c.id == run_id))).one_or_none()
        if row is None:
            raise RunNotFoundError(run_id)
        return self.view(row)

    async def page(self, where: RunFilter, limit: int, cursor: str | None) -> RunPage:
        """Runs newest first (ids are time-ordered); `cursor` continues after a page."""
        query = select(RUNS).order_by(RUNS.c.id.desc()).limit(limit + 1)
        for column in ("definition", "state", "lifecycle", "ref_id", "ref_type"):
            value = getattr(where, column)
            if value is not None:
                query = query.where(RUNS.c[column] == value)
        if where.ref_id_prefix:
            query = query.where(RUNS.c.ref_id.startswith(where.ref_id_prefix, autoescape=True))
        if cursor is not None:
            query = query.where(RUNS.c.id < decode_cursor(cursor))
        async with self.store.read() as conn:
            rows = (await conn.execute(query)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return RunPage(
            items=[self.view(r) for r in rows],
            next_cursor=encode_cursor(rows[-1].id) if more else None,
        )

    async def history(self, run_id: str) -> HistoryPage:
        async with self.store.read() as conn:
            exists = (await conn.execute(select(RUNS.c.id).where(RUNS.c.id == run_id))).first()
            if exists is None:
                raise RunNotFoundError(run_id)
            query = select(HISTORY).where(HISTORY.c.run_id == run_id).order_by(HISTORY.c.seq)
            rows = (await conn.execute(query)).all()
        return HistoryPage(items=[history_entry(r) for r in rows])

    async def census(self, now: datetime) -> Census:
        """How many runs are in each (definition, state, lifecycle), and how many jobs wait."""
        async with self.store.read() as conn:
            runs = (
                await conn.execute(
                    select(
                        RUNS.c.definition, RUNS.c.state, RUNS.c.lifecycle, func.count()
                    ).group_by(RUNS.c.definition, RUNS.c.state, RUNS.c.lifecycle)
                )
            ).all()
            ready = JOBS.c.status == JobStatus.READY
            waiting = (
                await conn.execute(
                    select(JOBS.c.kind, func.count()).where(ready).group_by(JOBS.c.kind)
                )
            ).all()
            due = (
                await conn.execute(select(func.count()).where(ready, JOBS.c.due_at <= now))
            ).scalar_one()
        return Census(
            runs={(d, s, lc): n for d, s, lc, n in runs},
            ready_jobs={kind: n for kind, n in waiting},
            due_jobs=due,
        )

    def view(self, row: Any) -> RunView:
        """The run view of a `runs` row read outside a transition."""
        spec = self.registry.version(row.definition, row.definition_version)
        allowed = allowed_events(
            spec,
            self.registry.lifecycle,
            tuple(row.configuration),
            tuple(row.lifecycle_configuration),
        )
        return run_view(row._mapping, allowed)


_RUN_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def encode_cursor(run_id: str) -> str:
    return run_id  # keyset paging: the page continues below the last id it showed


def decode_cursor(cursor: str) -> str:
    if not _RUN_ID.match(cursor):
        raise InvalidCursorError()
    return cursor
