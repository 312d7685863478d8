"""What tracing costs when it is off (issue 16, point 7), kept in bench/tracing.json and
rendered into RESULTS.md by bench/report.py.

    .venv/bin/python -m bench.tracing hooks
        the hooks a transition calls, off and on, in nanoseconds (no database)
    .venv/bin/python -m bench.tracing inproc BEFORE
        in one process, blocks of transitions alternating between the dispatcher's transaction
        with its tracing hooks (off) and BEFORE's, CPU time per transition
    .venv/bin/python -m bench.tracing cpu --a BEFORE --b AFTER --pairs 15
        CPU time per sequential transition, each checkout in turn (its own venv and code)
    .venv/bin/python -m bench.alternate --a BEFORE --b AFTER --pairs 9 batch batch-pg rate \\
        | tee ab.log && .venv/bin/python -m bench.tracing ab ab.log --a-commit X --b-commit Y
        keeps an alternating A/B of round trips (two checkouts, tracing off in B)
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from bench.common import Figure

RAW = Path(__file__).parent / "tracing.json"
# The figures bench.alternate measures, as RESULTS.md names them.
AB_FIGURES = {
    "rate": ("in-process transitions/s, sequential (SQLite)", "tps"),
    "batch": ("start N, then approve N, SQLite, round trips/s", "rps"),
    "batch-pg": ("start N, then approve N, PostgreSQL, round trips/s", "rps"),
    "http": ("HTTP approves/s (wrk, 32 connections)", "rps"),
}
ROUNDS, CALLS = 5, 100_000
ENTRY = (
    b'{"seq":2,"run_id":"r","business":{"from":["waiting"],"to":["paying"]},'
    b'"lifecycle":{"from":["active","waiting"],"to":["active","running"]}}'
)


def one_transition(tracer: Any) -> float:
    """ns per transition of what the engine calls on a tracer: the span around the transaction,
    `committed`, the job stamp check in write.py and two delivery payloads."""
    from signoff.engine.tracing import carried, stamp

    payload = {"id": "msg", "type": "transition", "message": {}}
    started = time.perf_counter_ns()
    for _ in range(CALLS):
        with tracer.transition("approve", "r") as span:
            carried.current.get()
            stamp(payload)
            stamp(payload)
            span.committed("payout", "r", ENTRY)
    return (time.perf_counter_ns() - started) / CALLS


def hooks() -> dict[str, list[float]]:
    from opentelemetry.sdk.trace import TracerProvider

    from signoff.engine.tracing import Tracer
    from signoff.engine.tracing.otel import OtelTracer

    off, on = Tracer(), OtelTracer(TracerProvider())  # on: spans made, exported nowhere
    found: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(ROUNDS):
        found["off"].append(one_transition(off))
        found["on"].append(one_transition(on))
    return found


# Run by each checkout's own Python: process CPU time per transition, which waiting for a
# busy CPU or for the disk does not inflate as it does wall time.
CPU_SCRIPT = """
import asyncio, json, os, sys, tempfile, time
from signoff.engine.runtime import Runtime
from signoff.engine.settings import Settings
from signoff.machines.registry import build_registry
N = int(sys.argv[1])
async def main():
    url = f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/cpu.db"
    rt = Runtime(Settings(database_url=url, workers=0), build_registry(0.0))
    await rt.start()
    run = await rt.dispatcher.create("approval", actor="bench")
    for i in range(200):
        await rt.dispatcher.dispatch(run.run_id, "pause" if i % 2 == 0 else "resume", actor="b")
    cpu = time.process_time()
    for i in range(N):
        await rt.dispatcher.dispatch(run.run_id, "pause" if i % 2 == 0 else "resume", actor="b")
    print("RESULT " + json.dumps({"cpu_us": (time.process_time() - cpu) / N * 1e6}))
    await rt.stop()
