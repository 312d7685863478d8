"""Charts as data: states, events and transitions, for the API and for reviewers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from statemachine import HistoryState, StateChart

from signoff.engine.model.definition import Definition
from signoff.engine.model.lifecycle import CONTROL_EVENTS
from signoff.engine.model.tasks import WaitTask


class StateInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    parent: str | None
    initial: bool
    final: bool
    kind: str | None = None
    # The group whose approvers decide while a run is here (Definition.deciders).
    decided_by: str | None = None


class EventInfo(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    internal: bool
    # The role that sends it (a decision needs an approver); None for internal events.
    role: str | None = None


class TransitionInfo(msgspec.Struct, frozen=True, kw_only=True):
    event: str
    source: str
    target: str | None
    cond: list[str]


class RegionInfo(msgspec.Struct, frozen=True, kw_only=True):
    name: str  # the region's state id, and what `region` names in a decision
    group: str  # approvers of this group decide here


class TaskInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A wait state's declared task (signoff.engine.model.tasks.WaitTask); durations in
    seconds."""

    groups: list[str] = []
    users: list[str] = []
    due_after_s: float | None = None
    remind_after_s: float | None = None
    escalate_after_s: float | None = None
    escalate_to: str | None = None


class ChartInfo(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: int
    description: str
    states: list[StateInfo]
    events: list[EventInfo]
    transitions: list[TransitionInfo]
    # What the runs on this version record (signoff.engine.model.structure); the versions
    # registered.
    structural_hash: str | None = None
    versions: list[int] = []
    # Approval regions (parallel states decided separately) and the group deciding in each.
    regions: list[RegionInfo] = []
    # The JSON Schema a run's input must match (None: any JSON object).
    input_schema: dict[str, Any] | None = None
    # "code" (a pack), or the format of the chart document it was deployed as; the versions
    # retired (they start no new runs).
    source: str = "code"
    retired: list[int] = []
    # Per event that declares its data, that data's JSON Schema (the monitor's decision forms).
    event_data: dict[str, dict[str, Any]] = {}
    # Per wait state that declares its task, the task.
    tasks: dict[str, TaskInfo] = {}


def describe_chart(
    chart: type[StateChart[Any]],
    name: str,
    version: int = 1,
    description: str = "",
    kinds: dict[str, str] | None = None,
    internal: frozenset[str] = frozenset(),
    role_for: Callable[[str], str] | None = None,
    deciders: Mapping[str, str] | None = None,
) -> ChartInfo:
    states: list[StateInfo] = []
    transitions: list[TransitionInfo] = []
    events: dict[str, None] = {}
    for state in chart.states_map.values():
        if isinstance(state, HistoryState):
            continue
        states.append(
            StateInfo(
                id=str(state.id),
                name=str(state.name),
                parent=str(state.parent.id) if state.parent is not None else None,
                initial=bool(state.initial),
                final=bool(state.final),
                kind=(kinds or {}).get(str(state.id)),
                decided_by=(deciders or {}).get(str(state.id)),
            )
        )
        for transition in state.transitions:
            for event in transition.events:
                events.setdefault(str(event.id), None)
                target = transition.target
                transitions.append(
                    TransitionInfo(
                        event=str(event.id),
                        source=str(state.id),
                        target=str(target.id) if target is not None else None,
                        cond=[str(c) for c in transition.cond],
                    )
                )
    return ChartInfo(
        name=name,
        version=version,
        description=description or (chart.__doc__ or "").strip().split("\n")[0],
        states=states,
        transitions=transitions,
        events=[
            EventInfo(
                name=e,
                internal=e in internal,
                role=None if e in internal or role_for is None else role_for(e),
            )
            for e in events
        ],
    )


def describe(
    definition: Definition, versions: list[int] | None = None, retired: list[int] | None = None
) -> ChartInfo:
    info = describe_chart(
        definition.chart,
        definition.name,
        definition.version,
        definition.description,
        {k: v.value for k, v in definition.kinds.items()},
        definition.internal_events,
        lambda event: str(definition.role_for(event)),
        definition.deciders,
    )
    return msgspec.structs.replace(
        info,
        structural_hash=definition.structural_hash,
        versions=versions or [definition.version],
        regions=[RegionInfo(name=r, group=g) for r, g in definition.regions.items()],
        input_schema=input_schema(definition),
        source=definition.source,
        retired=retired or [],
        event_data=event_data(definition),
        tasks={state: _task_info(task) for state, task in definition.tasks.items()},
    )


def input_schema(definition: Definition) -> dict[str, Any] | None:
    """The JSON Schema of the definition's input, for forms and clients."""
    if definition.input_schema is not None:
        return dict(definition.input_schema)
    if definition.input_type is None:
        return None
    return msgspec.json.schema(definition.input_type)


def event_data(definition: Definition) -> dict[str, dict[str, Any]]:
    """The JSON Schema of each event's data, where the event declares it."""
    schemas = {event: dict(schema) for event, schema in definition.event_schemas.items()}
    for event, kind in definition.event_types.items():
        schemas.setdefault(event, msgspec.json.schema(kind))
    return schemas


def _task_info(task: WaitTask) -> TaskInfo:
    return TaskInfo(
        groups=list(task.groups),
        users=list(task.users),
        due_after_s=task.due_after_s,
        remind_after_s=task.remind_after_s,
        escalate_after_s=task.escalate_after_s,
        escalate_to=task.escalate_to,
    )


def describe_lifecycle(chart: type[StateChart[Any]]) -> ChartInfo:
    derived = frozenset(e for e in _events(chart) if e not in CONTROL_EVENTS)
    return describe_chart(chart, "lifecycle", internal=derived)


def _events(chart: type[StateChart[Any]]) -> list[str]:
    return [str(e.id) for s in chart.states_map.values() for t in s.transitions for e in t.events]
