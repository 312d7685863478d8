"""The job counts behind /metrics' `signoff_queue_depth`, on SQLite and PostgreSQL: the moves
that triggers on `jobs` append, added to the counters they are folded into, agree with
counting the jobs table after every kind of job write (enqueue, claim, retry, settle, a
lease taken over, a cancel by a transition, a webhook delivery gone dead and redelivered, a
subscription deleted, a purge), under concurrent writers and folds, and from a database
migrated with jobs already in it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import TextClause, inspect, text

from signoff.engine import JobContext, JobOutcome, TransientJobError
from signoff.engine.dispatch.dispatcher import utcnow
from signoff.engine.jobs.worker import Worker
from signoff.engine.runtime import Runtime
from signoff.engine.storage import job_counts
from signoff.engine.storage import purge as retention
from signoff.engine.storage.migrate import upgrade
from signoff.engine.storage.store import Store
from signoff.engine.webhooks import store as webhooks
from signoff.engine.webhooks import subscriptions
from signoff.engine.webhooks.delivery import DeliveryPolicy
from signoff.machines.registry import build_registry
from tests.helpers import downgrade, drain, runtime_with_approval_job, settings_for

Counts = dict[tuple[str, str], int]
_TRUTH = text("SELECT kind, status, COUNT(*) FROM jobs GROUP BY kind, status")
_KEPT = text("SELECT kind, status, n FROM job_counts WHERE n <> 0")
_PENDING = text("SELECT COUNT(*) FROM job_moves")
# The counters plus the moves not folded yet: the jobs, at every commit.
_WITH_MOVES = text(
    "SELECT kind, status, SUM(n) FROM ("
    " SELECT kind, status, n FROM job_counts"
    " UNION ALL SELECT kind, from_status, -1 FROM job_moves WHERE from_status IS NOT NULL"
    " UNION ALL SELECT kind, to_status, 1 FROM job_moves WHERE to_status IS NOT NULL"
    ") AS m GROUP BY kind, status HAVING SUM(n) <> 0"
)
WAITING = {"output": 0.9, "approval_timeout_s": 3600.0}  # waits for approval with a timer


async def _counts(store: Store, query: TextClause) -> Counts:
    async with store.engine.connect() as conn:
        return {(kind, status): int(n) for kind, status, n in await conn.execute(query)}


async def pending(store: Store) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(_PENDING)).scalar_one())


async def exact(rt: Runtime) -> Counts:
    """The counters with the moves not folded yet, then the gauge /metrics shows (which
    folds them) and the counters alone, all equal to counting the jobs table; that count."""
    store = rt.store
    expected = await _counts(store, _TRUTH)
    assert await _counts(store, _WITH_MOVES) == expected
    census = await rt.queries.census(utcnow())
    assert census.ready_jobs == {k: n for (k, status), n in expected.items() if status == "ready"}
    assert await pending(store) == 0
    assert await _counts(store, _KEPT) == expected
    return expected


async def flaky(ctx: JobContext) -> JobOutcome:
    """The approval job, whose first attempt fails transiently (it is retried)."""
    if ctx.attempt == 1:
        raise TransientJobError("the queue is not there yet")
    return JobOutcome("processed", {"output": 0.9, "attempts": ctx.attempt})


def refusing_worker(rt: Runtime) -> Worker:
    """A worker allowed to call no host: each webhook delivery it takes is dead at once."""
    return Worker(
        rt.dispatcher, rt.store, rt.registry, webhooks=DeliveryPolicy(allowed=lambda _: False)
    )


async def test_the_counts_follow_every_job_write(database_url: str) -> None:
    rt = await runtime_with_approval_job(database_url, flaky)
    try:
        d, store = rt.dispatcher, rt.store
        made = [await d.create("approval", actor="a", input=WAITING) for _ in range(4)]
        assert await exact(rt) == {}
        for m in made:
            await d.dispatch(m.run_id, "process", actor="a")  # enqueues its job
        assert await exact(rt) == {("approval", "ready"): 4}
        stuck = Worker(d, store, rt.registry, lease_s=30.0)
        assert len(await stuck.claim(1)) == 1  # claimed, then never finished
        assert await exact(rt) == {("approval", "ready"): 3, ("approval", "running"): 1}
        assert await drain(rt) == 6  # each fails once, is retried, then settled
        await drain(rt, later_s=31)  # the stuck job's lease ran out: another worker takes it
        assert await exact(rt) == {("approval", "done"): 4, ("timer", "ready"): 4}
        await d.dispatch(made[0].run_id, "cancel", actor="ops")  # its timer is cancelled
        assert (await exact(rt))[("timer", "cancelled")] == 1

        sub = await subscriptions.create(
            store, "https://example.test/hook", actor="root", now=utcnow(),
            allowed=lambda _: True, definitions=["approval"], max_attempts=1,
        )  # fmt: skip
        await d.dispatch(made[1].run_id, "approve", actor="boss")  # deliveries; its timer goes
        told = (await exact(rt))[("webhook", "ready")]
        worker = refusing_worker(rt)
        for job in await worker.claim(16):
            await worker.process(job)
        assert (await exact(rt))[("webhook", "dead")] == told
        assert await webhooks.redeliver_dead(store, sub.id, utcnow()) == told
        assert (await exact(rt))[("webhook", "ready")] == told
        await webhooks.delete(store, sub.id)  # with its deliveries
        assert ("webhook", "ready") not in await exact(rt)

        for m in made[2:]:
            await d.dispatch(m.run_id, "cancel", actor="ops")
        await d.create("approval", actor="a")  # the newest entry stays
        later = d.clock() + timedelta(seconds=1)
        found = await retention.plan(store, later, later)
        assert (await retention.purge(store, found, later, batch=2)).rows["jobs"] == 8
        assert await pending(store) == 0  # the purge folded the moves of what it deleted
        assert await exact(rt) == {}
    finally:
        await rt.stop()


async def test_a_write_the_engine_never_makes_is_counted_too(runtime: Runtime) -> None:
    """The triggers count whatever writes jobs: a kind changed, a status set by hand, rows
    inserted and deleted by SQL of no module of Signoff's."""
    made = await runtime.dispatcher.create("approval", actor="a", input=WAITING)
    await runtime.dispatcher.dispatch(made.run_id, "process", actor="a")
    for statement in (
        "UPDATE jobs SET kind = 'renamed'",
        "UPDATE jobs SET kind = 'approval', status = 'done'",
        "INSERT INTO jobs (run_id, kind, state, payload, status, attempts, max_attempts, due_at,"
        " created_for_version, created_at, updated_at) SELECT run_id, 'copied', state, payload,"
        " 'ready', 0, 1, due_at, 1, created_at, updated_at FROM jobs",
        "DELETE FROM jobs WHERE kind = 'approval'",
    ):
        async with runtime.store.engine.begin() as conn:
            await conn.execute(text(statement))
        await exact(runtime)
    assert await exact(runtime) == {("copied", "ready"): 1}


