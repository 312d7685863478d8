"""Claiming, releasing, reassigning, delegating a run's task, and the timers that remind and
escalate: what each does to the tasks, and who may do it. The dispatcher writes the result as
a history entry of its own (`task.claim`, …), on the feed like any transition."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from msgspec.structs import replace

from signoff.engine.dispatch.deciders import describe
from signoff.engine.errors import (
    DuplicateApprovalError,
    ForbiddenError,
    InternalEventError,
    InvalidEventDataError,
    SeparationOfDutiesError,
    TaskClaimedError,
    TaskForbiddenError,
    TaskNotClaimedError,
    TaskNotOpenError,
)
from signoff.engine.model import tasks as events
from signoff.engine.model.roles import Role
from signoff.engine.tasks.plan import TaskPlan
from signoff.engine.tasks.task import Task, offered_to


@dataclass(frozen=True)
class Caller:
    """Who acts: roles None is the engine itself (a timer); groups None is not limited."""

    actor: str
    roles: frozenset[str] | None
    groups: frozenset[str] | None

    @property
    def admin(self) -> bool:
        return self.roles is None or Role.ADMIN in self.roles

    def holds(self, role: Role) -> bool:
        return self.admin or (self.roles is not None and role in self.roles)


@dataclass(frozen=True)
class Target:
    """Whom a task is handed to (reassign, delegate); `known` False: the server has no
    directory of people (no tokens), so whether they may decide is not checked here."""

    actor: str
    roles: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    known: bool = True


@dataclass(frozen=True)
class Action:
    """A task event's effect: the tasks after it, the task it changed, its history data."""

    plan: TaskPlan
    task: Task
    data: dict[str, Any]


def act(
    tasks: Sequence[Task],
    event: str,
    slot: str | None,
    caller: Caller,
    *,
    run_id: str,
    created_by: str,
    separation_of_duties: bool,
    target: Target | None = None,
    escalate_to: str | None = None,
) -> Action:
    """What `event` does to the task in `slot` (None: the run's only open task)."""
    if event in events.TIMED_TASK_EVENTS and caller.roles is not None:
        raise InternalEventError(event)
    task = _find(tasks, slot, run_id)
    data: dict[str, Any] = {"slot": task.slot}
    if event == events.CLAIM:
        _may_claim(task, caller, created_by, separation_of_duties)
        changed = replace(task, assignee=caller.actor, acting_for=None)
    elif event == events.RELEASE:
        if task.assignee is None:
            raise TaskNotClaimedError(f"Nobody has claimed the task in {task.slot}.")
        if task.assignee != caller.actor and not caller.holds(Role.OPERATOR):
            raise TaskClaimedError(task.slot, task.assignee)
        data["from"] = task.assignee
        changed = replace(task, assignee=None, acting_for=None)
    elif event in (events.REASSIGN, events.DELEGATE):
        to = _handed_to(task, event, caller, target, created_by, separation_of_duties)
        data |= {"from": task.assignee, "to": to.actor}
        acting_for = task.acting_for or task.assignee if event == events.DELEGATE else None
        if acting_for is not None:
            data["acting_for"] = acting_for
        changed = replace(task, assignee=to.actor, acting_for=acting_for)
    elif event == events.REMIND:
        changed = task
    elif event == events.ESCALATE:
        if escalate_to is None:
            raise InvalidEventDataError(f"The task in {task.slot} declares no escalation.")
        data |= {"from": task.candidates, "to": escalate_to}
        changed = replace(
            task, candidates=[f"group:{escalate_to}"], assignee=None, acting_for=None,
            escalated=True,
        )  # fmt: skip
    else:
        raise InvalidEventDataError(f"{event!r} is not a task event.")
    after = [changed if t.slot == task.slot else t for t in tasks]
    return Action(TaskPlan(after), changed, data)


def _find(tasks: Sequence[Task], slot: str | None, run_id: str) -> Task:
    open_ = [t.slot for t in tasks]
    if slot is None and len(tasks) == 1:
        return tasks[0]
    found = next((t for t in tasks if t.slot == slot), None)
    if found is None:
        raise TaskNotOpenError(run_id, slot, open_)
    return found


def _may_claim(task: Task, caller: Caller, created_by: str, sod: bool) -> None:
    if not caller.holds(Role.APPROVER):
        raise ForbiddenError(f"{caller.actor} lacks the approver role.")
    if task.assignee is not None:
        raise TaskClaimedError(task.slot, task.assignee)
    _may_decide(task, caller.actor, caller.groups, created_by, sod, admin=caller.admin)


def _may_decide(
    task: Task, actor: str, groups: frozenset[str] | None, created_by: str, sod: bool, *,
    admin: bool,
) -> None:  # fmt: skip
    """Refuse someone who could not decide the task: not a candidate, its creator under
    separation of duties, or already counted in it."""
    if not admin and not offered_to(task, actor, groups):
        raise TaskForbiddenError(
            f"{actor} is not among the candidates for the task in {task.slot} "
            f"({describe(task.candidates)})."
        )
    if sod and actor == created_by:
        raise SeparationOfDutiesError()
    if actor in task.voters:
        raise DuplicateApprovalError(actor)


def _handed_to(
    task: Task,
    event: str,
    caller: Caller,
    target: Target | None,
    created_by: str,
    sod: bool,
) -> Target:
    if target is None:
        raise InvalidEventDataError(f"{event} needs `to`: whom the task goes to.")
    if event == events.REASSIGN and not caller.holds(Role.OPERATOR):
        raise ForbiddenError(f"{caller.actor} lacks the operator role, who reassign tasks.")
    if event == events.DELEGATE and task.assignee != caller.actor:
        held = f"claimed by {task.assignee}" if task.assignee else "not claimed"
        raise TaskForbiddenError(
            f"Only the task's assignee delegates it; the task in {task.slot} is {held}."
        )
    if target.actor == task.assignee:
        raise InvalidEventDataError(f"{target.actor} already holds the task in {task.slot}.")
    if target.known:
        roles = target.roles
        if not ({Role.APPROVER, Role.ADMIN} & roles):
            raise InvalidEventDataError(f"{target.actor} is not an approver, so cannot decide.")
        groups = None if Role.ADMIN in roles else target.groups
        try:
            _may_decide(task, target.actor, groups, created_by, sod, admin=groups is None)
        except (TaskForbiddenError, SeparationOfDutiesError, DuplicateApprovalError) as exc:
            raise InvalidEventDataError(f"{target.actor} cannot decide it: {exc.message}") from exc
    return target
