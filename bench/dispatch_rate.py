"""Sequential in-process transitions/s on SQLite: create, process, processed, approve per run.

For quick A/B checks of one change (run it from two checkouts, alternating); bench.run
measures everything else.
"""

import asyncio
import sys
import tempfile
import time

import msgspec

from signoff.engine.runtime import Runtime
from signoff.engine.settings import Settings
from signoff.machines.registry import build_registry


async def main(n: int) -> None:
    d = tempfile.mkdtemp()
    rt = Runtime(
        Settings(database_url=f"sqlite+aiosqlite:///{d}/ab.db", failure_rate=0.0, workers=0),
        build_registry(0.0),
    )
    await rt.start()
    try:
        t = time.perf_counter()
        for _ in range(n):
            rid = msgspec.json.decode(
                (await rt.dispatcher.create("approval", actor="a", input={"output": 0.9})).body
            )["id"]
            await rt.dispatcher.dispatch(rid, "process", actor="a")
            await rt.dispatcher.dispatch(
                rid, "processed", actor="w", data={"output": 0.9}, internal=True
            )
            await rt.dispatcher.dispatch(rid, "approve", actor="b", reason="ok")
        dt = time.perf_counter() - t
        print(f"{4 * n / dt:.0f}")
    finally:
        await rt.stop()


asyncio.run(main(int(sys.argv[1])))