async def test_concurrent_writers_and_folds_keep_the_counts_exact(runtime: Runtime) -> None:
    """Runs moved by several tasks at once, workers claiming and settling beside them, and
    folds and reads running throughout: nothing is counted twice or lost."""
    d = runtime.dispatcher
    made = [await d.create("approval", actor="a", input=WAITING) for _ in range(32)]
    writing = True

    async def lane(ids: list[str]) -> None:
        for run_id in ids:
            await d.dispatch(run_id, "process", actor="a")
        for run_id in ids[::2]:
            await drain(runtime, rounds=2)
            await d.dispatch(run_id, "cancel", actor="ops")  # its job, or its timer

    async def folding() -> None:
        while writing:
            await job_counts.fold(runtime.store, batch=7)
            await runtime.queries.census(utcnow())
            await asyncio.sleep(0.005)

    folds = [asyncio.create_task(folding()) for _ in range(2)]
    try:
        await asyncio.gather(*(lane([m.run_id for m in made[i::8]]) for i in range(8)))
        await drain(runtime)
    finally:
        writing = False
        await asyncio.gather(*folds)
    got = await exact(runtime)
    assert sum(n for (kind, _), n in got.items() if kind == "approval") == 32  # one a run
    assert got[("timer", "ready")] == 16  # one for each run left waiting


async def test_a_read_folds_the_moves_left_first(runtime: Runtime) -> None:
    """With no process folding in the background (none runs workers here), the census read
    finds the moves left, folds them and reads the counters again."""
    for _ in range(3):
        made = await runtime.dispatcher.create("approval", actor="a", input=WAITING)
        await runtime.dispatcher.dispatch(made.run_id, "process", actor="a")
    assert await pending(runtime.store) == 3 and await _counts(runtime.store, _KEPT) == {}
    async with runtime.store.read() as conn:
        assert (await job_counts.read(conn)).behind
    assert (await runtime.queries.census(utcnow())).ready_jobs == {"approval": 3}
    assert await pending(runtime.store) == 0
    async with runtime.store.read() as conn:
        assert await job_counts.read(conn) == job_counts.Counted({("approval", "ready"): 3}, False)


async def test_0012_counts_the_jobs_already_there(database_url: str) -> None:
    """Jobs stored before the counters are counted by the migration, once, and move after."""
    rt = Runtime(settings_for(database_url), build_registry(0.0))
    await rt.start()
    try:
        made = [await rt.dispatcher.create("approval", actor="a", input=WAITING) for _ in range(3)]
        for m in made:
            await rt.dispatcher.dispatch(m.run_id, "process", actor="a")
        await drain(rt)
        await rt.dispatcher.dispatch(made[0].run_id, "cancel", actor="ops")
    finally:
        await rt.stop()
    db = Store.open(database_url)
    try:
        await downgrade(db, "0010")
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert not {"job_counts", "job_moves"} & tables
        await upgrade(db)
        await upgrade(db)  # a second run is a no-op
        assert await pending(db) == 0
        expected = {("approval", "done"): 3, ("timer", "ready"): 2, ("timer", "cancelled"): 1}
        assert await _counts(db, _KEPT) == await _counts(db, _TRUTH) == expected
    finally:
        await db.dispose()
    rt = Runtime(settings_for(database_url), build_registry(0.0))
    await rt.start()
    try:
        await rt.dispatcher.dispatch(made[1].run_id, "cancel", actor="ops")
        assert (await exact(rt))[("timer", "cancelled")] == 2
    finally:
        await rt.stop()
