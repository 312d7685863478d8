"""Reads: one run, a filtered page of runs, a run's history."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from signoff.engine.charts.run_charts import allowed_events
from signoff.engine.errors import InvalidCursorError, RunNotFoundError
from signoff.engine.model.lifecycle import LifecycleState
from signoff.engine.model.registry import Registry
from signoff.engine.storage import census, job_counts, stored_view
from signoff.engine.storage.jobs import JobStatus
from signoff.engine.storage.schema import HISTORY, JOBS, RUNS
from signoff.engine.storage.store import Store
from signoff.engine.views import (
    HistoryPage,
    JobPage,
    RunDetail,
    RunPage,
    RunView,
    history_entry,
    job_view,
    run_view,
)


@dataclass(frozen=True)
class Census:
    runs: dict[tuple[str, str, str], int]  # (definition, state, lifecycle) -> runs
    ready_jobs: dict[str, int]  # job kind -> ready jobs and timers (a kind with none: absent)
    due_jobs: int  # ready jobs whose due time has passed
    oldest_due: dict[str, datetime]  # job kind -> due time of its longest-waiting due job


@dataclass(frozen=True)
class Overdue:
    """Ready jobs of one kind that fell due a while ago and nobody has claimed."""

    kind: str
    jobs: int
    oldest_due: datetime


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

    async def detail(self, run_id: str, *, replays: int = 100) -> RunDetail:
        """The run with the ids of the runs that replay it, newest first (at most `replays`)."""
        query = (
            select(RUNS.c.id)
            .where(RUNS.c.replay_of == run_id)
            .order_by(RUNS.c.id.desc())
            .limit(replays)
        )
        async with self.store.read() as conn:
            row = (await conn.execute(select(RUNS).where(RUNS.c.id == run_id))).one_or_none()
            if row is None:
                raise RunNotFoundError(run_id)
            replayed_by = list((await conn.execute(query)).scalars())
        view = self.view(row)
        return RunDetail(**msgspec.structs.asdict(view), replays=replayed_by)

    async def page(self, where: RunFilter, limit: int, cursor: str | None) -> RunPage:
        """Runs newest first (ids are time-ordered); `cursor` continues after a page."""
        query = select(RUNS).order_by(RUNS.c.id.desc()).limit(limit + 1)
        for column in ("definition", "state", "lifecycle", "ref_id", "ref_type"):
            value = getattr(where, column)
            if value is not None:
                query = query.where(RUNS.c[column] == value)
        if where.ref_id_prefix:
            low, high = prefix_range(where.ref_id_prefix)
            query = query.where(RUNS.c.ref_id >= low)
            if high is not None:
                query = query.where(RUNS.c.ref_id < high)
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
        """The run's entries, oldest first, each with the run view as it was after it."""
        made = select(*(RUNS.c[c] for c in stored_view.CREATION)).where(RUNS.c.id == run_id)
        async with self.store.read() as conn:
            run = (await conn.execute(made)).one_or_none()
            if run is None:
                raise RunNotFoundError(run_id)
            query = select(HISTORY).where(HISTORY.c.run_id == run_id).order_by(HISTORY.c.seq)
            rows = (await conn.execute(query)).all()
        return HistoryPage(
            items=[history_entry(r, stored_view.rebuild(r._mapping, run._mapping)) for r in rows]
        )

    async def jobs(self, run_id: str) -> JobPage:
        """The run's jobs and timers, oldest first, with their attempts."""
        async with self.store.read() as conn:
            await _require_run(conn, run_id)
            query = select(JOBS).where(JOBS.c.run_id == run_id).order_by(JOBS.c.id)
            rows = (await conn.execute(query)).all()
        return JobPage(items=[job_view(r) for r in rows])

    async def census(self, now: datetime) -> Census:
        """How many runs are in each (definition, state, lifecycle) and how many jobs wait of
        each kind, from the counters (signoff.engine.storage.census, .job_counts), and the
        jobs already due: a range of the ready ones by due time, which holds only the due
        jobs no worker has claimed yet."""
        runs = await census.read(self.store)
        async with self.store.read() as conn:
            jobs = await job_counts.read(conn)
            due = (
                await conn.execute(
                    select(func.count()).where(
                        JOBS.c.status == JobStatus.READY, JOBS.c.due_at <= now
                    )
                )
            ).scalar_one()
            overdue = (await conn.execute(_overdue(now))).all()
        if jobs.behind:  # moves no fold has taken yet: folded, then the counters read again
            await job_counts.fold(self.store)
            async with self.store.read() as conn:
                jobs = await job_counts.read(conn)
        return Census(
            runs=runs,
            ready_jobs=jobs.of(JobStatus.READY),
            due_jobs=due,
            oldest_due={kind: oldest for kind, _, oldest in overdue},
        )

    async def overdue(self, due_before: datetime) -> list[Overdue]:
        """Kinds with ready jobs that fell due before `due_before` and that no worker has
        claimed (a paused run's jobs wait for it on purpose: they are not counted)."""
        async with self.store.read() as conn:
            rows = (await conn.execute(_overdue(due_before))).all()
        return [Overdue(kind, n, oldest) for kind, n, oldest in rows]

    def view(self, row: Any) -> RunView:
        """The run view of a `runs` row read outside a transition. A run of a definition this
        process has not loaded is shown as stored, with no allowed events."""
        spec = self.registry.find(row.definition, row.definition_version)
        if spec is None:
            return run_view(row._mapping, [], loaded=False)
        allowed = allowed_events(
            spec,
            self.registry.lifecycle,
            tuple(row.configuration),
            tuple(row.lifecycle_configuration),
        )
        return run_view(row._mapping, allowed)


