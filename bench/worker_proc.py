"""A worker in its own process, as in the scale-out layout, for the round-trip benchmarks:
`python -m bench.worker_proc URL` runs the benchmark's jobs (failure rate 0) on that database
until SIGTERM; it prints `ready` once it listens. `--quiet-feed`: its feed ignores other
processes' commits (a worker process has no SSE clients, but its feed reads every entry other
processes commit from the table; this measures what that costs)."""

from __future__ import annotations

import asyncio
import signal
import sys

from signoff.engine.runtime import Runtime
from signoff.engine.settings import Settings
from signoff.engine.storage.listener import PgListener
from signoff.machines.registry import build_registry


async def main(url: str, quiet_feed: bool) -> None:
    settings = Settings(
        database_url=url, failure_rate=0.0, workers=1, concurrency=16, poll_interval_s=0.5
    )
    rt = Runtime(settings, build_registry(0.0))
    await rt.start(migrate=False)
    if quiet_feed:
        assert isinstance(rt.listener, PgListener)
        rt.listener.on_notify = lambda seq: None
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await rt.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], "--quiet-feed" in sys.argv[2:]))
