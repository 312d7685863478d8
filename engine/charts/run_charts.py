"""Both charts of one run, restored from stored snapshots, and what the runtime reads off them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from statemachine import StateChart

from signoff.engine.charts import lifecycle_steps, snapshots
from signoff.engine.charts import pool as chart_pool
from signoff.engine.charts.lifecycle_steps import LifecycleSnapshot
from signoff.engine.model.definition import Definition, StateKind
from signoff.engine.model.lifecycle import CONTROL_EVENTS, FROZEN, TARGET, LifecycleEvent
from signoff.engine.model.run_model import RunModel


@dataclass
class RunCharts:
    """A run's business chart and lifecycle machine; the business chart runs on `model`."""

    definition: Definition
    model: RunModel
    business: StateChart[Any]
    lifecycle_chart: type[StateChart[Any]]
    lifecycle: LifecycleSnapshot

    @classmethod
    def restore(
        cls,
        definition: Definition,
        lifecycle_chart: type[StateChart[Any]],
        row: Mapping[str, Any] | None,
        input: Mapping[str, Any],
    ) -> RunCharts:
        """Restore from a `runs` row, or start both charts fresh when `row` is None."""
        row = row or {}
        business = chart_pool.checkout(
            definition.chart,
            row.get("configuration", []),
            row.get("business_history", {}),
            dict(row.get("context", {})),
            input,
        )
        if row:
            lifecycle = lifecycle_steps.stored(
                lifecycle_chart, row["lifecycle_configuration"], row["lifecycle_history"]
            )
        else:
            lifecycle = lifecycle_steps.initial(lifecycle_chart)
        return cls(definition, business.model, business, lifecycle_chart, lifecycle)

    def release(self) -> None:
        """The transition completed: the business chart instance may serve another run."""
        chart_pool.checkin(self.business)

    def send_lifecycle(self, event: str) -> None:
        """Step the lifecycle machine (TransitionNotAllowed if it refuses the event)."""
        self.lifecycle = lifecycle_steps.step(self.lifecycle_chart, self.lifecycle, event)

    @property
    def lifecycle_state(self) -> str:
        return self.lifecycle.leaf

    def derived_lifecycle_event(self) -> LifecycleEvent | None:
        """The lifecycle event implied by what the business chart is in now, if any."""
        if snapshots.is_final(self.business):
            event = LifecycleEvent.COMPLETE
        else:
            kinds = {self.definition.kinds.get(str(s.id)) for s in self.business.configuration}
            if StateKind.FAILURE in kinds:
                event = LifecycleEvent.FAIL
            elif StateKind.WORK in kinds:
                event = LifecycleEvent.RUN
            elif StateKind.WAIT in kinds:
                event = LifecycleEvent.WAIT
            else:
                return None
        return None if TARGET[event] == self.lifecycle_state else event

    def allowed_events(self) -> list[str]:
        return allowed_events(
            self.definition,
            self.lifecycle_chart,
            tuple(snapshots.configuration(self.business)),
            self.lifecycle.configuration,
        )


def allowed_events(
    definition: Definition,
    lifecycle_chart: type[StateChart[Any]],
    business_config: tuple[str, ...],
    lifecycle_config: tuple[str, ...],
) -> list[str]:
    """Public business events and control events accepted in this pair of configurations."""
    return list(_allowed(definition, lifecycle_chart, business_config, lifecycle_config))


@lru_cache(maxsize=4096)
def _allowed(
    definition: Definition,
    lifecycle_chart: type[StateChart[Any]],
    business_config: tuple[str, ...],
    lifecycle_config: tuple[str, ...],
) -> tuple[str, ...]:
    # Which transitions leave a configuration does not depend on history or context, so
    # the answer is cached per configuration pair (guards are evaluated only on send).
    lifecycle = snapshots.restore(lifecycle_chart, RunModel(None, {}, {}), lifecycle_config, {})
    control = [e for e in snapshots.allowed_events(lifecycle) if e in CONTROL_EVENTS]
    if snapshots.leaf_state(lifecycle) in FROZEN:
        return tuple(control)
    business = snapshots.restore(definition.chart, RunModel(None, {}, {}), business_config, {})
    public = [e for e in snapshots.allowed_events(business) if e not in definition.internal_events]
    return (*public, *control)
