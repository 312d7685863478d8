"""The lifecycle's names have one home (signoff.engine.LifecycleState / LifecycleEvent): the
registry refuses a lifecycle chart that does not speak them."""

from __future__ import annotations

import pytest
from statemachine import State, StateChart

from signoff.engine import LifecycleState, Registry
from signoff.machines.lifecycle import Lifecycle


class Renamed(StateChart[object]):
    """The shipped lifecycle with `paused` called `on_hold`."""

    queued = State(initial=True)
    running = State()
    waiting = State()
    errored = State()
    on_hold = State()
    completed = State(final=True)
    cancelled = State(final=True)

    run = queued.to(running) | waiting.to(running) | errored.to(running)
    wait = queued.to(waiting) | running.to(waiting) | errored.to(waiting)
    fail = running.to(errored) | waiting.to(errored)
    complete = running.to(completed) | waiting.to(completed)
    pause = running.to(on_hold) | waiting.to(on_hold)
    resume = on_hold.to(running)
    cancel = running.to(cancelled) | on_hold.to(cancelled)


def test_the_shipped_lifecycle_has_every_name() -> None:
    states = set(Lifecycle.states_map)
    assert {str(s) for s in LifecycleState} <= states
    assert Registry.of([], Lifecycle).lifecycle is Lifecycle


def test_a_lifecycle_chart_without_the_engines_names_is_refused() -> None:
    with pytest.raises(ValueError, match="lacks the lifecycle names paused"):
        Registry.of([], Renamed)
