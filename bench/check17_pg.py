"""Issue 17's check of PostgreSQL round trips: measured in exclusive holds with the commands
its text names (bench/check17_pg.md), rendered into RESULTS.md by bench/report.py."""

from __future__ import annotations

from pathlib import Path

TEXT = Path(__file__).with_name("check17_pg.md")
# The batch pattern on PostgreSQL after issue 17: the A/B's median for this branch.
PG_BATCH_RPS = 288.0


def section() -> list[str]:
    return ["", *TEXT.read_text().rstrip("\n").split("\n")]
