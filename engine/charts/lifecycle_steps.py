"""The lifecycle machine's steps, learned from the chart itself and remembered.

The lifecycle chart is generic: no guards on data, no actions, a handful of states. What an
event does to it depends only on its configuration and history values, so each distinct step is
run once on a real chart instance and the result is kept. Every later run takes the same step
by lookup, which saves restoring a second chart and sending it an event on every transition.
The chart stays the only definition of the lifecycle; this module only remembers its answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from statemachine import StateChart

from signoff.engine.charts import snapshots
from signoff.engine.model.run_model import RunModel

Chart = type[StateChart[Any]]
History = tuple[tuple[str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class LifecycleSnapshot:
    """Where a run's lifecycle machine is: its stored snapshot and what it means."""

    configuration: tuple[str, ...]
    history: History
    leaf: str
    final: bool

    @property
    def history_values(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.history}


def initial(chart: Chart) -> LifecycleSnapshot:
    return _initial(chart)


def stored(
    chart: Chart, configuration: Sequence[str], history: Mapping[str, Sequence[str]]
) -> LifecycleSnapshot:
    """The state a `runs` row records (validated against the chart once per distinct value)."""
    frozen = tuple(sorted((k, tuple(v)) for k, v in history.items()))
    return _stored(chart, tuple(configuration), frozen)


def step(chart: Chart, state: LifecycleSnapshot, event: str) -> LifecycleSnapshot:
    """The state after `event`; TransitionNotAllowed when the chart refuses it."""
    return _step(chart, state, event)


@lru_cache(maxsize=64)
def _initial(chart: Chart) -> LifecycleSnapshot:
    return _read(snapshots.restore(chart, RunModel(None, {}, {}), [], {}))


@lru_cache(maxsize=1024)
def _stored(chart: Chart, configuration: tuple[str, ...], history: History) -> LifecycleSnapshot:
    return _read(_instance(chart, configuration, history))


@lru_cache(maxsize=4096)
def _step(chart: Chart, state: LifecycleSnapshot, event: str) -> LifecycleSnapshot:
    machine = _instance(chart, state.configuration, state.history)
    machine.send(event)
    return _read(machine)


def _instance(chart: Chart, configuration: tuple[str, ...], history: History) -> StateChart[Any]:
    return snapshots.restore(chart, RunModel(None, {}, {}), configuration, dict(history))


def _read(machine: StateChart[Any]) -> LifecycleSnapshot:
    return LifecycleSnapshot(
        configuration=tuple(snapshots.configuration(machine)),
        history=tuple(sorted((k, tuple(v)) for k, v in snapshots.history_values(machine).items())),
        leaf=snapshots.leaf_state(machine),
        final=snapshots.is_final(machine),
    )
