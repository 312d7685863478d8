"""bench/seed.py writes what the engine would have: its own reads, the audit verifier, the stats,
the counters /metrics reads and a decision on a seeded run all work on the copies (SQLite and
PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import func, select

from bench.seed import seed
from bench.seed_check import check, started
from signoff.engine.audit.verify import verify
from signoff.engine.storage.audit import entries
from signoff.engine.storage.schema import HISTORY, IDEMPOTENCY, JOBS, PENDING_COUNTS, RUNS

RUNS_SEEDED = 60


async def test_seeded_runs_read_verify_and_move_on(database_url: str) -> None:
    await seed(database_url, RUNS_SEEDED)
    checked = await check(database_url, sample=RUNS_SEEDED)
    assert checked.runs == RUNS_SEEDED  # the templates' own rows are gone: only the copies
    assert checked.verified == checked.entries  # the whole chain, at this size
    assert checked.tasks > 0 and checked.finished["approval"] > 0

    rt = await started(database_url)
    try:
        async with rt.store.read() as conn:
            states = set((await conn.execute(select(RUNS.c.state).distinct())).scalars())
            keys = (await conn.execute(select(func.count()).select_from(IDEMPOTENCY))).scalar_one()
            approvals = (
                await conn.execute(
                    select(func.count()).select_from(RUNS).where(RUNS.c.definition == "approval")
                )
            ).scalar_one()
            timers = (
                await conn.execute(
                    select(func.count()).select_from(JOBS).where(JOBS.c.kind == "timer")
                )
            ).scalar_one()
            last = (await conn.execute(select(func.max(HISTORY.c.seq)))).scalar_one()
            # Counters as the engine keeps them: never in history, pending only until folded
            # (the stats and the census above were folded from the copies' own).
            kept = select(func.count()).where(HISTORY.c.counts.is_not(None))
            assert (await conn.execute(kept)).scalar_one() == 0
            pending = select(func.count()).select_from(PENDING_COUNTS)
            assert (await conn.execute(pending)).scalar_one() == 0
            waiting = (
                await conn.execute(
                    select(RUNS.c.id)
                    .where(RUNS.c.state == "waiting_for_approval", RUNS.c.lifecycle == "waiting")
                    .limit(1)
                )
            ).scalar_one()
        assert {"finished", "approved", "waiting_for_approval", "review"} <= states
        assert keys == approvals  # each approval run's create kept its idempotency record
        assert timers > 0  # the waiting runs with a deadline kept their pending timer

        approved = await rt.dispatcher.dispatch(waiting, "approve", actor="ann")
        assert approved.view().state == "finished"
        history = (await rt.queries.history(waiting)).items
        assert history[-1].event == "approve" and history[-1].seq == last + 1
        chain = verify([e async for e in entries(rt.store)])
        assert not chain.problem and chain.checked == last + 1
    finally:
        await rt.stop()
