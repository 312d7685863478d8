"""Chart instances kept for reuse: building one is the dearest step of a transition.

python-statemachine resolves every callback of a chart by name when it builds an instance
(0.3 to 0.6 ms for our charts), while all of a run's state lives on its model and in
`history_values`. So a finished transition hands its instances back here, and the next
restore re-points one at another run's snapshot: new model values and history values (and its
engine restarted if the last run stopped it in a final state), the same as building it anew
(tests/test_charts.py compares the two). An instance that saw an error is never handed back:
its engine's queues may hold a half-processed event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from statemachine import StateChart

from signoff.engine.charts import snapshots
from signoff.engine.model.run_model import RunModel, model_for

Chart = StateChart[Any]
_FREE: dict[type[Chart], list[Chart]] = {}
KEEP = 256  # idle instances kept per chart class


def checkout(
    chart: type[Chart],
    configuration: Sequence[str],
    history: Mapping[str, Sequence[str]],
    context: dict[str, Any],
    input: Mapping[str, Any],
) -> Chart:
    """A chart instance at a stored configuration; an empty one enters the initial state."""
    snapshots.check(chart, configuration, history)
    value = snapshots.state_value(configuration)
    free = _FREE.get(chart)
    if free:
        machine = free.pop()
        model: RunModel = machine.model
        model.state, model.context, model.input, model.requests = value, context, input, []
        engine = machine._engine
        if not engine.running:  # it stopped in a final state; idle, it can start over
            if engine.external_queue.is_empty() and engine.internal_queue.is_empty():
                engine.running = True
            else:
                machine._engine = machine._get_engine()  # type: ignore[no-untyped-call]
        if value is None:
            machine.activate_initial_state()
    else:
        machine = chart(model=model_for(chart, value, context, input))
    machine.history_values = {k: [chart.states_map[v] for v in vs] for k, vs in history.items()}
    return machine


def checkin(*machines: Chart) -> None:
    """Hand back instances whose transition completed without an error."""
    for machine in machines:
        free = _FREE.setdefault(type(machine), [])
        if len(free) < KEEP:
            free.append(machine)
