"""PostgreSQL, scale-out layout: a worker process takes a job another process enqueued as soon
as that process commits (NOTIFY on `signoff_jobs`), not at its next poll."""

from __future__ import annotations

import asyncio

from signoff.engine.runtime import Runtime
from signoff.machines.registry import build_registry
from tests.helpers import eventually, settings_for


async def test_a_worker_process_hears_jobs_another_process_enqueued(
    pg_database_url: str,
) -> None:
    api = Runtime(settings_for(pg_database_url, workers=0), build_registry(0.0))
    # It polls once a minute: only the notification can bring it the job within the bound.
    worker = Runtime(
        settings_for(pg_database_url, workers=1, poll_interval_s=60.0), build_registry(0.0)
    )
    await api.start()
    await worker.start(migrate=False)
    try:
        await asyncio.sleep(0.3)  # the worker has claimed nothing and sleeps
        made = await api.dispatcher.create("approval", actor="a", input={"output": 0.9})
        await api.dispatcher.dispatch(made.run_id, "process", actor="a")

        async def processed() -> bool:
            return (await api.queries.get(made.run_id)).state == "waiting_for_approval"

        await eventually(processed, timeout=10.0)
    finally:
        await worker.stop()
        await api.stop()
