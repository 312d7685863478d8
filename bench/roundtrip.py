"""Approval round trips through the engine's own Python API: create → process → job →
waiting_for_approval → approve → finished, failure rate 0, input.output = 0.9."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable

import msgspec
from sqlalchemy import text

from bench.common import fresh_database, gather_limited, percentile
from signoff.engine.dispatch.outcome import Committed
from signoff.engine.runtime import Runtime
from signoff.engine.settings import Settings
from signoff.machines.registry import build_registry


async def roundtrips(backend: str, n: int, concurrency: int) -> dict[str, float]:
    async with fresh_database(backend) as url:
        settings = Settings(
            database_url=url,
            failure_rate=0.0,
            workers=1,
            concurrency=max(16, concurrency),
            poll_interval_s=0.5,
        )
        rt = Runtime(settings, build_registry(0.0))
        await rt.start()
        processed: dict[str, asyncio.Event] = {}

        def on_commit(committed: object) -> None:
            if getattr(committed, "event", None) == "processed":
                event = processed.get(committed.run_id)  # type: ignore[attr-defined]
                if event is not None:
                    event.set()

        rt.dispatcher.listeners.append(on_commit)
        approve_latency: list[float] = []

        async def one(_: int) -> None:
            created = await rt.dispatcher.create("approval", actor="bench", input={"output": 0.9})
            run_id = msgspec.json.decode(created.body)["id"]
            done = processed[run_id] = asyncio.Event()
            await rt.dispatcher.dispatch(run_id, "process", actor="bench")
            await done.wait()
            started = time.perf_counter()
            result = await rt.dispatcher.dispatch(run_id, "approve", actor="bench")
            approve_latency.append(time.perf_counter() - started)
            assert msgspec.json.decode(result.body)["state"] == "finished"

        started = time.perf_counter()
        await gather_limited(n, concurrency, one)
        elapsed = time.perf_counter() - started
        await rt.stop()
    return {
        "rps": n / elapsed,
        "p50_ms": percentile(approve_latency, 50) * 1000,
        "p99_ms": percentile(approve_latency, 99) * 1000,
    }


async def transition_rate(backend: str, n: int = 2000) -> float:
    """Sequential transitions/s through the dispatcher (pause/resume on one run)."""
    async with fresh_database(backend) as url:
        rt = Runtime(Settings(database_url=url, workers=0), build_registry(0.0))
        await rt.start()
        created = await rt.dispatcher.create("approval", actor="bench")
        run_id = msgspec.json.decode(created.body)["id"]
        started = time.perf_counter()
        for i in range(n):
            await rt.dispatcher.dispatch(run_id, "pause" if i % 2 == 0 else "resume", actor="b")
        rate = n / (time.perf_counter() - started)
        await rt.stop()
    return rate


async def batch(
    backend: str,
    n: int,
    concurrency: int,
    setup: Callable[[Runtime], Awaitable[None]] | None = None,
    *,
    split: bool = False,
    quiet_feed: bool = False,
) -> dict[str, float]:
    """The issue's DBOS pattern: start N runs (C at a time) and wait until all wait for
    approval, then approve all N (C at a time). End to end = N / (start + approval phase).
    `setup(runtime)` runs once it has started (e.g. to subscribe a webhook). `split`: the
    jobs run in a worker process of their own (bench/worker_proc.py), as in the scale-out
    layout, instead of the benchmark's process (`quiet_feed`: see bench/worker_proc.py)."""
    async with fresh_database(backend) as url:
        settings = Settings(
            database_url=url,
            failure_rate=0.0,
            workers=0 if split else 1,
            concurrency=max(16, concurrency),
            poll_interval_s=0.5,
        )
        rt = Runtime(settings, build_registry(0.0))
        await rt.start()
        worker = await _worker_process(url, quiet_feed) if split else None
        if setup is not None:
            await setup(rt)
        latency: list[float] = []
        began = time.perf_counter()
        ids = await (_start_waiting_elsewhere if split else start_waiting)(rt, n, concurrency)
        start_s = time.perf_counter() - began

        async def approve(i: int) -> None:
            started = time.perf_counter()
            result = await rt.dispatcher.dispatch(ids[i], "approve", actor="bench")
            latency.append(time.perf_counter() - started)
            assert msgspec.json.decode(result.body)["state"] == "finished"

        began = time.perf_counter()
        await gather_limited(n, concurrency, approve)
        approve_s = time.perf_counter() - began
        if worker is not None:
            worker.terminate()
            await worker.wait()
        await rt.stop()
    return {
        "rps": n / (start_s + approve_s),
        "start_rps": n / start_s,
        "approve_rps": n / approve_s,
        "p50_ms": percentile(latency, 50) * 1000,
        "p99_ms": percentile(latency, 99) * 1000,
    }


async def start_waiting(rt: Runtime, n: int, concurrency: int) -> list[str]:
    """Create and process `n` approval runs (output 0.9), `concurrency` at a time, and wait
    until the job has brought every one to waiting_for_approval; their ids."""
    waiting: set[str] = set()
    all_waiting = asyncio.Event()

    def on_commit(committed: Committed) -> None:
        if committed.event == "processed":
            waiting.add(committed.run_id)
            if len(waiting) == n:
                all_waiting.set()

    rt.dispatcher.listeners.append(on_commit)
    ids: list[str] = []

    async def start(_: int) -> None:
        created = await rt.dispatcher.create("approval", actor="bench", input={"output": 0.9})
        run_id = msgspec.json.decode(created.body)["id"]
        ids.append(run_id)
        await rt.dispatcher.dispatch(run_id, "process", actor="bench")

    await gather_limited(n, concurrency, start)
    await all_waiting.wait()
    rt.dispatcher.listeners.remove(on_commit)
    return ids


_PROCESSED = text("SELECT count(*) FROM runs WHERE version >= 3")


async def _worker_process(url: str, quiet_feed: bool) -> asyncio.subprocess.Process:
    args = ["-m", "bench.worker_proc", url, *(["--quiet-feed"] if quiet_feed else [])]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    assert (await proc.stdout.readline()).strip() == b"ready"
    return proc


async def _start_waiting_elsewhere(rt: Runtime, n: int, concurrency: int) -> list[str]:
    """start_waiting when another process runs the jobs: its commits are not this
    dispatcher's, so the runs are counted in the database (every 20 ms) until all N have
    reached version 3 (created, processing, processed)."""
    ids: list[str] = []

    async def start(_: int) -> None:
        created = await rt.dispatcher.create("approval", actor="bench", input={"output": 0.9})
        run_id = msgspec.json.decode(created.body)["id"]
        ids.append(run_id)
        await rt.dispatcher.dispatch(run_id, "process", actor="bench")

    await gather_limited(n, concurrency, start)
    while True:
        async with rt.store.read() as conn:
            done = (await conn.execute(_PROCESSED)).scalar()
        if done == n:
            return ids
        await asyncio.sleep(0.02)
