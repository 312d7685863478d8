"""What one transition moves in the run census (table `run_counts`): how many runs each
(definition, state, lifecycle) holds, for /metrics' `signoff_runs`.

Carried like the stats counters (signoff.engine.stats.counts): rows among the transition's
counters (`pending_counts`), [definition, "runs", state, lifecycle, -1, n], folded into
`run_counts` off the write path (signoff.engine.storage.census). Every transition that changes
the run's state or its lifecycle moves one run: a pause, a resume or a failure too, which the
stats counters skip (they follow the business chart only).
"""

from __future__ import annotations

KIND = "runs"
NO_BUCKET = -1

Place = tuple[str, str]  # state, lifecycle
Row = tuple[str, str, str, str, int, int]


def moved(definition: str, before: Place | None, after: Place) -> list[Row]:
    """The census rows of a run going from `before` (None: it is new) to `after`."""
    if before == after:
        return []
    rows: list[Row] = [(definition, KIND, *after, NO_BUCKET, 1)]
    if before is not None:
        rows.insert(0, (definition, KIND, *before, NO_BUCKET, -1))
    return rows
