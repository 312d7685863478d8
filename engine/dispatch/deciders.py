"""Approval regions: which region a decision is for, and whether its actor may decide there.

A definition with regions (parallel states reviewed separately, `Definition.regions`) takes
every decision event with `data.region` naming one of them; the actor must be an approver of
that region's group. The chart's own guards then route the decision to its region and count
quorums; this module is the runtime's part, so charts never see who is in which group.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from signoff.engine.errors import InvalidEventDataError, RegionForbiddenError
from signoff.engine.model.definition import Definition


def check(
    spec: Definition,
    event: str,
    data: Mapping[str, Any],
    actor: str,
    groups: frozenset[str] | None,
) -> None:
    """Refuse a decision without a valid region, or from outside the region's group.

    `groups` None: the caller is not limited to groups (an admin, an open server, the engine).
    """
    if event not in spec.decision_events:
        return
    region = data.get("region")
    if not spec.regions:
        if region is not None:
            raise InvalidEventDataError(f"{spec.name} has no approval regions; omit region.")
        return
    if not isinstance(region, str) or region not in spec.regions:
        known = " or ".join(spec.regions)
        raise InvalidEventDataError(f"{event} on {spec.name} needs a region: {known}.")
    group = spec.regions[region]
    if groups is not None and group not in groups:
        raise RegionForbiddenError(actor, region, group)
