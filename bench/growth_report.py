"""The Growth section of RESULTS.md, from bench/growth.json (`python -m bench.growth --render`).

One table per label (before/after issue 17's fixes) and database: each figure's median over the
repetitions at each size, and its cost at the largest size over the smallest (latency, seconds,
bytes: larger over smaller; rates: smaller over larger, so above 1 is always worse), against
the issue's goal of 1.5.
"""

from __future__ import annotations

import statistics
from typing import Any

GOAL = 1.5
# The figures in the order the tables list them (growth.json keeps them sorted by name).
ORDER = [
    "create",
    "approve",
    "list",
    "list definition",
    "list state",
    "list state (rare)",
    "list lifecycle",
    "list lifecycle (rare)",
    "list ref_type",
    "list ref_type (rare)",
    "list ref_id",
    "list ref_id_prefix",
    "list deep cursor",
    "get run",
    "get history",
    "tasks",
    "stats",
    "metrics",
    "sse resume (a day back)",
    "sse resume (20,000 back)",
]
# Not per run: the last day holds more entries on a bigger database, so draining it takes longer.
NOT_PER_RUN = {"drain_s"}
DATABASES = (("sqlite", "SQLite"), ("postgres", "PostgreSQL"))
COMMAND = [
    "for n in 10000 100000 1000000; do for db in sqlite postgres; do",
    "  flock /tmp/bench.lock .venv/bin/python -m bench.growth --sizes $n --db $db --reps 3 \\",
    "    --label {label} --save",
    "done; done",
    ".venv/bin/python -m bench.report  # renders RESULTS.md, this section from bench/growth.json",
]


def _size(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}k"


def _num(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def _cell(runs: dict[str, Any], figure: str, key: str) -> float | None:
    values = runs.get("figures", {}).get(figure, {}).get(key)
    return statistics.median(values) if values else None


def _ratio(lo: float | None, hi: float | None, rate: bool) -> float | None:
    if lo is None or hi is None or lo == 0 or hi == 0:
        return None
    return lo / hi if rate else hi / lo


def _row(label: str, values: list[list[float | None]], ratios: list[float | None]) -> str:
    cells = [" / ".join(_num(v) if v is not None else "–" for v in vs) for vs in values]
    shown = [r for r in ratios if r is not None]
    ratio = " / ".join(f"{r:.2f}" for r in shown) or "–"
    verdict = ("yes" if max(shown) <= GOAL else f"**no** ({max(shown):.1f}×)") if shown else "–"
    return f"| {label} | {' | '.join(cells)} | {ratio} | {verdict} |"


def table(by_size: dict[str, Any]) -> list[str]:
    sizes = sorted(by_size, key=int)
    runs = [by_size[s] for s in sizes]
    lines = [
        "| figure | " + " | ".join(_size(int(s)) for s in sizes) + f" | {_size(int(sizes[-1]))}"
        f"/{_size(int(sizes[0]))} | within {GOAL}× |",
        "|---" * (len(sizes) + 3) + "|",
    ]
    found = runs[-1].get("figures", {})
    figures = [f for f in ORDER if f in found] + sorted(set(found) - set(ORDER))
    for figure in figures:
        keys = list(runs[-1]["figures"][figure])
        values = [[_cell(r, figure, k) for k in keys] for r in runs]
        ratios = [
            None if k in NOT_PER_RUN else _ratio(values[0][i], values[-1][i], k.endswith("per_s"))
            for i, k in enumerate(keys)
        ]
        unit = " / ".join(k.replace("_", " ") for k in keys)
        lines.append(_row(f"{figure} ({unit})", values, ratios))
    column: list[list[float | None]] = [[r.get("bytes_per_run")] for r in runs]
    growth = _ratio(column[0][0], column[-1][0], False)
    lines.append(_row("database bytes per run", column, [growth]))
    shares = " | ".join(f"{r.get('history_share', 0):.0%}" for r in runs)
    lines.append(f"| history's share of the database (table and indexes) | {shares} | | |")
    seeds = " | ".join(f"{r.get('seed_s', 0):.0f}" for r in runs)
    day = " | ".join(f"{r.get('day_entries', 0):,}" for r in runs)
    lines.append(f"| seeding the database (s) | {seeds} | | |")
    lines.append(f"| history entries of the last day (the SSE drain) | {day} | | |")
    for size, r in zip(sizes, runs, strict=True):
        if r.get("note"):
            lines += ["", f"At {_size(int(size))}: {r['note']}"]
    big = runs[-1].get("migrate")
    if big:
        lines += [
            "",
            f"`signoff migrate` at {_size(int(sizes[-1]))} runs, from revision {big['from']} to",
            f"{big['to']} (alembic took the schema one revision down first, in"
            f" {big['downgrade_s']:.1f} s):",
            f"{big['migrate_s']:.1f} s, the process's start (about a second) included.",
        ]
    return lines


def section(data: dict[str, Any]) -> list[str]:
    if not data:
        return []
    lines = [
        "",
        "## Growth (issue 17)",
        "",
        "Each per-run figure on databases of 10k, 100k and 1M runs, filled by `bench/seed.py`",
        "(template runs made by the real engine, copied in bulk; ~4.3 history entries a run),",
        "measured on a `signoff serve` process over HTTP by `bench/growth.py` (see its",
        "docstring). Cells are medians of 3 repetitions; latencies are p50 / p99 of sequential",
        "requests; the last columns are the cost at 1M over the cost at 10k (rates inverted)",
        "and whether it is within the issue's goal of 1.5×. The SQLite files are not",
        "ANALYZEd (the engine never does it, so its planner has no statistics); PostgreSQL is",
        "VACUUM ANALYZEd after the load, as autovacuum would. One (size, database) per hold of",
        "the bench lock:",
        "",
    ]
    for label, by_db in data.items():
        lines += ["```", *(line.format(label=label) for line in COMMAND), "```"]
        for db, name in DATABASES:
            if db in by_db:
                lines += ["", f"### {name}, {label} issue 17's fixes", "", *table(by_db[db])]
        lines.append("")
    return lines
