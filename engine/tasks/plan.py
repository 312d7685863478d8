"""What a transition does to a run's tasks: which open, which close, which stay (and who has
now decided in them), and the timers that remind and escalate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from msgspec.structs import replace

from signoff.engine.model.definition import Definition
from signoff.engine.model.run_model import TIMER_KIND, JobRequest
from signoff.engine.model.tasks import ESCALATE, REMIND
from signoff.engine.tasks.task import Task


@dataclass(frozen=True)
class TaskPlan:
    """The run's tasks after a transition, and how they changed."""

    tasks: list[Task]
    opened: list[Task] = field(default_factory=list)
    closed: list[Task] = field(default_factory=list)
    timers: list[JobRequest] = field(default_factory=list)


def plan(
    spec: Definition,
    before: Sequence[Task],
    configuration: Sequence[str],
    *,
    ended: bool,
    event: str,
    actor: str,
    data: Mapping[str, Any],
    now: datetime,
) -> TaskPlan:
    """The tasks once the run is in `configuration` (none once it `ended`). A decision by
    `actor` is counted in each task it addressed that stays open, and frees the task if the
    actor held it (a quorum's next approver may then take it)."""
    wanted = {} if ended else spec.task_slots(configuration)
    addressed = _addressed(spec, before, event, data)
    kept, closed = [], []
    for task in before:
        if task.slot not in wanted:
            closed.append(task)
            continue
        moved = replace(task, state=wanted[task.slot])
        if task.slot in addressed and actor not in task.voters:
            moved = replace(moved, voters=[*task.voters, actor])
            if task.assignee == actor:
                moved = replace(moved, assignee=None, acting_for=None)
        kept.append(moved)
    have = {t.slot for t in before}
    opened = [_open(spec, slot, state, now) for slot, state in wanted.items() if slot not in have]
    timers = [t for task in opened for t in _timers(spec, task)]
    return TaskPlan([*kept, *opened], opened, closed, timers)


def _addressed(
    spec: Definition, before: Sequence[Task], event: str, data: Mapping[str, Any]
) -> set[str]:
    """The tasks a decision is made in: its region's, else every open one."""
    if event not in spec.decision_events:
        return set()
    if spec.regions:
        region = data.get("region")
        return {region} if isinstance(region, str) else set()
    return {t.slot for t in before}


def _open(spec: Definition, slot: str, state: str, now: datetime) -> Task:
    declared = spec.tasks.get(state)
    due = None
    if declared is not None and declared.due_after_s is not None:
        due = now + timedelta(seconds=declared.due_after_s)
    return Task(
        slot=slot,
        state=state,
        candidates=spec.candidates(slot, state),
        opened_at=now,
        due_at=due,
    )


def _timers(spec: Definition, task: Task) -> list[JobRequest]:
    """A declared reminder and escalation: timers armed on the task's slot, so they stop when
    the run leaves it."""
    declared = spec.tasks.get(task.state)
    if declared is None:
        return []
    found = []
    for event, after in ((REMIND, declared.remind_after_s), (ESCALATE, declared.escalate_after_s)):
        if after is not None:
            payload = {"event": event, "slot": task.slot}
            found.append(JobRequest(TIMER_KIND, task.slot, payload, delay_s=after))
    return found
