"""What a business chart declares to the runtime: state meanings, events, who decides, input."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import msgspec
from statemachine import StateChart

from signoff.engine.model import delays as delay_rules
from signoff.engine.model.delays import Delays
from signoff.engine.model.roles import Role
from signoff.engine.model.structure import structural_hash
from signoff.engine.model.tasks import TASK_EVENT_PREFIX, WaitTask
from signoff.engine.model.triggers import Receive, Receives, Trigger

ANY_APPROVER = "*"  # a task's candidate: every approver


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
    # Per wait state, its task: candidates, due time, reminder, escalation (default: the
    # state's deciding group, nothing timed).
    tasks: Mapping[str, WaitTask] = field(default_factory=dict)
    # Per event, the data it takes: a msgspec Struct (code) or a JSON Schema (documents);
    # other data is refused with 422 naming the field.
    event_types: Mapping[str, type[msgspec.Struct]] = field(default_factory=dict)
    event_schemas: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Per wait state, its SLA: how long a run should stay there at most, in seconds. Stays
    # longer count as breaches in the stats (GET /api/definitions/{name}/stats).
    slas: Mapping[str, float] = field(default_factory=dict)
    # External events (POST /api/events): those that start a run of this definition, and per
    # wait state, those it receives, by name (signoff.engine.model.triggers).
    triggers: Sequence[Trigger] = ()
    receives: Receives = field(default_factory=dict)
    # Per state, the events it sends itself after a while (signoff.engine.model.delays).
    delays: Delays = field(default_factory=dict)

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
        no_task = [s for s in self.tasks if self.kinds.get(s) is not StateKind.WAIT]
        if no_task:
            raise ValueError(f"{self.name}: tasks name {no_task}, which are not wait states")
        no_wait = [s for s in self.slas if self.kinds.get(s) is not StateKind.WAIT]
        if no_wait:
            raise ValueError(f"{self.name}: slas name {no_wait}, which are not wait states")
        if any(v <= 0 for v in self.slas.values()):
            raise ValueError(f"{self.name}: an SLA must be a positive number of seconds")
        events = {str(e.id) for s in states.values() for e in s.transitions.unique_events}
        taken = sorted(e for e in events if e.startswith(TASK_EVENT_PREFIX))
        if taken:
            raise ValueError(f"{self.name}: events {taken} use the runtime's prefix 'task.'")
        problems = self._external_problems(events) + self._delay_problems(events)
        if problems:
            raise ValueError(f"{self.name}: {'; '.join(problems)}")

    def _external_problems(self, events: set[str]) -> list[str]:
        found = [p for t in self.triggers for p in t.problems()]
        for state, names in self.receives.items():
            if self.kinds.get(state) is not StateKind.WAIT:
                found.append(f"receives names {state!r}, which is not a wait state")
            for name, receive in names.items():
                where = f"{state!r} receives {name!r} as {receive.event!r}"
                if receive.event not in events:
                    found.append(f"{where}, which the chart does not have")
                elif receive.event in self.internal_events | self.decision_events:
                    # A decision is a person's, an internal event a worker's: neither may come
                    # from outside under an operator's name.
                    found.append(f"{where}, which is internal or a decision")
                found += [f"{where}: {p}" for p in receive.problems()]
        return found

    def _delay_problems(self, events: set[str]) -> list[str]:
        found = []
        for state in self.delays:
            if state not in self.chart.states_map:
                found.append(f"delays name {state!r}, which the chart does not have")
            for delay in delay_rules.of(self.delays, state):
                if delay.event not in events:
                    found.append(f"the delay in {state!r} sends {delay.event!r}, not in the chart")
        return found

    def receiving(self, configuration: Sequence[str], name: str) -> Receive | None:
        """What the run does with the external event `name` in this configuration (None:
        no state it is in receives it)."""
        for state in configuration:
            receive = self.receives.get(state, {}).get(name)
            if receive is not None:
                return receive
        return None

    def task_slots(self, configuration: Sequence[str]) -> dict[str, str]:
        """The tasks open in this configuration: slot → the wait state it is for. A wait state
        is one task, or, holding approval regions, one per region not yet final (a task keeps
        its claim and its voters while the run moves inside its region)."""
        active = set(configuration)
        slots: dict[str, str] = {}
        for state in configuration:
            if self.kinds.get(state) is not StateKind.WAIT:
                continue
            node = self.chart.states_map[state]
            regions = [r for r in self.regions if r in active and _within(self, r, node)]
            if not regions:
                slots[state] = state
            for region in regions:
                leaf = [c for c in self.chart.states_map[region].states if c.id in active]
                if not (leaf and leaf[0].final):
                    slots[region] = state
        return slots

    def candidates(self, slot: str, state: str) -> list[str]:
        """Who may take a task: `user:<actor>`, `group:<group>`, or `*` (any approver)."""
        task = self.tasks.get(state)
        if task is not None and (task.groups or task.users):
            return [f"group:{g}" for g in task.groups] + [f"user:{u}" for u in task.users]
        group = self.regions.get(slot) or self.deciders.get(state)
        return [f"group:{group}"] if group else [ANY_APPROVER]

    def groups_deciding(self, configuration: Sequence[str]) -> set[str]:
        """The groups whose approvers decide in this configuration (empty: any approver)."""
        return {self.deciders[s] for s in configuration if s in self.deciders}

    @cached_property
    def structural_hash(self) -> str:
        """What the chart's stored snapshots depend on (signoff.engine.model.structure)."""
        return structural_hash(self.chart, self.kinds)


def _within(spec: Definition, state: str, ancestor: Any) -> bool:
    node = spec.chart.states_map[state].parent
    while node is not None:
        if node.id == ancestor.id:
            return True
        node = node.parent
    return False
