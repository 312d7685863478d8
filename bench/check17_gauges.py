"""Issue 17's check of /metrics' job gauges once they come from counters: the section of
RESULTS.md, bench/check17_gauges.md with its marker lines replaced by the tables of the figures
bench/gauges.py keeps in bench/gauges17.json (and the round trips A/B, in bench/check15.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import check15
from bench.common import Figure
from bench.gauges import READS

TEXT = Path(__file__).with_name("check17_gauges.md")


def section(data: dict[str, Any]) -> list[str]:
    """The section: bench/check17_gauges.md, its marker lines replaced by the tables."""
    if not data:
        return []
    tables = {
        "<!-- metrics -->": _metrics_rows(data.get("metrics", {})),
        "<!-- probe -->": _probe_rows(data.get("probe", {})),
        "<!-- round trips -->": check15.ab_rows(check15.load(), "gauges17"),
        "<!-- triggers -->": _trigger_rows(data.get("triggers", {})),
    }
    lines = [""]
    for line in TEXT.read_text().rstrip("\n").split("\n"):
        lines += tables.get(line, [line])
    return lines


def _metrics_rows(by_db: dict[str, Any]) -> list[str]:
    ms = "{:,.2f}"
    lines = [
        "| database | runs | /metrics p50 ms, A (before) | B (after) | B/A | /metrics p99 ms, "
        "A / B | one run's GET p50 ms, A / B (control) |",
        "|---|---|---|---|---|---|---|",
    ]
    growth = []
    for db, name in (("sqlite", "SQLite"), ("postgres", "PostgreSQL")):
        sizes = sorted(by_db.get(db, {}).items(), key=lambda kv: int(kv[0]))
        for runs, ab in sizes:
            p50 = {side: Figure(f["metrics"]["p50_ms"]) for side, f in ab.items()}
            p99 = {side: Figure(f["metrics"]["p99_ms"]).median for side, f in ab.items()}
            get = {side: Figure(f["get run"]["p50_ms"]).median for side, f in ab.items()}
            a, b = p50.get("A"), p50["B"]
            lines.append(
                f"| {name} | {int(runs):,} | {a.show(ms) if a else '–'} | {b.show(ms)} | "
                f"{f'{b.median / a.median:.2f}' if a else '–'} | "
                f"{_pair(p99)} | {_pair(get)} |"
            )
        for side in ("A", "B"):
            medians = [
                (int(r), Figure(ab[side]["metrics"]["p50_ms"]).median)
                for r, ab in sizes
                if side in ab
            ]
            if len(medians) > 1:
                (lo, first), (hi, last) = medians[0], medians[-1]
                growth.append(
                    f"- {name}, {'before' if side == 'A' else 'after'}: {last / first:.2f} "
                    f"({hi:,} runs over {lo:,})"
                )
    return [*lines, "", "/metrics p50 at the largest size measured over the smallest:", "", *growth]


def _trigger_rows(by_db: dict[str, Any]) -> list[str]:
    if not by_db:
        return []
    us = "{:,.1f}"
    lines = [
        "| database | job write | µs with the triggers | µs without | difference, µs |",
        "|---|---|---|---|---|",
    ]
    for db, name in (("sqlite", "SQLite"), ("postgres", "PostgreSQL")):
        reps = by_db.get(db, [])
        for phase in ("insert", "claim", "settle", "delete"):
            on = Figure([r["with triggers"][phase] for r in reps])
            off = Figure([r["without"][phase] for r in reps])
            lines.append(
                f"| {name} | {phase} | {on.show(us)} | {off.show(us)} | "
                f"{on.median - off.median:,.1f} |"
            )
    return lines


def _pair(by_side: dict[str, float]) -> str:
    return " / ".join(f"{by_side[s]:.2f}" if s in by_side else "–" for s in ("A", "B"))


def _probe_rows(probes: dict[str, Any]) -> list[str]:
    if not probes:
        return []
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    found = sorted(probes.values(), key=lambda p: (p["database"] != "sqlite", p["runs"]))
    heads = [f"{names[p['database']]}, {p['runs']:,} runs" for p in found]
    lines = [
        "| read (median of 40 calls, ms) | " + " | ".join(heads) + " |",
        "|---" * (len(heads) + 1) + "|",
        "| ready jobs / due jobs in the database | "
        + " | ".join(f"{p['ready']:,} / {p['due']:,}" for p in found)
        + " |",
    ]
    for name in READS:
        lines.append(f"| {name} | " + " | ".join(f"{p['ms'][name]:.2f}" for p in found) + " |")
    return lines
