"""One figure, measured with the code of the current checkout, for A/B runs of two checkouts.

`cd CHECKOUT && PYTHONPATH=CHECKOUT python -m bench.ab_measure http|sse|rate|batch|batch-pg`
(`sse-pg-10k`, `sse-pg-10k-1`: 10,000 SSE clients over `serve --processes 4` or 1 on
PostgreSQL; `http-2`: `http` from `serve --processes 2`)
(`batch-pg-split`: batch-pg with the jobs run by a worker process of their own;
`batch-pg-split-quiet`: the same, that process's feed ignoring other processes' commits)
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
    if which.startswith("sse-pg-10k"):  # 10,000 clients over 4 (or -1: 1) API processes, PG
        processes = 1 if which.endswith("-1") else 4
        r = await sse.sse_latency("pg", 10_000, 10, processes=processes)
        return {k: r[k] for k in ("p50_ms", "p99_ms", "first_ms", "delivered", "expected")}
    if which == "http-2":  # the same as `http`, from `serve --processes 2`
        r = await http.approve_rate("sqlite", 10000, 5, processes=2)
        return {"rps": r["rps"], "p99_ms": r["p99_ms"]}
    if which in ("batch", "batch-pg"):
        r = await roundtrip.batch("pg" if which == "batch-pg" else "sqlite", 1000, 16)
        return {"rps": r["rps"]}
    if which in ("batch-pg-split", "batch-pg-split-quiet"):  # jobs in a worker process
        quiet = which.endswith("-quiet")
        r = await roundtrip.batch("pg", 1000, 16, split=True, quiet_feed=quiet)
        return {"rps": r["rps"]}
    if which == "rate":
        return {"tps": await roundtrip.transition_rate("sqlite", 2000)}
    raise SystemExit(
        f"unknown figure {which!r}: http, http-2, sse, sse-pg-10k(-1), rate, batch or "
        "batch-pg (+ -sub)"
    )


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
