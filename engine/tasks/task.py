"""A run's open task: one wait state (or approval region) and who may decide it now."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgspec

from signoff.engine.model.definition import ANY_APPROVER
from signoff.engine.views import TaskView

Task = TaskView  # stored in `runs.tasks` (JSON), shown in the run view


def offered_to(task: Task, actor: str, groups: frozenset[str] | None) -> bool:
    """Whether `actor` (in `groups`; None: every group) is among the task's candidates."""
    if groups is None or ANY_APPROVER in task.candidates:
        return True
    if f"user:{actor}" in task.candidates:
        return True
    return any(f"group:{g}" in task.candidates for g in groups)


def audience(task: Task) -> list[str]:
    """Who finds it in their inbox: the assignee once claimed, else the candidates."""
    return [f"user:{task.assignee}"] if task.assignee else list(task.candidates)


def load(stored: Iterable[Any] | None) -> list[Task]:
    """The tasks of a `runs.tasks` value."""
    return msgspec.convert(list(stored or []), list[Task])


def dump(tasks: Iterable[Task]) -> list[dict[str, Any]]:
    return [msgspec.to_builtins(t) for t in tasks]


def find(tasks: Iterable[Task], slot: str) -> Task | None:
    return next((t for t in tasks if t.slot == slot), None)
