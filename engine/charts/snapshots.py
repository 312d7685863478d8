"""Capture a chart's configuration and history values as JSON, and restore a chart from them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from statemachine import StateChart
from statemachine.orderedset import OrderedSet

from signoff.engine.errors import SnapshotError
from signoff.engine.model.run_model import RunModel

Chart = StateChart[Any]


def restore(
    chart: type[Chart],
    model: RunModel,
    configuration: Sequence[str],
    history: Mapping[str, Sequence[str]],
) -> Chart:
    """A new chart instance at a stored configuration; an empty one enters the initial state."""
    check(chart, configuration, history)
    model.state = state_value(configuration)
    machine = chart(model=model)
    if history:
        machine.history_values = {k: [chart.states_map[v] for v in vs] for k, vs in history.items()}
    return machine


def check(
    chart: type[Chart], configuration: Sequence[str], history: Mapping[str, Sequence[str]]
) -> None:
    """Refuse a snapshot naming states the chart does not have."""
    states = chart.states_map
    unknown = [
        s for s in [*configuration, *(v for vs in history.values() for v in vs)] if s not in states
    ]
    if unknown:
        raise SnapshotError(f"{chart.__name__} has no state(s) {', '.join(unknown)}.")


def state_value(configuration: Sequence[str]) -> Any:
    """The model's state field for a configuration: None, one id, or an ordered set of ids."""
    if not configuration:
        return None
    if len(configuration) == 1:
        return configuration[0]
    return OrderedSet(configuration)


def configuration(machine: Chart) -> list[str]:
    """Every active state id, parents included, sorted (the stored and reported form)."""
    return sorted(str(s.id) for s in machine.configuration)


def history_values(machine: Chart) -> dict[str, list[str]]:
    return {k: [str(s.id) for s in v] for k, v in machine.history_values.items()}


def top_state(machine: Chart) -> str:
    """The active top-level state id."""
    for state in machine.configuration:
        if state.parent is None:
            return str(state.id)
    raise SnapshotError(f"{type(machine).__name__} has no active state.")


def leaf_state(machine: Chart) -> str:
    """The single active atomic state of a chart without parallel regions."""
    leaves = [str(s.id) for s in machine.configuration if s.is_atomic]
    if len(leaves) != 1:
        raise SnapshotError(f"{type(machine).__name__} is in {leaves}, not one atomic state.")
    return leaves[0]


def allowed_events(machine: Chart) -> list[str]:
    """Events with a transition from the current configuration (guards not evaluated)."""
    seen: dict[str, None] = {}
    for event in machine.allowed_events:
        if not is_automatic(str(event.id)):
            seen.setdefault(str(event.id), None)
    return list(seen)


# Events the chart raises itself (SCXML's done.state.X when a compound or parallel state
# completes, done.invoke.X, error.X) under either spelling: nobody sends them from outside.
AUTOMATIC_PREFIXES = ("done_state_", "done.state.", "done_invoke_", "done.invoke.", "error_")


def is_automatic(event: str) -> bool:
    return event.startswith(AUTOMATIC_PREFIXES) or event == "error" or event.startswith("error.")


def is_final(machine: Chart) -> bool:
    # A restored chart in a final state reports is_terminated == False; ask the states.
    return any(s.final and s.parent is None for s in machine.configuration)


def event_names(chart: type[Chart]) -> list[str]:
    """Every event the chart declares that can be sent to it (not its automatic events), in
    declaration order of their source states."""
    return list(_event_names(chart))


def declares(chart: type[Chart], event: str) -> bool:
    return event in _event_set(chart)


@lru_cache(maxsize=256)
def _event_set(chart: type[Chart]) -> frozenset[str]:
    return frozenset(_event_names(chart))


@lru_cache(maxsize=256)
def _event_names(chart: type[Chart]) -> tuple[str, ...]:
    # A chart class's events never change once it is built: computed once per class.
    seen: dict[str, None] = {}
    for state in chart.states_map.values():
        for event in state.transitions.unique_events:
            if not is_automatic(str(event.id)):
                seen.setdefault(str(event.id), None)
    return tuple(seen)