def _overdue(due_before: datetime) -> Select[Any]:
    """Ready jobs due before `due_before` and not a paused run's: (kind, jobs, oldest due)."""
    # "Not a paused run's" rather than a join with runs: the paused runs are few and indexed,
    # where a join let PostgreSQL hash every run when it misjudged how many ready jobs are due.
    paused = (
        select(RUNS.c.id)
        .where(RUNS.c.id == JOBS.c.run_id, RUNS.c.lifecycle == LifecycleState.PAUSED)
        .exists()
    )
    return (
        select(JOBS.c.kind, func.count(), func.min(JOBS.c.due_at))
        .where(JOBS.c.status == JobStatus.READY, JOBS.c.due_at <= due_before, ~paused)
        .group_by(JOBS.c.kind)
    )


async def _require_run(conn: AsyncConnection, run_id: str) -> None:
    if (await conn.execute(select(RUNS.c.id).where(RUNS.c.id == run_id))).first() is None:
        raise RunNotFoundError(run_id)


_SURROGATES = range(0xD800, 0xE000)


def prefix_range(prefix: str) -> tuple[str, str | None]:
    """The ids that start with `prefix` are those in [low, high) (no high: every id from low
    up), compared code point by code point: byte order of UTF-8, which both databases use
    for ref_id (BINARY on SQLite, collation "C" on PostgreSQL), so it is an index range.
    Case matters and no character is special (`%` and `_` are themselves)."""
    stem = prefix.rstrip(chr(0x10FFFF))  # nothing sorts above it: carry to the one before
    if not stem:
        return prefix, None
    after = ord(stem[-1]) + 1
    if after in _SURROGATES:  # not characters: UTF-8 cannot hold them
        after = _SURROGATES.stop
    return prefix, stem[:-1] + chr(after)


_RUN_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def encode_cursor(run_id: str) -> str:
    return run_id  # keyset paging: the page continues below the last id it showed


def decode_cursor(cursor: str) -> str:
    if not _RUN_ID.match(cursor):
        raise InvalidCursorError()
    return cursor
