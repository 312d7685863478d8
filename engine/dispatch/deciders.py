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
)
from signoff.engine.model.definition import Definition
from signoff.engine.model.roles import Role


def check(
    spec: Definition,
    event: str,
    data: Mapping[str, Any],
    actor: str,
    roles: frozenset[str] | None,
    groups: frozenset[str] | None,
    configuration: Sequence[str] = (),
) -> None:
    """Refuse an event the actor's roles do not cover, a decision from outside the group that
    decides in the run's wait state (`configuration`), and a decision without a valid region or
    from outside the region's group.

    `roles` None: the engine itself sends (a worker, a timer, a tool). `groups` None: the caller
    is not limited to groups (an admin, an open server, the engine).
    """
    if roles is not None and Role.ADMIN not in roles:
        needed = spec.role_for(event)
        if needed not in roles:
            raise ForbiddenError(f"{actor} lacks the {needed} role.")
    if event not in spec.decision_events:
        return
    region = data.get("region")
    if not spec.regions:
        if region is not None:
            raise InvalidEventDataError(f"{spec.name} has no approval regions; omit region.")
        deciding = spec.groups_deciding(configuration)
        if groups is not None and deciding and not deciding & groups:
            state = next(s for s in configuration if s in spec.deciders)
            raise StateForbiddenError(actor, state, " or ".join(sorted(deciding)))
        return
    if not isinstance(region, str) or region not in spec.regions:
        known = " or ".join(spec.regions)
        raise InvalidEventDataError(f"{event} on {spec.name} needs a region: {known}.")
    group = spec.regions[region]
    if groups is not None and group not in groups:
        raise RegionForbiddenError(actor, region, group)
