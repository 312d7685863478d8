"""Check a seeded database with the engine's own reads (bench/seed.py, tests/test_seed.py).

    .venv/bin/python -m bench.seed_check URL

A sample of runs read back through RunQueries (the run, its history in order, each entry's run
view naming it), the first and last pages of history through the audit verifier, the stats of
each definition over the last year against the runs finished in it, the admin's inbox
against the tasks of the waiting runs, and the run census and the job counts /metrics reads
against counting the runs and the jobs.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from signoff.engine import Settings
from signoff.engine.audit.verify import verify
from signoff.engine.runtime import Runtime
from signoff.engine.stats.period import Period
from signoff.engine.storage import job_counts
from signoff.engine.storage.audit import entries
from signoff.engine.storage.census import read as census_read
from signoff.engine.storage.inbox import Inbox, TaskFilter, page
from signoff.engine.storage.schema import HISTORY, INBOX, JOBS, RUNS
from signoff.engine.storage.stats import read_stats
from signoff.machines.registry import build_registry

PAGE = 2000  # history entries per verified page


@dataclass(frozen=True)
class Checked:
    runs: int
    entries: int
    verified: int
    finished: dict[str, int]  # definition → completed runs in the last year, per the stats
    tasks: int  # the admin's inbox total


async def started(url: str) -> Runtime:
    """A Runtime on a seeded database: no worker, no migration."""
    rt = Runtime(Settings(database_url=url, workers=0), build_registry(0.0))
    await rt.start(migrate=False)
    return rt


async def check(url: str, sample: int = 20) -> Checked:
    rt = await started(url)
    try:
        return await _check(rt, sample)
    finally:
        await rt.stop()


async def _check(rt: Runtime, sample: int) -> Checked:
    store, now = rt.store, datetime.now(UTC)
    year = Period.parse((now - timedelta(days=364)).date().isoformat(), None, now)
    since = datetime.combine(year.since, datetime.min.time(), UTC)
    async with store.read() as conn:
        runs = (await conn.execute(select(func.count()).select_from(RUNS))).scalar_one()
        last = (await conn.execute(select(func.max(HISTORY.c.seq)))).scalar_one() or 0
        ids = list(
            (await conn.execute(select(RUNS.c.id).order_by(func.random()).limit(sample))).scalars()
        )
        done: Counter[str] = Counter(
            dict(
                (
                    await conn.execute(
                        select(RUNS.c.definition, func.count())
                        .where(RUNS.c.lifecycle == "completed", RUNS.c.updated_at >= since)
                        .group_by(RUNS.c.definition)
                    )
                ).all()
            )
        )
        open_tasks = (
            await conn.execute(select(func.count()).select_from(INBOX).where(INBOX.c.who == "#all"))
        ).scalar_one()
    for run_id in ids:
        run = await rt.queries.detail(run_id)
        history = (await rt.queries.history(run_id)).items
        assert [e.run.version for e in history] == list(range(1, run.version + 1)), run_id
        assert all(e.run_id == e.run.id == run_id for e in history), run_id
        assert [e.seq for e in history] == sorted(e.seq for e in history), run_id
        assert history[-1].run.state == run.state and history[-1].at == run.updated_at, run_id
    verified = 0
    for after in sorted({0, max(0, last - PAGE)}):
        found = [e async for e in entries(store, since_seq=after, limit=PAGE)]
        verdict = verify(found)
        assert not verdict.problem, verdict
        verified += verdict.checked
    finished = {}
    for name in sorted(done):
        stats = await read_stats(store, rt.registry, name, year)
        finished[name] = stats.finished.get("completed", 0)
        assert finished[name] == done[name], (name, finished[name], done[name])
        days = {d.day: d.finished for d in stats.days if d.finished}
        assert days == await _finished_days(rt, name, since), name
    # Exact counts (the API stops counting at its limit): every open task is an inbox row.
    inbox = await page(store, Inbox("admin", None), TaskFilter(), now, count_limit=open_tasks + 1)
    assert inbox.counts.exact and inbox.counts.total == open_tasks, (inbox.counts, open_tasks)
    # The run census /metrics reads (folded counters) against the runs table counted whole.
    census = await census_read(store)
    by_group = select(RUNS.c.definition, RUNS.c.state, RUNS.c.lifecycle, func.count()).group_by(
        RUNS.c.definition, RUNS.c.state, RUNS.c.lifecycle
    )
    async with store.read() as conn:
        counted = {(d, s, lc): n for d, s, lc, n in (await conn.execute(by_group)).all()}
    assert {k: n for k, n in census.items() if n} == counted, (census, counted)
    # The job counts /metrics' queue gauges read, against the jobs table counted whole.
    by_status = select(JOBS.c.kind, JOBS.c.status, func.count()).group_by(
        JOBS.c.kind, JOBS.c.status
    )
    async with store.read() as conn:
        jobs = await job_counts.read(conn)
        counted_jobs = {(k, s): n for k, s, n in (await conn.execute(by_status)).all()}
    assert not jobs.behind, "the seeder folds every job move"
    assert jobs.jobs == counted_jobs, (jobs, counted_jobs)
    return Checked(runs, last, verified, finished, inbox.counts.total)


async def _finished_days(rt: Runtime, name: str, since: datetime) -> dict[date, int]:
    """The UTC days the runs of `name` finished on (their last update), from the runs."""
    query = select(RUNS.c.updated_at).where(
        RUNS.c.definition == name,
        RUNS.c.lifecycle.in_(("completed", "cancelled", "failed")),
        RUNS.c.updated_at >= since,
    )
    async with rt.store.read() as conn:
        return dict(Counter(at.date() for at in (await conn.execute(query)).scalars()))


if __name__ == "__main__":
    print(asyncio.run(check(sys.argv[1])))
