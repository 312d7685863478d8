"""Decisions that arrive at once on one run all apply, one after another, on SQLite and
PostgreSQL. On PostgreSQL a transition without an idempotency key reads the run without a lock
and its statement writes nothing if another one got there first; it is then tried again on the
run as that one left it (Dispatcher._transact), so no sender sees a conflict for it."""

from __future__ import annotations

import asyncio
import itertools
from typing import cast

from signoff.engine.audit.verify import verify
from signoff.engine.runtime import Runtime
from signoff.engine.storage.audit import entries
from signoff.engine.storage.pg_writer import PgTx
from signoff.engine.storage.postgres import PgStore
from signoff.engine.storage.statements import Row, Tx
from signoff.machines.registry import build_registry
from tests.helpers import drain, settings_for


async def test_three_region_approvals_sent_at_once_all_apply(runtime: Runtime) -> None:
    d = runtime.dispatcher
    made = await d.create("purchase_order", actor="otto", input={"amount": 25000})
    await d.dispatch(made.run_id, "process", actor="otto")
    await drain(runtime)
    before = await runtime.queries.get(made.run_id)

    deciders = [("lee", "legal"), ("fay", "finance"), ("finn", "finance")]
    await asyncio.gather(
        *(
            d.dispatch(made.run_id, "approve", actor=who, data={"region": region})
            for who, region in deciders
        )
    )

    run = await runtime.queries.get(made.run_id)
    assert run.state == "approved"
    assert sorted(x["actor"] for x in run.context["decisions"]) == ["fay", "finn", "lee"]
    assert run.version == before.version + 3
    items = (await runtime.queries.history(made.run_id)).items
    assert [e.run.version for e in items] == list(range(1, run.version + 1))
    for earlier, later in itertools.pairwise(items):
        assert later.business.from_ == earlier.business.to
    verdict = verify([e async for e in entries(runtime.store)])
    assert verdict.ok, verdict


async def test_after_two_stale_tries_the_run_is_locked(pg_database_url: str) -> None:
    """Another decision commits between each optimistic read and its write, twice: the third
    try reads the run under a lock (inside a transaction block), and applies."""
    rt = Runtime(settings_for(pg_database_url, workers=0), build_registry(0.0))
    await rt.start()
    try:
        d = rt.dispatcher
        made = await d.create("purchase_order", actor="otto", input={"amount": 25000})
        await d.dispatch(made.run_id, "process", actor="otto")
        await drain(rt)
        before = await rt.queries.get(made.run_id)
        store = cast(PgStore, rt.store)
        read = store.lock_run
        blocked: list[bool] = []  # per read of lee's: inside a transaction block?
        others = [("fay", "finance"), ("finn", "finance")]

        async def racing(tx: Tx, run_id: str) -> Row | None:
            row = await read(tx, run_id)
            blocked.append(cast(PgTx, tx).conn.is_in_transaction())
            if not others:
                return row
            who, region = others.pop(0)  # commits first: this try's version is stale
            store.lock_run = read  # type: ignore[method-assign]
            await d.dispatch(run_id, "approve", actor=who, data={"region": region})
            store.lock_run = racing  # type: ignore[method-assign]
            return row

        store.lock_run = racing  # type: ignore[method-assign]
        await d.dispatch(made.run_id, "approve", actor="lee", data={"region": "legal"})
        store.lock_run = read  # type: ignore[method-assign]
        assert blocked == [False, False, True]  # two optimistic tries, then a locked one
        run = await rt.queries.get(made.run_id)
        assert run.state == "approved" and run.version == before.version + 3
        assert [x["actor"] for x in run.context["decisions"]] == ["fay", "finn", "lee"]
    finally:
        await rt.stop()
