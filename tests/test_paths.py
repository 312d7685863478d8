"""Paths generated from the charts (engine/paths.py): they cover every transition and guard
outcome, and each one runs through the real engine with exactly the history it predicts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest
from statemachine import State, StateChart

from signoff.engine.charts import lifecycle_steps, paths, snapshots
from signoff.engine.model.run_model import RunModel
from signoff.engine.runtime import Runtime
from signoff.machines.registry import build_registry
from tests.helpers import settings_for

REGISTRY = build_registry(0.0)
CHARTS = [(d.chart, d.examples, d.example_inputs) for d in REGISTRY.definitions.values()]
CHARTS.append((REGISTRY.lifecycle, {}, ({},)))


@pytest.mark.parametrize(
    ("chart", "examples", "inputs"), CHARTS, ids=lambda c: getattr(c, "__name__", "")
)
def test_paths_cover_every_transition_of_every_chart(
    chart: Any, examples: Any, inputs: Any
) -> None:
    walk = paths.walk(chart, examples, inputs)
    paths.check(chart, walk)  # every state entered, a final state reachable from everywhere
    taken = set()
    for path in walk.paths:
        at = walk.start
        for step in path.steps:
            taken.add((at, step.event, step.to))
            at = step.to
        end = snapshots.restore(chart, RunModel(None, {}, {}), list(path.final), {})
        assert snapshots.is_final(end)
    assert taken == walk.edges  # every transition the chart can take, on some path
    assert {event for _, event, _ in taken} == set(snapshots.event_names(chart))


@pytest.mark.parametrize("name", sorted(REGISTRY.definitions))
async def test_every_path_of_every_definition_runs_through_the_engine(
    tmp_path: Path, name: str
) -> None:
    spec = REGISTRY.get(name)
    walk = paths.walk(spec.chart, spec.examples, spec.example_inputs)
    assert len(walk.paths) >= 5
    rt = Runtime(settings_for(f"sqlite+aiosqlite:///{tmp_path / 'paths.db'}", workers=0), REGISTRY)
    await rt.start()
    try:
        for path in walk.paths:
            created = await rt.dispatcher.create(name, actor="creator", input=path.input)
            run_id = msgspec.json.decode(created.body)["id"]
            for step in path.steps:
                response = await rt.dispatcher.dispatch(
                    run_id,
                    step.event,
                    actor=step.kwargs.get("actor", "paths"),
                    data=step.kwargs.get("data"),
                    reason=step.kwargs.get("reason"),
                    internal=True,
                )
                view = msgspec.json.decode(response.body)
                assert tuple(view["configuration"]) == step.to, path.describe(walk.start)
            assert view["lifecycle"] == "completed"
            history = (await rt.queries.history(run_id)).items
            assert [e.event for e in history] == ["create", *(s.event for s in path.steps)]
    finally:
        await rt.stop()


def test_every_lifecycle_path_runs_through_the_engines_lifecycle_steps() -> None:
    walk = paths.walk(REGISTRY.lifecycle)
    assert walk.paths
    for path in walk.paths:
        state = lifecycle_steps.initial(REGISTRY.lifecycle)
        for step in path.steps:
            state = lifecycle_steps.step(REGISTRY.lifecycle, state, step.event)
            assert state.configuration == step.to
        assert state.final


class Unfinished(StateChart[Any]):
    """A chart with a state its guards never let in and one they never let out of."""

    start = State(initial=True)
    review = State()
    hidden = State()
    stuck = State()
    done = State(final=True)

    submit = start.to(review)
    finish = review.to(done)
    peek = review.to(hidden, cond="never")
    back = hidden.to(review)
    park = review.to(stuck)
    leave = stuck.to(done, cond="never")

    def never(self) -> bool:
        return False


def test_a_state_the_paths_cannot_cover_fails_the_check() -> None:
    walk = paths.walk(Unfinished)
    assert walk.unreachable_states == ["hidden"]
    assert walk.dead_ends == [("stuck",)]
    with pytest.raises(paths.ChartNotTestableError, match=r"hidden.*stuck"):
        paths.check(Unfinished, walk)


def test_paths_command_prints_them() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "signoff", "paths", "approval"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any("--approve" in line and line.endswith("finished") for line in lines)
    assert any("--reject(reason='numbers are off')-->" in line for line in lines)
    po = subprocess.run(
        [sys.executable, "-m", "signoff", "paths", "purchase_order"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert po.returncode == 0, po.stderr
    assert any(
        line.startswith('[input {"amount":25000}]') and "finance_partial" in line
        for line in po.stdout.splitlines()
    )
    missing = subprocess.run(
        [sys.executable, "-m", "signoff", "paths", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "nope" in missing.stderr
