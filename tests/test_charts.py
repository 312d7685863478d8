"""The charts on their own: every transition of SPEC §1, refusals, guards, snapshots."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from statemachine.exceptions import TransitionNotAllowed

from signoff.engine.charts import snapshots
from signoff.engine.errors import InvalidEventDataError
from signoff.engine.model.run_model import TIMER_KIND, RunModel
from signoff.machines.approval import Approval
from signoff.machines.lifecycle import Lifecycle

APPROVAL_EVENTS = ["process", "processed", "failed", "approve", "reject", "expire", "retry"]


def chart(
    configuration: list[str] | None = None,
    input: dict[str, Any] | None = None,
) -> tuple[Approval, RunModel]:
    model = RunModel(None, {}, input or {})
    machine = snapshots.restore(Approval, model, configuration or [], {})
    return machine, model  # type: ignore[return-value]


def send(machine: Any, event: str, **data: Any) -> None:
    machine.send(event, data=data, reason=data.pop("reason", None), actor="t", at="now")


def test_starts_unprocessed_and_asks_for_nothing() -> None:
    machine, model = chart()
    assert snapshots.configuration(machine) == ["unprocessed"]
    assert model.requests == []


@pytest.mark.parametrize(
    ("start", "event", "data", "end"),
    [
        ("unprocessed", "process", {}, "sending_to_queue"),
        ("sending_to_queue", "processed", {"output": 0.9}, "waiting_for_approval"),
        ("sending_to_queue", "processed", {"output": 0.25}, "error"),
        ("sending_to_queue", "processed", {"output": 0.2500001}, "waiting_for_approval"),
        ("sending_to_queue", "processed", {"output": 0.0}, "error"),
        ("sending_to_queue", "failed", {"error": "boom"}, "error"),
        ("waiting_for_approval", "approve", {}, "finished"),
        ("waiting_for_approval", "reject", {"reason": "numbers are off"}, "sending_to_queue"),
        ("waiting_for_approval", "expire", {}, "error"),
        ("error", "retry", {}, "sending_to_queue"),
    ],
)
def test_every_transition(start: str, event: str, data: dict[str, Any], end: str) -> None:
    machine, _ = chart([start])
    send(machine, event, **data)
    assert snapshots.configuration(machine) == [end]


@pytest.mark.parametrize(
    "state", ["unprocessed", "sending_to_queue", "waiting_for_approval", "finished", "error"]
)
def test_every_refusal_raises(state: str) -> None:
    allowed = {
        "unprocessed": {"process"},
        "sending_to_queue": {"processed", "failed"},
        "waiting_for_approval": {"approve", "reject", "expire"},
        "finished": set(),
        "error": {"retry"},
    }[state]
    for event in set(APPROVAL_EVENTS) - allowed:
        machine, _ = chart([state])
        with pytest.raises(TransitionNotAllowed):
            send(machine, event, output=0.9, error="x", reason="r")
        assert snapshots.configuration(machine) == [state]


def test_unknown_event_raises() -> None:
    machine, _ = chart(["unprocessed"])
    with pytest.raises(TransitionNotAllowed):
        send(machine, "bogus")


def test_reject_without_reason_is_refused_and_changes_nothing() -> None:
    machine, model = chart(["waiting_for_approval"])
    with pytest.raises(InvalidEventDataError):
        send(machine, "reject", reason="  ")
    assert snapshots.configuration(machine) == ["waiting_for_approval"]
    assert model.requests == []


def test_entering_sending_to_queue_requests_the_approval_job() -> None:
    machine, model = chart(["unprocessed"])
    send(machine, "process")
    assert [(r.kind, r.state) for r in model.requests] == [("approval", "sending_to_queue")]


def test_approval_deadline_is_a_timer_only_when_the_input_asks() -> None:
    machine, model = chart(["sending_to_queue"], {"approval_timeout_s": 2.5})
    send(machine, "processed", output=0.9)
    assert [(r.kind, r.payload, r.delay_s) for r in model.requests] == [
        (TIMER_KIND, {"event": "expire"}, 2.5)
    ]
    machine, model = chart(["sending_to_queue"])
    send(machine, "processed", output=0.9)
    assert model.requests == []


def test_decisions_are_recorded_in_context() -> None:
    machine, model = chart(["waiting_for_approval"])
    send(machine, "reject", reason="redo")
    assert model.context["decisions"] == [
        {"decision": "reject", "actor": "t", "at": "now", "reason": "redo"}
    ]


def test_snapshot_round_trips_through_json() -> None:
    machine, model = chart()
    send(machine, "process")
    send(machine, "processed", output=0.7)
    stored = msgspec.json.encode(
        {
            "configuration": snapshots.configuration(machine),
            "history": snapshots.history_values(machine),
            "context": model.context,
        }
    )
    loaded = msgspec.json.decode(stored)
    again = snapshots.restore(
        Approval, RunModel(None, loaded["context"], {}), loaded["configuration"], loaded["history"]
    )
    assert snapshots.configuration(again) == ["waiting_for_approval"]
    send(again, "approve")
    assert snapshots.is_final(again)


def test_lifecycle_resume_returns_where_it_was_after_json_round_trip() -> None:
    machine = snapshots.restore(Lifecycle, RunModel(None, {}, {}), [], {})
    machine.send("run")
    machine.send("wait")
    machine.send("pause")
    stored = msgspec.json.decode(
        msgspec.json.encode([snapshots.configuration(machine), snapshots.history_values(machine)])
    )
    again = snapshots.restore(Lifecycle, RunModel(None, {}, {}), stored[0], stored[1])
    assert snapshots.leaf_state(again) == "paused"
    with pytest.raises(TransitionNotAllowed):
        again.send("run")
    again.send("resume")
    assert snapshots.leaf_state(again) == "waiting"


def test_lifecycle_final_states_refuse_controls() -> None:
    for final in ("completed", "cancelled"):
        machine = snapshots.restore(Lifecycle, RunModel(None, {}, {}), [final], {})
        for event in ("pause", "resume", "cancel", "run"):
            with pytest.raises(TransitionNotAllowed):
                machine.send(event)


def test_unknown_stored_state_is_a_clear_error() -> None:
    from signoff.engine.errors import SnapshotError

    with pytest.raises(SnapshotError):
        snapshots.restore(Approval, RunModel(None, {}, {}), ["gone_state"], {})


def _outcome(machine: Any, model: RunModel, event: str, data: dict[str, Any]) -> tuple[Any, ...]:
    try:
        send(machine, event, **data)
    except (TransitionNotAllowed, InvalidEventDataError, KeyError) as exc:
        return (type(exc).__name__,)
    return (
        snapshots.configuration(machine),
        snapshots.history_values(machine),
        dict(model.context),
        [r.kind for r in model.requests],
    )


def test_pooled_chart_instances_behave_like_new_ones() -> None:
    # Every state x event x data, restored into instances that served other runs before
    # (one of which reached a final state), gives exactly what a new instance gives.
    from signoff.engine.charts import pool as chart_pool

    used = chart_pool.checkout(Approval, ["waiting_for_approval"], {}, {"output": 0.9}, {})
    send(used, "approve")
    chart_pool.checkin(used)
    datas: list[dict[str, Any]] = [{"output": 0.9}, {"output": 0.1}, {"reason": "no"}, {}]
    for state in Approval.states_map:
        for event in APPROVAL_EVENTS:
            for data in datas:
                fresh, model = chart([state])
                expected = _outcome(fresh, model, event, dict(data))
                pooled = chart_pool.checkout(Approval, [state], {}, {}, {})
                got = _outcome(pooled, pooled.model, event, dict(data))
                assert got == expected, (state, event, data)
                if len(got) > 1:
                    chart_pool.checkin(pooled)


def test_remembered_lifecycle_steps_match_the_chart() -> None:
    from signoff.engine.charts import lifecycle_steps

    events = ["run", "wait", "fail", "complete", "pause", "resume", "cancel"]
    todo = [lifecycle_steps.initial(Lifecycle)]
    seen = set(todo)
    while todo:
        state = todo.pop()
        for event in events:
            machine = snapshots.restore(
                Lifecycle, RunModel(None, {}, {}), state.configuration, state.history_values
            )
            try:
                machine.send(event)
            except TransitionNotAllowed:
                with pytest.raises(TransitionNotAllowed):
                    lifecycle_steps.step(Lifecycle, state, event)
                continue
            after = lifecycle_steps.step(Lifecycle, state, event)
            assert list(after.configuration) == snapshots.configuration(machine)
            assert after.history_values == snapshots.history_values(machine)
            assert after.leaf == snapshots.leaf_state(machine)
            assert after.final == snapshots.is_final(machine)
            if after not in seen:
                seen.add(after)
                todo.append(after)
    assert {s.leaf for s in seen} >= {"queued", "running", "waiting", "errored", "paused"}