asyncio.run(main())
"""


def cpu(a: Path, b: Path, pairs: int, n: int = 3000) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {"A": [], "B": []}
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    for i in range(pairs):
        order = [("A", a), ("B", b)]
        for side, checkout in order if i % 2 == 0 else order[::-1]:
            out = subprocess.run(
                [str(checkout / ".venv/bin/python"), "-c", CPU_SCRIPT, str(n)],
                cwd=checkout,
                env={**env, "PYTHONPATH": str(checkout)},
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            line = next(x for x in out.splitlines() if x.startswith("RESULT "))
            found[side].append(json.loads(line.removeprefix("RESULT "))["cpu_us"])
            print(f"round {i + 1} {side} {found[side][-1]:.1f} µs", flush=True)
    return found


async def inproc(before: Path, rounds: int = 12, n: int = 1000) -> dict[str, list[float]]:
    import tempfile
    import textwrap

    from signoff.engine.dispatch import dispatcher as module
    from signoff.engine.runtime import Runtime
    from signoff.engine.settings import Settings
    from signoff.machines.registry import build_registry

    src = (before / "engine/dispatch/dispatcher.py").read_text()
    code = src[src.index("    async def _once(") : src.index("    async def _create(")]
    namespace = dict(vars(module))
    exec(textwrap.dedent(code), namespace)
    old, new = namespace["_once"], module.Dispatcher._once

    async def old_once(self: Any, idem: Any, body: Any, single: bool, *_: Any) -> Any:
        return await old(self, idem, body, single)

    url = f"sqlite+aiosqlite:///{tempfile.mkdtemp()}/inproc.db"
    rt = Runtime(Settings(database_url=url, workers=0), build_registry(0.0))
    await rt.start()
    run = await rt.dispatcher.create("approval", actor="bench")
    found: dict[str, list[float]] = {"A": [], "B": []}
    for r in range(rounds):
        for side in ("A", "B") if r % 2 == 0 else ("B", "A"):
            setattr(module.Dispatcher, "_once", old_once if side == "A" else new)  # noqa: B010
            started = time.process_time()
            for i in range(n):
                event = "pause" if i % 2 == 0 else "resume"
                await rt.dispatcher.dispatch(run.run_id, event, actor="bench")
            found[side].append((time.process_time() - started) / n * 1e6)
    setattr(module.Dispatcher, "_once", new)  # noqa: B010
    await rt.stop()
    return found


def parse_alternate(log: str) -> dict[str, dict[str, list[float]]]:
    """bench.alternate's lines (`round 3 B batch {...}`) as side → figure → values."""
    found: dict[str, dict[str, list[float]]] = {"A": {}, "B": {}}
    for line in log.splitlines():
        parts = line.split(" ", 4)
        if len(parts) < 5 or parts[0] != "round" or parts[3] not in AB_FIGURES:
            continue
        side, figure, values = parts[2], parts[3], ast.literal_eval(parts[4])
        found[side].setdefault(figure, []).append(float(values[AB_FIGURES[figure][1]]))
    return found


def load(path: Path = RAW) -> dict[str, Any]:
    return dict(json.loads(path.read_text())) if path.exists() else {}


