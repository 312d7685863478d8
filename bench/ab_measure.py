"""One figure, measured with the code of the current checkout, for A/B runs of two checkouts.

`cd CHECKOUT && PYTHONPATH=CHECKOUT python bench/ab_measure.py http|sse|rate|batch|batch-pg`
prints `RESULT {json}`; alternate the two checkouts in one run and compare medians.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any


async def measure(which: str) -> dict[str, Any]:
    from bench import http, roundtrip, sse

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
    raise SystemExit(f"unknown figure {which!r}: http, sse, rate, batch or batch-pg")


if __name__ == "__main__":
    print("RESULT " + json.dumps(asyncio.run(measure(sys.argv[1]))))
