"""A/B of two checkouts, alternating: each figure of bench/ab_measure.py measured by A, then B
(B first in every other round), each with its own virtualenv and its own code on PYTHONPATH.

    .venv/bin/python -m bench.alternate --a /tmp/ab_a --b /tmp/ab_b --pairs 5 \\
        [--b-only batch-sub ...] [--save KEY] batch batch-pg http rate

`--b-only` figures are measured by B alone, in the same rounds (e.g. the `-sub` variants that
only B's ab_measure has). Prints every result; `--save KEY` keeps them in check15.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from pathlib import Path
from typing import Any


def measure(checkout: Path, figure: str) -> dict[str, Any]:
    """One figure by `checkout`'s own code: `python -m bench.ab_measure FIGURE` run there."""
    done = subprocess.run(
        [str(checkout / ".venv/bin/python"), "-m", "bench.ab_measure", figure],
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": str(checkout)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"{checkout} {figure} failed:\n{done.stdout}\n{done.stderr[-3000:]}")
    return dict(json.loads(line.removeprefix("RESULT ")))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--a", type=Path, required=True)
    parser.add_argument("--b", type=Path, required=True)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--b-only", nargs="*", default=[])
    parser.add_argument("--save", help="keep the results in check15.json under this key")
    parser.add_argument("figures", nargs="+")
    args = parser.parse_args()
    results: dict[str, dict[str, list[dict[str, Any]]]] = {"A": {}, "B": {}}
    for i in range(args.pairs):
        for figure in args.figures:
            order = [("A", args.a), ("B", args.b)]
            for side, checkout in order if i % 2 == 0 else order[::-1]:
                r = {**measure(checkout, figure), "load": os.getloadavg()[0]}
                results[side].setdefault(figure, []).append(r)
                print(f"round {i + 1} {side} {figure} {r}", flush=True)
        for figure in args.b_only:
            r = {**measure(args.b, figure), "load": os.getloadavg()[0]}
            results["B"].setdefault(figure, []).append(r)
            print(f"round {i + 1} B {figure} {r}", flush=True)
    if args.save:
        from bench import check15

        check15.save(args.save, results)


if __name__ == "__main__":
    main()
