"""What a business chart declares to the runtime: state meanings, events, who decides, input."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import msgspec
from statemachine import StateChart

from signoff.engine.model.roles import Role
from signoff.engine.model.structure import structural_hash


class StateKind(enum.Enum):
    """What a business state means to the run lifecycle."""

    WORK = "work"  # a job runs while the run is here -> lifecycle `running`
    WAIT = "wait"  # a person must act -> lifecycle `waiting`
    SUCCESS = "success"  # a final, successful state -> lifecycle `completed`
    FAILURE = "failure"  # processing failed -> lifecycle `errored`


Migration = Callable[[list[str], dict[str, Any]], tuple[list[str], dict[str, Any]]]


@dataclass(frozen=True, eq=False)  # hashed by identity: a cache key
class Definition:
    """A registered business chart and what its states and events mean to the runtime."""

    name: str
    version: int
    chart: type[StateChart[Any]]
    kinds: Mapping[str, StateKind]
    internal_events: frozenset[str] = frozenset()
    input_type: type[msgspec.Struct] | None = None
    description: str = ""
    # Events the run's creator may not send under SIGNOFF_SEPARATION_OF_DUTIES.
    approval_events: frozenset[str] = frozenset({"approve"})
    # Approval regions (parallel states decided separately) → the group whose approvers
    # decide there. When set, every decision event names its region in `data.region`, and
    # the dispatcher admits only approvers of that region's group
    # (signoff.engine.dispatch.deciders).
    regions: Mapping[str, str] = field(default_factory=dict)
    # Which events are decisions (they need the approver role; every other event the
    # operator role), and per wait state, the group whose approvers decide there: a decision
    # sent while the run is in such a state is admitted only from that group.
    decision_events: frozenset[str] = frozenset({"approve", "reject"})
    deciders: Mapping[str, str] = field(default_factory=dict)
    # Per event, the keyword arguments (data, reason, actor) that drive each of its guards and
    # validators one way or the other; the path generator (signoff.engine.charts.paths) sends
    # each, on a run started with each of `example_inputs`.
    examples: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    example_inputs: Sequence[Mapping[str, Any]] = ({},)
    # Moves a run's stored (configuration, context) from the previous version to this one;
    # None: they carry over as they are (signoff.engine.dispatch.versions).
    migrate: Migration | None = None
    # A JSON Schema a run's input must match on create (documents declare one; code charts
    # use `input_type`).
    input_schema: Mapping[str, Any] | None = None
    # Where it comes from: "code", or the format of the document it was deployed as.
    source: str = "code"

    def role_for(self, event: str) -> Role:
        """The role that sends `event`: an approver for a decision, an operator otherwise."""
        return Role.APPROVER if event in self.decision_events else Role.OPERATOR

    def __post_init__(self) -> None:
        states = self.chart.states_map
        unknown = [s for s in [*self.kinds, *self.deciders, *self.regions] if s not in states]
        if unknown:
            raise ValueError(f"{self.name}: {self.chart.__name__} has no state(s) {unknown}")
        not_waiting = [s for s in self.deciders if self.kinds.get(s) is not StateKind.WAIT]
        if not_waiting and not self.regions:
            raise ValueError(f"{self.name}: deciders name {not_waiting}, which are not wait states")

    def groups_deciding(self, configuration: Sequence[str]) -> set[str]:
        """The groups whose approvers decide in this configuration (empty: any approver)."""
        return {self.deciders[s] for s in configuration if s in self.deciders}

    @cached_property
    def structural_hash(self) -> str:
        """What the chart's stored snapshots depend on (signoff.engine.model.structure)."""
        return structural_hash(self.chart, self.kinds)
