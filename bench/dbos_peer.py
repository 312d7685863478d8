"""The same approval pattern on DBOS Transact, as a peer: a workflow with one step, then
DBOS.recv() for the approval, then done; DBOS.send approves.

Two patterns, as for Signoff (bench/roundtrip.py): `lanes` (C lanes, each starting one
workflow, approving it and waiting for it to finish, then the next) and `batch` (start N, C at a
time, until all wait in recv; then send N approvals, C at a time; the issue's pattern).

Run in its own process (DBOS keeps global state):
    python -m bench.dbos_peer sqlite|pg N C URL [lanes|batch]
Prints one JSON object: round trips/s and approve (send) → finished latency.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from dbos import DBOS

from bench.common import gather_limited, percentile

step_done: dict[int, asyncio.Event] = {}
finished_at: dict[int, float] = {}
loop: asyncio.AbstractEventLoop


@DBOS.step()
async def process_queue(i: int) -> str:
    return f"queued-{i}"  # the simulated queue processing, as in Signoff's job


@DBOS.workflow()
async def approval(i: int) -> str:
    await process_queue(i)
    loop.call_soon_threadsafe(step_done[i].set)
    message = await DBOS.recv_async("approval", timeout_seconds=600)
    finished_at[i] = time.perf_counter()
    return f"finished:{message}"


async def main(n: int, concurrency: int) -> dict[str, Any]:
    global loop
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    counter = iter(range(n))

    async def lane() -> None:
        for i in counter:
            step_done[i] = asyncio.Event()
            handle = await DBOS.start_workflow_async(approval, i)
            await step_done[i].wait()
            started = time.perf_counter()
            await DBOS.send_async(handle.workflow_id, "approved", "approval")
            assert (await handle.get_result()).startswith("finished")
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "rps": n / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


async def batch(n: int, concurrency: int) -> dict[str, Any]:
    global loop
    loop = asyncio.get_running_loop()
    handles: dict[int, Any] = {}
    sent_at: dict[int, float] = {}

    async def start(i: int) -> None:
        step_done[i] = asyncio.Event()
        handles[i] = await DBOS.start_workflow_async(approval, i)
        await step_done[i].wait()

    async def approve(i: int) -> None:
        sent_at[i] = time.perf_counter()
        await DBOS.send_async(handles[i].workflow_id, "approved", "approval")

    began = time.perf_counter()
    await gather_limited(n, concurrency, start)
    start_s = time.perf_counter() - began
    await asyncio.sleep(0.5)  # let every recv register (excluded: the runs sit parked)
    began = time.perf_counter()
    await gather_limited(n, concurrency, approve)
    results = await asyncio.gather(*(h.get_result() for h in handles.values()))
    approve_s = time.perf_counter() - began
    assert all(r.startswith("finished") for r in results)
    latencies = [finished_at[i] - sent_at[i] for i in range(n)]
    return {
        "rps": n / (start_s + approve_s),
        "start_rps": n / start_s,
        "approve_rps": n / approve_s,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


if __name__ == "__main__":
    backend, n, concurrency, url = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    mode = sys.argv[5] if len(sys.argv) > 5 else "lanes"
    DBOS(
        config={
            "name": "signoffbench",
            "system_database_url": url,
            "log_level": "WARNING",
            "run_admin_server": False,
        }
    )
    if backend == "pg":
        DBOS.reset_system_database()
    DBOS.launch()
    result = asyncio.run(main(n, concurrency) if mode == "lanes" else batch(n, concurrency))
    print(json.dumps(result))
    DBOS.destroy()
