"""Runs that waited before tasks were kept (a database from before migration 0006) get their
open tasks when a process that loads their definition starts: without them they would be
missing from every inbox until their next transition. No history entry: nothing happened to
the run. Each start looks at waiting and paused runs without tasks only (an index on the
lifecycle), and one that has them is left alone."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, select

from signoff.engine.model.lifecycle import LifecycleState
from signoff.engine.model.registry import Registry
from signoff.engine.storage.schema import RUNS
from signoff.engine.storage.store import Store
from signoff.engine.tasks import inbox, task
from signoff.engine.tasks.plan import plan

log = logging.getLogger("signoff.migrate")
_STILL = (LifecycleState.WAITING, LifecycleState.PAUSED)  # a run that may wait for someone


async def open_old_tasks(store: Store, registry: Registry, now: datetime) -> int:
    """Open the tasks of unfinished runs that have none; how many runs got some."""
    length = func.json_array_length if store.url.startswith("sqlite") else func.jsonb_array_length
    query = select(RUNS.c.id).where(
        RUNS.c.lifecycle.in_([str(s) for s in _STILL]), length(RUNS.c.tasks) == 0
    )
    async with store.read() as conn:
        ids = list((await conn.execute(query)).scalars())
    opened = 0
    for run_id in ids:
        async with store.write() as tx:
            row = await store.lock_run(tx, run_id)
            spec = (
                None if row is None else registry.find(row["definition"], row["definition_version"])
            )
            if row is None or spec is None or row["tasks"]:
                continue  # gone, not loaded here (its own process opens them), or done already
            tasks = plan(
                spec, [], row["configuration"], ended=False, event="migrate", actor="migration",
                data={}, now=now,
            ).tasks  # fmt: skip
            if tasks and await store.open_tasks(tx, row, task.dump(tasks), inbox.rows(row, tasks)):
                opened += 1
    if opened:
        log.info("opened the tasks of %d run(s) stored before tasks were kept", opened)
    return opened
