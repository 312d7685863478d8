"""The same approval pattern on DBOS Transact, as a peer: a workflow with one step, then
DBOS.recv() for the approval, then done; N workflows, C at a time; DBOS.send approves.

Run in its own process (DBOS keeps global state): python -m bench.dbos_peer sqlite|pg N C URL
Prints one JSON object: round trips/s and approve (send) → finished latency.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from dbos import DBOS

from bench.common import percentile

step_done: dict[int, asyncio.Event] = {}
loop: asyncio.AbstractEventLoop


@DBOS.step()
async def process_queue(i: int) -> str:
    return f"queued-{i}"  # the simulated queue processing, as in Signoff's job


@DBOS.workflow()
async def approval(i: int) -> str:
    await process_queue(i)
    loop.call_soon_threadsafe(step_done[i].set)
    message = await DBOS.recv_async("approval", timeout_seconds=600)
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
    return {"rps": n / elapsed, "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000}


if __name__ == "__main__":
    backend, n, concurrency, url = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    DBOS(config={"name": "signoffbench", "system_database_url": url, "log_level": "WARNING",
                 "run_admin_server": False})
    if backend == "pg":
        DBOS.reset_system_database()
    DBOS.launch()
    result = asyncio.run(main(n, concurrency))
    print(json.dumps(result))
    DBOS.destroy()
