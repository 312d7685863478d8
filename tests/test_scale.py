"""PostgreSQL scale-out pieces: cross-process feed by NOTIFY, listener recovery, leases kept by
heartbeats, graceful release, timers firing once with many workers, metrics."""

from __future__ import annotations

import asyncio

from sqlalchemy import select, text

from signoff.engine.jobs.worker import Worker
from signoff.engine.model.jobs import JobContext, JobOutcome
from signoff.engine.runtime import Runtime
from signoff.engine.storage.listener import PgListener
from signoff.engine.storage.schema import JOBS
from signoff.machines.registry import build_registry
from tests.helpers import (
    LiveServer,
    decode_view,
    entries,
    eventually,
    runtime_with_approval_job,
    serve,
    settings_for,
)


async def create(live: LiveServer) -> str:
    body = {"definition": "approval", "input": {"output": 0.9}}
    return str((await live.client.post("/api/runs", json=body)).json()["id"])


async def test_a_transition_on_one_server_reaches_streams_on_another(
    pg_database_url: str,
) -> None:
    # Server B polls only every 60 s: what it streams promptly came by NOTIFY.
    async with serve(pg_database_url) as a, serve(pg_database_url, poll_interval_s=60) as b:
        assert b.runtime.listener is not None
        reader = asyncio.create_task(entries(b.client, "/api/stream", 3, last_event_id=0))
        run_id = await create(a)
        await a.client.post(f"/api/runs/{run_id}/pause")
        await a.client.post(f"/api/runs/{run_id}/resume")
        got = await asyncio.wait_for(reader, 20)
        assert [e["event"] for e in got] == ["create", "pause", "resume"]


async def test_listener_recovers_after_its_backend_is_killed(pg_database_url: str) -> None:
    async with serve(pg_database_url) as a, serve(pg_database_url, poll_interval_s=60) as b:
        listener = b.runtime.listener
        assert isinstance(listener, PgListener) and listener.connects == 1
        run_id = await create(a)
        reader = asyncio.create_task(entries(b.client, "/api/stream", 4, last_event_id=0))
        async with a.runtime.store.read() as conn:
            await conn.execute(
                text("SELECT pg_terminate_backend(:pid)"), {"pid": listener.backend_pid}
            )
        # Committed while B is not listening: the catch-up after reconnecting delivers it.
        await a.client.post(f"/api/runs/{run_id}/pause")

        async def reconnected() -> bool:
            return listener.connects >= 2

        await eventually(reconnected)
        await a.client.post(f"/api/runs/{run_id}/resume")
        await a.client.post(f"/api/runs/{run_id}/cancel")
        got = await asyncio.wait_for(reader, 20)
        assert [e["event"] for e in got] == ["create", "pause", "resume", "cancel"]


class Slow:
    """An approval job that takes `seconds`, counting its runs."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls = 0

    async def __call__(self, ctx: JobContext) -> JobOutcome:
        self.calls += 1
        await asyncio.sleep(self.seconds)
        return JobOutcome("processed", {"output": 0.9, "attempts": ctx.attempt})


async def slow_runtime(url: str, seconds: float) -> tuple[Runtime, Slow]:
    slow = Slow(seconds)
    return await runtime_with_approval_job(url, slow), slow


async def new_processing_run(rt: Runtime) -> str:
    run = decode_view((await rt.dispatcher.create("approval", actor="t")).body)
    await rt.dispatcher.dispatch(run.id, "process", actor="t")
    return run.id


async def test_heartbeats_keep_a_long_job_from_being_taken_over(database_url: str) -> None:
    rt, slow = await slow_runtime(database_url, seconds=1.0)
    try:
        run_id = await new_processing_run(rt)
        workers = [
            Worker(rt.dispatcher, rt.store, rt.registry, lease_s=0.3, poll_interval_s=0.05)
            for _ in range(2)
        ]
        tasks = [asyncio.create_task(w.run()) for w in workers]

        async def processed() -> bool:
            return (await rt.queries.get(run_id)).state == "waiting_for_approval"

        await eventually(processed)
        await asyncio.sleep(0.5)  # give a second worker every chance to steal it
        for w in workers:
            await w.stop()
        await asyncio.gather(*tasks)
        assert slow.calls == 1  # the lease outlived the job: nobody ran it twice
    finally:
        await rt.stop()


async def test_stopping_a_worker_releases_its_job(database_url: str) -> None:
    rt, slow = await slow_runtime(database_url, seconds=30)
    try:
        run_id = await new_processing_run(rt)
        worker = Worker(rt.dispatcher, rt.store, rt.registry, lease_s=60, poll_interval_s=0.05)
        task = asyncio.create_task(worker.run())

        async def started() -> bool:
            return slow.calls == 1

        await eventually(started)
        await worker.stop(grace_s=0.1)
        await task
        async with rt.store.read() as conn:
            job = (await conn.execute(select(JOBS).where(JOBS.c.run_id == run_id))).one()
        # Back in the queue at once, the interrupted attempt not counted, no lease to wait out.
        assert (job.status, job.attempts, job.lease_owner) == ("ready", 0, None)
    finally:
        await rt.stop()


async def test_timers_fire_once_with_many_workers(database_url: str) -> None:
    rt = Runtime(settings_for(database_url), build_registry(0.0))
    await rt.start()
    try:
        ids = []
        for _ in range(12):
            run = decode_view(
                (
                    await rt.dispatcher.create(
                        "approval", actor="t", input={"output": 0.9, "approval_timeout_s": 0.3}
                    )
                ).body
            )
            await rt.dispatcher.dispatch(run.id, "process", actor="t")
            ids.append(run.id)
        workers = [
            Worker(rt.dispatcher, rt.store, rt.registry, poll_interval_s=0.01) for _ in range(4)
        ]
        tasks = [asyncio.create_task(w.run()) for w in workers]

        async def all_expired() -> bool:
            states = [(await rt.queries.get(i)).state for i in ids]
            return all(s == "error" for s in states)

        await eventually(all_expired)
        for w in workers:
            await w.stop()
        await asyncio.gather(*tasks)
        for run_id in ids:
            events = [e.event for e in (await rt.queries.history(run_id)).items]
            assert events == ["create", "process", "processed", "expire"]
    finally:
        await rt.stop()


async def test_metrics(live_server: LiveServer) -> None:
    client = live_server.client
    run_id = await create(live_server)
    await client.post(f"/api/runs/{run_id}/process")

    async def waiting() -> bool:
        view = (await client.get(f"/api/runs/{run_id}")).json()
        return bool(view["state"] == "waiting_for_approval")

    await eventually(waiting)
    await client.post(f"/api/runs/{run_id}/approve")
    async with client.stream("GET", "/api/stream"):
        text_ = (await client.get("/metrics")).text
    lines = set(text_.splitlines())
    assert 'signoff_transitions_total{definition="approval",event="approve"} 1.0' in lines
    assert 'signoff_transitions_total{definition="approval",event="processed"} 1.0' in lines
    assert 'signoff_runs{definition="approval",lifecycle="completed",state="finished"} 1.0' in lines
    assert 'signoff_job_attempts_total{kind="approval"} 1.0' in lines
    assert "signoff_transition_commit_seconds_count 4.0" in lines
    assert "signoff_sse_clients 1.0" in lines
    assert "signoff_queue_due 0.0" in lines