def section(data: dict[str, Any]) -> list[str]:
    """The "Tracing off" section of RESULTS.md, from tracing.json."""
    if not data:
        return []
    lines = [
        "",
        "## Check after issue 16: what tracing costs when it is off",
        "",
    ]
    h = data.get("hooks")
    if h:
        off, on = Figure(h["off"]), Figure(h["on"])
        lines += [
            "`python -m bench.tracing hooks`: what a transition calls on its tracer (the span",
            "around the transaction, its attributes, the job-stamp check, two delivery payloads),",
            f"{CALLS:,} times, median of the rounds (min–max): **off {off.show('{:,.0f}')} ns**",
            f"per transition; on, with spans made but exported nowhere, {on.show('{:,.0f}')} ns.",
            "",
        ]
    for key, intro in (
        (
            "inproc",
            "`python -m bench.tracing inproc BEFORE`: one process on SQLite, blocks of 1,000 "
            "sequential transitions alternating between the dispatcher's transaction with the "
            "tracing hooks (B, off) and the same function as it was before them (A, compiled "
            "from the older checkout's source), process CPU time per transition:",
        ),
        (
            "cpu",
            "`python -m bench.tracing cpu --a A --b B`: the same sequential transitions, each "
            "checkout in its own process and virtualenv, alternating, CPU time per transition:",
        ),
    ):
        d = data.get(key)
        if d:
            a, b = Figure(d["A"]), Figure(d["B"])
            lines += [
                intro,
                f"A ({d['a']}) {a.show('{:,.1f}')} µs, B {b.show('{:,.1f}')} µs, "
                f"median B/A {b.median / a.median:.3f} ({len(a.values)} rounds each).",
                "",
            ]
    ab = data.get("ab")
    if ab:
        lines += [
            f"A/B on {ab['date']}, the two checkouts alternating in one run (A = {ab['a']}, the",
            f"commit before tracing; B = {ab['b']}, with it, no `OTEL_*` set), each with its own",
            "virtualenv and code on PYTHONPATH:",
            f"`python -m bench.alternate --a A --b B --pairs {ab['pairs']} "
            f"{' '.join(f for f in AB_FIGURES if f in ab['A'])}`.",
            "Medians, min–max in brackets.",
            "",
            "| figure | pairs | A (before) | B (tracing off) | median B/A |",
            "|---|---|---|---|---|",
        ]
        for figure, (name, _) in AB_FIGURES.items():
            if figure not in ab["A"]:
                continue
            a, b = Figure(ab["A"][figure]), Figure(ab["B"][figure])
            lines.append(
                f"| {name} | {len(a.values)} | {a.show()} | {b.show()} | "
                f"{b.median / a.median:.2f} |"
            )
        lines += ["", ab["findings"]]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("hooks")
    i = sub.add_parser("inproc")
    i.add_argument("before", type=Path)
    i.add_argument("--a-commit", required=True)
    c = sub.add_parser("cpu")
    c.add_argument("--a", type=Path, required=True)
    c.add_argument("--b", type=Path, required=True)
    c.add_argument("--pairs", type=int, default=15)
    c.add_argument("--a-commit", required=True)
    c.add_argument("--b-commit", required=True)
    ab = sub.add_parser("ab")
    ab.add_argument("log", type=Path)
    ab.add_argument("--a-commit", required=True)
    ab.add_argument("--b-commit", required=True)
    ab.add_argument("--findings", default="")
    args = parser.parse_args()
    data = load()
    if args.what == "inproc":
        import asyncio

        found = asyncio.run(inproc(args.before))
        data["inproc"] = {**found, "a": args.a_commit}
        a, b = statistics.median(found["A"]), statistics.median(found["B"])
        print(f"A {a:.1f} µs  B {b:.1f} µs  B/A {b / a:.3f}")
    elif args.what == "cpu":
        found = cpu(args.a, args.b, args.pairs)
        data["cpu"] = {**found, "a": args.a_commit, "b": args.b_commit}
        a, b = statistics.median(found["A"]), statistics.median(found["B"])
        print(f"A {a:.1f} µs  B {b:.1f} µs  B/A {b / a:.3f}")
    elif args.what == "hooks":
        data["hooks"] = hooks()
        off = statistics.median(data["hooks"]["off"])
        print(f"off {off:.0f} ns, on {statistics.median(data['hooks']['on']):.0f} ns")
    else:
        alternated = parse_alternate(args.log.read_text())
        pairs = min(len(v) for side in alternated.values() for v in side.values())
        data["ab"] = {
            **alternated,
            "a": args.a_commit,
            "b": args.b_commit,
            "pairs": pairs,
            "date": time.strftime("%Y-%m-%d"),
            "findings": args.findings,
        }
        for figure, values in alternated["A"].items():
            a, b = statistics.median(values), statistics.median(alternated["B"][figure])
            print(f"{figure}: A {a:,.0f}  B {b:,.0f}  B/A {b / a:.2f}")
    RAW.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
