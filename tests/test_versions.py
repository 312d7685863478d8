"""Versioned definitions: runs stay on the version they started on, a chart changed under the
same version is refused, and runs move to a newer version only when told to."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import msgspec
import pytest
from statemachine import State, StateChart

from signoff.client import ApiError, SignoffClient
from signoff.engine.dispatch.versions import migrate_runs
from signoff.engine.errors import RemovedStateError, SnapshotError
from signoff.engine.model.definition import Definition, StateKind
from signoff.engine.model.registry import Registry
from signoff.engine.model.run_model import RunModel
from signoff.engine.runtime import Runtime
from signoff.machines import approval
from signoff.machines.jobs import approval_job
from signoff.machines.lifecycle import Lifecycle
from tests.helpers import serve, settings_for, waiting_run


class ApprovalV2(StateChart[RunModel]):
    """Version 2: a waiting request can be escalated to a second approver."""

    allow_event_without_transition = False
    catch_errors_as_events = False

    unprocessed = State(initial=True)
    sending_to_queue = State()
    waiting_for_approval = State()
    escalated = State()
    finished = State(final=True)
    error = State()

    process = unprocessed.to(sending_to_queue)
    processed = sending_to_queue.to(waiting_for_approval, cond="above") | sending_to_queue.to(error)
    failed = sending_to_queue.to(error)
    escalate = waiting_for_approval.to(escalated)
    approve = waiting_for_approval.to(finished) | escalated.to(finished)
    reject = waiting_for_approval.to(sending_to_queue) | escalated.to(sending_to_queue)
    expire = waiting_for_approval.to(error)
    retry = error.to(sending_to_queue)

    def above(self, data: dict[str, Any]) -> bool:
        return float(data["output"]) > approval.THRESHOLD

    def on_enter_sending_to_queue(self, state: State) -> None:
        self.model.request_job("approval", state=state.id)


class ApprovalV3(StateChart[RunModel]):
    """Version 3 drops escalation again, and the error state becomes `failed_processing`."""

    allow_event_without_transition = False
    catch_errors_as_events = False

    unprocessed = State(initial=True)
    sending_to_queue = State()
    waiting_for_approval = State()
    finished = State(final=True)
    failed_processing = State()

    process = unprocessed.to(sending_to_queue)
    processed = sending_to_queue.to(waiting_for_approval)
    approve = waiting_for_approval.to(finished)
    reject = waiting_for_approval.to(sending_to_queue)
    expire = waiting_for_approval.to(failed_processing)
    retry = failed_processing.to(sending_to_queue)


V1 = Definition(
    "approval",
    1,
    approval.Approval,
    approval.KINDS,
    approval.INTERNAL_EVENTS,
    input_type=approval.ApprovalInput,
)
V2 = Definition(
    "approval",
    2,
    ApprovalV2,
    {**approval.KINDS, "escalated": StateKind.WAIT},
    approval.INTERNAL_EVENTS,
)


def _rename_error(config: list[str], context: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    return ["failed_processing" if s == "error" else s for s in config], context


V3 = Definition(
    "approval",
    3,
    ApprovalV3,
    {k: v for k, v in approval.KINDS.items() if k != "error"}
    | {"failed_processing": StateKind.FAILURE},
    frozenset({"processed", "expire"}),
    migrate=_rename_error,
)
JOBS = {"approval": approval_job(0.0)}


def registry(*definitions: Definition) -> Registry:
    return Registry.of(definitions, Lifecycle, JOBS)


async def test_old_runs_finish_on_v1_while_new_runs_use_v2(database_url: str) -> None:
    async with (
        serve(database_url, registry=registry(V1)) as live,
        SignoffClient(live.url) as client,
    ):
        old = await waiting_run(client)
        assert (await client.get(old)).definition_version == 1
    # Redeployed with v2 registered beside v1.
    async with (
        serve(database_url, registry=registry(V1, V2)) as live,
        SignoffClient(live.url) as client,
    ):
        new = await waiting_run(client)
        assert (await client.get(new)).definition_version == 2
        assert "escalate" in (await client.get(new)).allowed_events
        old_view = await client.get(old)
        assert old_view.definition_version == 1
        assert "escalate" not in old_view.allowed_events
        with pytest.raises(ApiError) as refused:  # v1 has no escalation
            await client.send(old, "escalate")
        assert refused.value.status == 422
        assert (await client.approve(old)).state == "finished"
        assert (await client.send(new, "escalate")).state == "escalated"
        assert (await client.approve(new)).state == "finished"
        assert (await client.get(old)).definition_version == 1


async def test_a_chart_changed_under_the_same_version_is_refused(database_url: str) -> None:
    rt = Runtime(settings_for(database_url, workers=0), registry(V1))
    await rt.start()
    created = await rt.dispatcher.create("approval", actor="t")
    run_id = msgspec.json.decode(created.body)["id"]
    await rt.stop()
    changed = Definition("approval", 1, ApprovalV2, V2.kinds, V2.internal_events)
    rt = Runtime(settings_for(database_url, workers=0), registry(changed))
    await rt.start()
    try:
        with pytest.raises(SnapshotError, match="changed without a new version"):
            await rt.dispatcher.dispatch(run_id, "process", actor="t")
        assert (await rt.queries.get(run_id)).version == 1  # nothing written
    finally:
        await rt.stop()


async def _runtime(database_url: str, *definitions: Definition) -> Runtime:
    rt = Runtime(settings_for(database_url, workers=0), registry(*definitions))
    await rt.start()
    return rt


async def _create(rt: Runtime) -> str:
    run_id: str = msgspec.json.decode((await rt.dispatcher.create("approval", actor="t")).body)[
        "id"
    ]
    await rt.dispatcher.dispatch(run_id, "process", actor="t")
    return run_id


async def _processed(rt: Runtime, run_id: str) -> None:
    await rt.dispatcher.dispatch(
        run_id, "processed", actor="w", data={"output": 0.9}, internal=True
    )


async def test_migrate_runs_moves_them_and_reports_removed_states(database_url: str) -> None:
    # Three v1 runs: one in `error` (v3 renames it), one waiting, one finished.
    rt = await _runtime(database_url, V1)
    ids = [await _create(rt) for _ in range(3)]
    await rt.dispatcher.dispatch(ids[0], "failed", actor="w", internal=True)
    await _processed(rt, ids[1])
    await _processed(rt, ids[2])
    await rt.dispatcher.dispatch(ids[2], "approve", actor="a")
    await rt.stop()
    # One v2 run, escalated: v3 removed `escalated` and does not map it.
    rt = await _runtime(database_url, V1, V2)
    v2 = await _create(rt)
    await _processed(rt, v2)
    await rt.dispatcher.dispatch(v2, "escalate", actor="a")
    await rt.stop()

    rt = await _runtime(database_url, V1, V2, V3)
    try:
        report = await migrate_runs(rt.dispatcher, "approval", 3)
        assert sorted(report.migrated) == sorted(ids[:2])
        assert report.stuck == {v2: ["escalated"]}
        moved = await rt.queries.get(ids[0])
        assert (moved.definition_version, moved.state) == (3, "failed_processing")
        assert (await rt.queries.get(ids[1])).state == "waiting_for_approval"
        assert (await rt.queries.get(ids[2])).definition_version == 1  # finished: left alone
        assert (await rt.queries.get(v2)).definition_version == 2
        history = (await rt.queries.history(ids[0])).items
        assert history[-1].event == "migrate"
        assert history[-1].data == {"from_version": 1, "to_version": 3}
        with pytest.raises(RemovedStateError):
            await rt.dispatcher.migrate(v2, 3, actor="t")
        assert (await rt.queries.get(v2)).version == 4  # refused: unchanged
        # The moved runs carry on under v3.
        await rt.dispatcher.dispatch(ids[0], "retry", actor="t")
        assert (await rt.queries.get(ids[0])).state == "sending_to_queue"
        assert (await rt.queries.get(ids[1])).allowed_events[0] == "approve"
    finally:
        await rt.stop()


def test_migrate_runs_command_refuses_an_unregistered_version(tmp_path: Any) -> None:
    env = {"SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'm.db'}", "PATH": ""}
    done = subprocess.run(
        [sys.executable, "-m", "signoff", "migrate-runs", "approval", "--to", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Version 2 of 'approval' is not registered" in done.stderr
