"""Who may send an event: the role it needs, and for a decision, the group that decides there.

Which events are decisions is the Definition's to say (`decision_events`): a decision needs the
approver role, every other event the operator role. Where a decision is made is the
Definition's too: per wait state (`Definition.deciders`: in `manager_review` the managers decide,
in `finance_review` finance), or per parallel region reviewed separately (`Definition.regions`:
every decision names its region in `data.region`). The actor must be an approver of that
group. The chart's own guards then route the decision and count quorums; this module is the
runtime's part, so charts never see who holds which role or group.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from signoff.engine.errors import (
    ForbiddenError,
    InvalidEventDataError,
    RegionForbiddenError,
    StateForbiddenError,
    TaskClaimedError,
    TaskForbiddenError,
)
from signoff.engine.model.definition import Definition
from signoff.engine.model.roles import Role
from signoff.engine.tasks.task import Task, offered_to


def check(
    spec: Definition,
    event: str,
    data: Mapping[str, Any],
    actor: str,
    roles: frozenset[str] | None,
    groups: frozenset[str] | None,
    configuration: Sequence[str] = (),
    tasks: Sequence[Task] = (),
) -> None:
    """Refuse an event the actor's roles do not cover, a decision from outside the group that
    decides in the run's wait state (`configuration`), and a decision without a valid region or
    from outside the region's group. Where the run keeps a task for the decision (`tasks`),
    the task says who decides: its claimer alone once claimed, else its candidates (an
    escalated task's new group).

    `roles` None: the engine itself sends (a worker, a timer, a tool). `groups` None: the caller
    is not limited to groups (an admin, an open server, the engine).
    """
    admin = roles is None or Role.ADMIN in roles
    if not admin:
        assert roles is not None
        needed = spec.role_for(event)
        if needed not in roles:
            raise ForbiddenError(f"{actor} lacks the {needed} role.")
    if event not in spec.decision_events:
        return
    region = data.get("region")
    if spec.regions and (not isinstance(region, str) or region not in spec.regions):
        known = " or ".join(spec.regions)
        raise InvalidEventDataError(f"{event} on {spec.name} needs a region: {known}.")
    if not spec.regions and region is not None:
        raise InvalidEventDataError(f"{spec.name} has no approval regions; omit region.")
    addressed = [t for t in tasks if not spec.regions or t.slot == region]
    if addressed:
        if not admin:
            for t in addressed:
                task_check(t, actor, groups, region=bool(spec.regions))
        return
    # A run without tasks (stored before tasks were kept): the definition says who decides.
    if spec.regions:
        group = spec.regions[str(region)]
        if groups is not None and group not in groups:
            raise RegionForbiddenError(actor, str(region), group)
        return
    deciding = spec.groups_deciding(configuration)
    if groups is not None and deciding and not deciding & groups:
        state = next(s for s in configuration if s in spec.deciders)
        raise StateForbiddenError(actor, state, " or ".join(sorted(deciding)))


def task_check(
    task: Task, actor: str, groups: frozenset[str] | None, *, region: bool = False
) -> None:
    """Refuse a decision in `task` by someone other than its claimer, or, unclaimed, by
    someone who is not among its candidates (`region`: the task is an approval region's)."""
    if task.assignee is not None:
        if task.assignee != actor:
            raise TaskClaimedError(task.slot, task.assignee)
        return
    if not offered_to(task, actor, groups):
        if any(c.startswith("user:") for c in task.candidates):
            raise TaskForbiddenError(
                f"{actor} is not among those who decide in {task.slot}: "
                f"{describe(task.candidates)}."
            )
        groups_ = " or ".join(c.removeprefix("group:") for c in task.candidates)
        if region:
            raise RegionForbiddenError(actor, task.slot, groups_)
        raise StateForbiddenError(actor, task.slot, groups_)


def describe(candidates: Sequence[str]) -> str:
    """`group:finance`, `user:mia` → `the finance group or mia`."""
    return " or ".join(
        f"the {c[6:]} group" if c.startswith("group:") else c.split(":", 1)[-1] for c in candidates
    )
