"""One figure, measured with the code of the current checkout, for A/B runs of two checkouts.

`cd CHECKOUT && PYTHONPATH=CHECKOUT python -m bench.ab_measure http|sse|rate|batch|batch-pg`
(`http-sub`, `batch-sub`, `batch-pg-sub`: the same with a webhook subscription to everything)
prints `RESULT {json}`; alternate the two checkouts in one run and compare medians.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any


async def measure(which: str) -> dict[str, Any]:
    from bench import http, roundtrip, sse

    if which.endswith("-sub"):  # the same, with one subscription to every notification
        return await _subscribed(which.removesuffix("-sub"))
    if which == "http":
        r = await http.approve_rate("sqlite", 10000, 5)
        return {"rps": r["rps"], "p99_ms": r["p99_ms"]}
    if which == "sse":
        r = await sse.sse_latency("sqlite", 1000, 10)
        return {"p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"]}
    if which in ("batch", "batch-pg"):
        r = await roundtrip.batch("pg" if which == "batch-pg" else "sqlite", 1000, 16)
        return {"rps": r["rps"]}
    if which == "rate":
        return {"tps": await roundtrip.transition_rate("sqlite", 2000)}
    raise SystemExit(f"unknown figure {which!r}: http, sse, rate, batch or batch-pg (+ -sub)")


async def _subscribed(which: str) -> dict[str, Any]:
    """A figure with a webhook subscription to everything, delivered to a loopback receiver
    that answers 200 at once (bench/webhook_sink.py) by the same process's worker."""
    from datetime import UTC, datetime

    from bench import http, roundtrip, webhooks
    from signoff.engine.runtime import Runtime
    from signoff.engine.webhooks.subscriptions import create

    async with webhooks.sink() as hook:
        if which == "http":
            r = await http.approve_rate("sqlite", 10000, 5, webhook=hook)
            delivered = len(await webhooks.arrivals(hook))
            return {"rps": r["rps"], "p99_ms": r["p99_ms"], "delivered": delivered}

        async def subscribe(rt: Runtime) -> None:
            now = datetime.now(UTC)
            await create(rt.store, hook, actor="bench", now=now, allowed=lambda _: True)

        backend = "pg" if which == "batch-pg" else "sqlite"
        r = await roundtrip.batch(backend, 1000, 16, setup=subscribe)
        return {"rps": r["rps"], "delivered": len(await webhooks.arrivals(hook))}


if __name__ == "__main__":
    print("RESULT " + json.dumps(asyncio.run(measure(sys.argv[1]))))
