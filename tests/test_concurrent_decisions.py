"""Decisions that arrive at once on one run all apply, one after another, on SQLite and
PostgreSQL. On PostgreSQL a transition without an idempotency key reads the run without a lock
and its statement writes nothing if another one got there first; it is then tried again on the
run as that one left it (Dispatcher._transact), so no sender sees a conflict for it."""

from __future__ import annotations

import asyncio
import itertools

from signoff.engine.audit.verify import verify
from signoff.engine.runtime import Runtime
from signoff.engine.storage.audit import entries
from tests.helpers import drain


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
