"""One external event delivered to 1,000 correlated waiting runs (POST /api/events' engine
path), on SQLite and PostgreSQL: by ref (one index lookup) and by a key in the runs' input (a
read of every waiting run of the definition). Each delivery is its own keyed transition.

    .venv/bin/python -m bench.events [--runs 1000] [--repeat 3] [--save]

`--save` keeps the figures in bench/events.json; bench/report.py renders them into RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

from statemachine import State, StateChart

from bench.common import Figure, fresh_database
from signoff.engine import (
    Definition,
    ExternalEvent,
    Receive,
    Registry,
    Runtime,
    Settings,
    StateKind,
    send_event,
)
from signoff.machines.lifecycle import Lifecycle

RAW = Path(__file__).parent / "events.json"


class Order(StateChart[Any]):
    allow_event_without_transition = False
    catch_errors_as_events = False
    awaiting_payment = State(initial=True)
    paid = State(final=True)
    pay = awaiting_payment.to(paid)


ORDER = Definition(
    name="order",
    version=1,
    chart=Order,
    kinds={"awaiting_payment": StateKind.WAIT, "paid": StateKind.SUCCESS},
    receives={
        "awaiting_payment": {
            "payment.received": Receive("pay"),
            "payment.matched": Receive("pay", correlate="batch"),
        }
    },
)


async def _waiting(rt: Runtime, n: int, **create: Any) -> None:
    sem = asyncio.Semaphore(8)

    async def one(i: int) -> None:
        async with sem:
            await rt.dispatcher.create("order", actor="bench", **create)

    await asyncio.gather(*(one(i) for i in range(n)))


async def measure(backend: str, runs: int) -> dict[str, float]:
    """Seconds for one event to reach `runs` waiting runs, by ref and by key."""
    async with fresh_database(backend) as url:
        settings = Settings(database_url=url, workers=0, failure_rate=0.0)
        rt = Runtime(settings, Registry.of([ORDER], Lifecycle))
        await rt.start()
        try:
            found: dict[str, float] = {}
            await _waiting(rt, runs, ref_type="order", ref_id="o-1")
            event = ExternalEvent(
                id="by-ref", name="payment.received", ref_type="order", ref_id="o-1"
            )
            found["ref_s"] = await _timed(rt, event, runs)
            await _waiting(rt, runs, input={"batch": "b-2"})
            event = ExternalEvent(id="by-key", name="payment.matched", data={"batch": "b-2"})
            found["key_s"] = await _timed(rt, event, runs)
            return found
        finally:
            await rt.stop()


async def _timed(rt: Runtime, event: ExternalEvent, runs: int) -> float:
    started = time.perf_counter()
    record, _ = await send_event(rt.dispatcher, event, actor="bench")
    took = time.perf_counter() - started
    done = sum(d.outcome == "done" for d in record.delivered)
    assert done == runs, f"{done} of {runs} delivered"
    return took


def load(path: Path = RAW) -> dict[str, Any]:
    return dict(json.loads(path.read_text())) if path.exists() else {}


def section(data: dict[str, Any]) -> list[str]:
    """The "External events" section of RESULTS.md, from events.json."""
    if not data:
        return []
    lines = [
        "",
        "## Check after issue 16: one external event to 1,000 correlated waiting runs",
        "",
        "`python -m bench.events --save`: `send_event` (the engine path of `POST /api/events`)",
        "delivering one event to that many waiting runs, each delivery its own transaction with",
        "its idempotency key, history entry and hash; median of the repetitions (min–max).",
        "",
        "| database | runs | by ref, s | by key, s | deliveries/s (by ref) |",
        "|---|---|---|---|---|",
    ]
    for db, name in (("sqlite", "SQLite"), ("pg", "PostgreSQL")):
        r = data.get(db)
        if r is None:
            continue
        ref, key = Figure(r["ref_s"]), Figure(r["key_s"])
        rate = r["runs"] / ref.median
        lines.append(
            f"| {name} | {r['runs']:,} | {ref.show('{:,.2f}')} | {key.show('{:,.2f}')} | "
            f"{rate:,.0f} |"
        )
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args()
    data = load()
    for backend, key in (("sqlite", "sqlite"), ("postgresql", "pg")):
        reps = [await measure(backend, args.runs) for _ in range(args.repeat)]
        figures = {
            "runs": args.runs,
            "ref_s": [r["ref_s"] for r in reps],
            "key_s": [r["key_s"] for r in reps],
        }
        print(backend, json.dumps(figures))
        data[key] = figures
    if args.save:
        RAW.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    print("\n".join(section(data)))


if __name__ == "__main__":
    asyncio.run(main())
