"""Property test: random event sequences, some concurrent, never corrupt a run (Hypothesis)."""

from __future__ import annotations

import asyncio
from itertools import pairwise
from typing import Any

import uvloop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signoff.engine.charts import snapshots
from signoff.engine.errors import EngineError
from signoff.engine.model.run_model import RunModel
from signoff.engine.runtime import Runtime
from signoff.machines.approval import Approval
from signoff.machines.registry import build_registry
from tests.helpers import drain, settings_for

PUBLIC = ["process", "approve", "reject", "retry", "pause", "resume", "cancel", "bogus"]
INTERNAL = ["processed", "failed", "expire"]
step = st.one_of(
    st.tuples(st.sampled_from(PUBLIC), st.sampled_from([None, "because"])),
    st.tuples(st.sampled_from(INTERNAL), st.floats(0, 1)),
    st.just(("work", None)),  # let the worker run whatever is due
)
program = st.lists(st.lists(step, min_size=1, max_size=4), min_size=1, max_size=8)


async def send(rt: Runtime, run_id: str, name: str, arg: Any) -> bool:
    """One step; True if it applied a transition of ours."""
    if name == "work":
        await drain(rt)
        return False
    try:
        if name in INTERNAL:
            data = {"output": arg, "error": "boom"}
            await rt.dispatcher.dispatch(run_id, name, actor="prop", data=data, internal=True)
        else:
            await rt.dispatcher.dispatch(run_id, name, actor="prop", reason=arg)
    except EngineError:
        return False
    return True


async def check(rt: Runtime, batches: list[list[tuple[str, Any]]]) -> None:
    created = await rt.dispatcher.create("approval", actor="prop", input={"output": 0.6})
    run_id = msgspec_id(created.body)
    applied = 0
    for batch in batches:  # the steps of one batch race each other
        results = await asyncio.gather(*(send(rt, run_id, n, a) for n, a in batch))
        applied += sum(results)
    run = await rt.queries.get(run_id)
    history = (await rt.queries.history(run_id)).items
    assert run.version == len(history)
    assert sum(e.actor == "prop" for e in history) == 1 + applied
    assert set(run.configuration) <= set(Approval.states_map)
    assert history[-1].run == run
    for before, after in pairwise(history):
        assert after.business.from_ == before.business.to
        assert after.lifecycle.from_ == before.lifecycle.to
        assert after.seq > before.seq
        if after.event in snapshots.event_names(Approval):
            replayed = snapshots.restore(
                Approval, RunModel(None, {}, run.input), after.business.from_, {}
            )
            replayed.send(after.event, data=after.data, reason=after.reason, actor="x", at="t")
            assert snapshots.configuration(replayed) == after.business.to


def msgspec_id(body: bytes) -> str:
    import msgspec

    return str(msgspec.json.decode(body)["id"])


def test_random_event_sequences_keep_runs_valid(database_url: str) -> None:
    loop = uvloop.new_event_loop()
    rt = Runtime(settings_for(database_url), build_registry(0.0))
    loop.run_until_complete(rt.start())

    @settings(
        max_examples=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(program)
    def run_program(batches: list[list[tuple[str, Any]]]) -> None:
        loop.run_until_complete(check(rt, batches))

    try:
        run_program()
    finally:
        loop.run_until_complete(rt.stop())
        loop.close()
