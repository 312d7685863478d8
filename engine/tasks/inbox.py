"""The inbox index rows of a run's tasks (table `inbox`, signoff.engine.storage.schema)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from signoff.engine.model.lifecycle import LifecycleState
from signoff.engine.tasks.task import Task, audience

ALL = "#all"  # every task: the inbox of callers not limited to groups
LAST = datetime(9999, 12, 31, tzinfo=UTC)  # the due time of a task without one: sorted last
# A paused run's tasks wait with it: nobody can decide them until it is resumed.
_HIDDEN = frozenset({LifecycleState.PAUSED})


def rows(run: Mapping[str, Any], tasks: Sequence[Task]) -> list[dict[str, Any]]:
    """One row per task and audience member (and `#all`), unless the run cannot be decided."""
    if run["lifecycle"] in _HIDDEN:
        return []
    found = []
    for task in tasks:
        names = audience(task)
        for who in (ALL, *names):
            found.append(
                {
                    "who": who,
                    "shared": who != ALL and len(names) > 1,
                    "slot": task.slot,
                    "state": task.state,
                    "assignee": task.assignee,
                    "voters": list(task.voters),
                    "due_at": task.due_at,
                    "due_sort": task.due_at or LAST,
                    "opened_at": task.opened_at,
                }
            )
    return found
