"""The engine on SQLite and PostgreSQL: every path of the approval chart through the dispatcher."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from sqlalchemy import select

from signoff.engine.errors import (
    EventNotAllowedError,
    IdempotencyMismatchError,
    InternalEventError,
    InvalidEventDataError,
    InvalidInputError,
    PreconditionFailedError,
    RunCancelledError,
    RunPausedError,
    UnknownEventError,
)
from signoff.engine.jobs.worker import Worker
from signoff.engine.model.jobs import JobContext, JobOutcome, TransientJobError
from signoff.engine.runtime import Runtime
from signoff.engine.storage.records import IdempotencyKey
from signoff.engine.storage.schema import JOBS
from signoff.engine.views import RunView
from signoff.machines.registry import build_registry
from tests.helpers import (
    decode_view,
    drain,
    eventually,
    runtime_with_approval_job,
    settings_for,
)


async def new_run(rt: Runtime, **input: Any) -> RunView:
    response = await rt.dispatcher.create("approval", actor="alice", input=input or {"output": 0.9})
    assert response.created
    return decode_view(response.body)


async def send(rt: Runtime, run_id: str, event: str, **kw: Any) -> RunView:
    return decode_view((await rt.dispatcher.dispatch(run_id, event, actor="bob", **kw)).body)


async def events_of(rt: Runtime, run_id: str) -> list[str]:
    return [e.event for e in (await rt.queries.history(run_id)).items]


async def assert_history_is_a_clean_path(rt: Runtime, run_id: str) -> None:
    run = await rt.queries.get(run_id)
    items = (await rt.queries.history(run_id)).items
    assert [e.run.version for e in items] == list(range(1, run.version + 1))
    assert [e.seq for e in items] == sorted({e.seq for e in items})
    for before, after in itertools.pairwise(items):
        assert after.business.from_ == before.business.to
        assert after.lifecycle.from_ == before.lifecycle.to


async def job_rows(rt: Runtime, run_id: str) -> list[Any]:
    async with rt.store.read() as conn:
        query = select(JOBS).where(JOBS.c.run_id == run_id).order_by(JOBS.c.id)
        return list((await conn.execute(query)).all())


async def test_full_approve_path(runtime: Runtime) -> None:
    run = await new_run(runtime)
    assert (run.state, run.lifecycle, run.version) == ("unprocessed", "queued", 1)
    assert run.allowed_events == ["process", "pause", "cancel"]
    run = await send(runtime, run.id, "process")
    assert (run.state, run.lifecycle) == ("sending_to_queue", "running")
    assert await drain(runtime) == 1
    run = await runtime.queries.get(run.id)
    assert (run.state, run.lifecycle) == ("waiting_for_approval", "waiting")
    assert run.context["output"] == 0.9
    run = await send(runtime, run.id, "approve", reason="looks right")
    assert (run.state, run.lifecycle, run.version) == ("finished", "completed", 4)
    assert run.allowed_events == []
    assert run.context["decisions"][0]["actor"] == "bob"
    assert await events_of(runtime, run.id) == ["create", "process", "processed", "approve"]
    history = (await runtime.queries.history(run.id)).items
    assert [e.actor for e in history] == ["alice", "bob", "worker", "bob"]
    assert history[-1].reason == "looks right"
    await assert_history_is_a_clean_path(runtime, run.id)


async def test_reject_sends_the_work_back_then_approve(runtime: Runtime) -> None:
    run = await new_run(runtime)
    await send(runtime, run.id, "process")
    await drain(runtime)
    run = await send(runtime, run.id, "reject", reason="recheck the totals")
    assert (run.state, run.lifecycle) == ("sending_to_queue", "running")
    assert await drain(runtime) == 1
    run = await send(runtime, run.id, "approve")
    assert run.state == "finished"
    assert await events_of(runtime, run.id) == [
        "create",
        "process",
        "processed",
        "reject",
        "processed",
        "approve",
    ]
    assert [d["decision"] for d in run.context["decisions"]] == ["reject", "approve"]
    await assert_history_is_a_clean_path(runtime, run.id)


async def test_reject_needs_a_reason_and_changes_nothing(runtime: Runtime) -> None:
    run = await new_run(runtime)
    await send(runtime, run.id, "process")
    await drain(runtime)
    before = await runtime.queries.get(run.id)
    with pytest.raises(InvalidEventDataError):
        await send(runtime, run.id, "reject")
    assert await runtime.queries.get(run.id) == before


async def test_low_output_errors_and_retry_processes_again(runtime: Runtime) -> None:
    run = await new_run(runtime, output=0.25)
    await send(runtime, run.id, "process")
    await drain(runtime)
    run = await runtime.queries.get(run.id)
    assert (run.state, run.lifecycle) == ("error", "errored")
    assert "0.25" in run.context["last_error"]
    assert run.allowed_events == ["retry", "pause", "cancel"]
    run = await send(runtime, run.id, "retry")
    assert (run.state, run.lifecycle) == ("sending_to_queue", "running")
    await drain(runtime)
    assert (await runtime.queries.get(run.id)).state == "error"
    await assert_history_is_a_clean_path(runtime, run.id)


async def test_transient_failures_are_retried_then_failed(database_url: str) -> None:
    rt = Runtime(settings_for(database_url, failure_rate=1.0), build_registry(1.0))
    await rt.start()
    try:
        run = await new_run(rt)
        await send(rt, run.id, "process")
        await eventually(lambda: _state_is(rt, run.id, "error"))
        run = await rt.queries.get(run.id)
        assert run.lifecycle == "errored"
        assert run.context["attempts"] == 5
        assert "simulated queue failure on attempt 5" in run.context["last_error"]
        [job] = await job_rows(rt, run.id)
        assert (job.status, job.attempts) == ("done", 5)
        assert await events_of(rt, run.id) == ["create", "process", "failed"]
    finally:
        await rt.stop()


async def _state_is(rt: Runtime, run_id: str, state: str) -> bool:
    await drain(rt)
    return (await rt.queries.get(run_id)).state == state


class Flaky:
    """An `approval` job that fails transiently `failures` times, then succeeds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self, ctx: JobContext) -> JobOutcome:
        self.calls += 1
        if self.calls <= self.failures:
            raise TransientJobError(f"flaky {self.calls}")
        return JobOutcome("processed", {"output": 0.8, "attempts": ctx.attempt})


async def flaky_runtime(database_url: str, failures: int) -> tuple[Runtime, Flaky]:
    flaky = Flaky(failures)
    return await runtime_with_approval_job(database_url, flaky), flaky


async def test_transient_failure_then_success_counts_attempts(database_url: str) -> None:
    rt, flaky = await flaky_runtime(database_url, failures=2)
    try:
        run = await new_run(rt)
        await send(rt, run.id, "process")
        await eventually(lambda: _state_is(rt, run.id, "waiting_for_approval"))
        run = await rt.queries.get(run.id)
        assert run.context["attempts"] == 3
        assert flaky.calls == 3
        [job] = await job_rows(rt, run.id)
        assert job.last_error == "flaky 2"
    finally:
        await rt.stop()


async def test_deadline_expires_a_waiting_run(runtime: Runtime) -> None:
    run = await new_run(runtime, output=0.9, approval_timeout_s=60)
    await send(runtime, run.id, "process")
    await drain(runtime)
    assert (await runtime.queries.get(run.id)).state == "waiting_for_approval"
    assert await drain(runtime, later_s=30) == 0  # not due yet
    assert await drain(runtime, later_s=61) == 1  # the deadline passes
    run = await runtime.queries.get(run.id)
    assert run.lifecycle == "errored"
    assert run.context["last_error"] == "the approval deadline passed"
    history = (await runtime.queries.history(run.id)).items
    assert (history[-1].event, history[-1].actor) == ("expire", "timer")


async def test_deciding_before_the_deadline_cancels_the_timer(runtime: Runtime) -> None:
    run = await new_run(runtime, output=0.9, approval_timeout_s=60)
    await send(runtime, run.id, "process")
    await drain(runtime)
    await send(runtime, run.id, "approve")
    assert await drain(runtime, later_s=120) == 0
    jobs = await job_rows(runtime, run.id)
    assert [(j.kind, j.status) for j in jobs] == [("approval", "done"), ("timer", "cancelled")]
    assert (await runtime.queries.get(run.id)).state == "finished"


async def test_pause_holds_jobs_and_resume_releases_them(runtime: Runtime) -> None:
    run = await new_run(runtime)
    await send(runtime, run.id, "process")
    run = await send(runtime, run.id, "pause")
    assert (run.state, run.lifecycle, run.allowed_events) == (
        "sending_to_queue",
        "paused",
        ["resume", "cancel"],
    )
    assert await drain(runtime) == 0
    with pytest.raises(RunPausedError):
        await send(runtime, run.id, "approve")
    run = await send(runtime, run.id, "resume")
    assert run.lifecycle == "running"
    assert await drain(runtime) == 1
    run = await runtime.queries.get(run.id)
    assert (run.state, run.lifecycle) == ("waiting_for_approval", "waiting")
    await assert_history_is_a_clean_path(runtime, run.id)


async def test_outcome_finished_while_paused_is_applied_after_resume(database_url: str) -> None:
    rt, flaky = await flaky_runtime(database_url, failures=0)
    try:
        run = await new_run(rt)
        await send(rt, run.id, "process")
        [job] = await Worker(rt.dispatcher, rt.store, rt.registry, lease_s=30.0).claim(1)
        await send(rt, run.id, "pause")
        worker = Worker(rt.dispatcher, rt.store, rt.registry)
        await worker.process(job)  # the handler finishes while the run is paused
        assert (await rt.queries.get(run.id)).state == "sending_to_queue"
        await send(rt, run.id, "resume")
        await drain(rt)
        assert (await rt.queries.get(run.id)).state == "waiting_for_approval"
        assert flaky.calls == 1  # the held outcome was applied, the job did not run again
    finally:
        await rt.stop()


async def test_resume_returns_a_paused_waiting_run_to_waiting(runtime: Runtime) -> None:
    run = await new_run(runtime)
    await send(runtime, run.id, "process")
    await drain(runtime)
    await send(runtime, run.id, "pause")
    run = await send(runtime, run.id, "resume")
    assert (run.lifecycle, run.allowed_events) == (
        "waiting",
        ["approve", "reject", "pause", "cancel"],
    )


async def test_cancel_drops_jobs_and_refuses_everything(runtime: Runtime) -> None:
    run = await new_run(runtime)
    await send(runtime, run.id, "process")
    run = await send(runtime, run.id, "cancel")
    assert (run.state, run.lifecycle, run.allowed_events) == ("sending_to_queue", "cancelled", [])
    assert await drain(runtime) == 0
    assert [j.status for j in await job_rows(runtime, run.id)] == ["cancelled"]
    with pytest.raises(RunCancelledError):
        await send(runtime, run.id, "approve")
    with pytest.raises(EventNotAllowedError):
        await send(runtime, run.id, "resume")


async def test_refusals_change_nothing(runtime: Runtime) -> None:
    run = await new_run(runtime)
    before = await runtime.queries.get(run.id)
    with pytest.raises(EventNotAllowedError) as refused:
        await send(runtime, run.id, "approve")
    assert refused.value.allowed_events == ["process", "pause", "cancel"]
    with pytest.raises(UnknownEventError):
        await send(runtime, run.id, "bogus")
    with pytest.raises(InternalEventError):
        await send(runtime, run.id, "processed", data={"output": 1.0})
    with pytest.raises(PreconditionFailedError):
        await send(runtime, run.id, "process", if_match=[7])
    assert await runtime.queries.get(run.id) == before
    assert await events_of(runtime, run.id) == ["create"]


async def test_invalid_input_is_refused(runtime: Runtime) -> None:
    with pytest.raises(InvalidInputError):
        await runtime.dispatcher.create("approval", actor="a", input={"approval_timeout_s": -1})
    page = await runtime.queries.page(_no_filter(), 10, None)
    assert page.items == []


def _no_filter() -> Any:
    from signoff.engine.storage.queries import RunFilter

    return RunFilter()


async def test_if_match_current_version_applies(runtime: Runtime) -> None:
    run = await new_run(runtime)
    run = await send(runtime, run.id, "process", if_match=[9, 1])  # If-Match: "9", "1"
    assert run.version == 2


async def test_idempotent_repeat_returns_first_response(runtime: Runtime) -> None:
    run = await new_run(runtime)
    key = IdempotencyKey("k1", "bob", "POST /process", "h1")
    first = await runtime.dispatcher.dispatch(run.id, "process", actor="bob", idem=key)
    again = await runtime.dispatcher.dispatch(run.id, "process", actor="bob", idem=key)
    assert (again.body, again.created, again.replayed) == (first.body, False, True)
    assert await events_of(runtime, run.id) == ["create", "process"]
    with pytest.raises(IdempotencyMismatchError):
        await runtime.dispatcher.dispatch(
            run.id, "process", actor="bob", idem=IdempotencyKey("k1", "bob", "POST /process", "h2")
        )


async def test_idempotent_create_makes_one_run(runtime: Runtime) -> None:
    key = IdempotencyKey("create-1", "alice", "POST /api/runs", "h")
    results = await asyncio.gather(
        *(
            runtime.dispatcher.create("approval", actor="alice", input={"output": 0.5}, idem=key)
            for _ in range(5)
        )
    )
    assert len({r.body for r in results}) == 1
    assert len((await runtime.queries.page(_no_filter(), 10, None)).items) == 1


async def test_fifty_concurrent_decisions_apply_exactly_one(runtime: Runtime) -> None:
    run = await new_run(runtime)
    await send(runtime, run.id, "process")
    await drain(runtime)

    async def decide(i: int) -> str:
        event = "approve" if i % 2 else "reject"
        try:
            await runtime.dispatcher.dispatch(run.id, event, actor=f"p{i}", reason="r")
        except EventNotAllowedError:
            return "refused"
        return event

    outcomes = await asyncio.gather(*(decide(i) for i in range(50)))
    applied = [o for o in outcomes if o != "refused"]
    assert len(applied) == 1
    run = await runtime.queries.get(run.id)
    assert run.version == 4
    assert len(run.context["decisions"]) == 1
    await assert_history_is_a_clean_path(runtime, run.id)


async def test_expired_lease_reruns_job_and_applies_outcome_once(database_url: str) -> None:
    rt, flaky = await flaky_runtime(database_url, failures=0)
    try:
        run = await new_run(rt)
        await send(rt, run.id, "process")
        # Worker A claims the job with a short lease, then stalls (as if killed mid-job).
        [stalled] = await Worker(rt.dispatcher, rt.store, rt.registry, lease_s=0.05).claim(1)
        await asyncio.sleep(0.1)
        # Worker B finds the expired lease, runs the job and applies its outcome.
        assert await drain(rt) == 1
        assert (await rt.queries.get(run.id)).state == "waiting_for_approval"
        # A wakes up and reports: its outcome is discarded because the lease is no longer its.
        await Worker(rt.dispatcher, rt.store, rt.registry).process(stalled)
        assert flaky.calls == 2
        assert await events_of(rt, run.id) == ["create", "process", "processed"]
        [job] = await job_rows(rt, run.id)
        assert (job.status, job.attempts) == ("done", 2)
    finally:
        await rt.stop()


async def test_list_filters_and_pages_newest_first(runtime: Runtime) -> None:
    from signoff.engine.storage.queries import RunFilter

    ids = [
        (
            await runtime.dispatcher.create(
                "approval", actor="a", ref_type="invoice", ref_id=f"inv-{i}"
            )
        )
        for i in range(5)
    ]
    created = [decode_view(r.body).id for r in ids]
    await send(runtime, created[0], "process")
    first = await runtime.queries.page(RunFilter(ref_type="invoice"), 2, None)
    assert [r.id for r in first.items] == created[::-1][:2]
    second = await runtime.queries.page(RunFilter(ref_type="invoice"), 2, first.next_cursor)
    third = await runtime.queries.page(RunFilter(ref_type="invoice"), 2, second.next_cursor)
    assert [r.id for r in second.items + third.items] == created[::-1][2:]
    assert third.next_cursor is None
    only = await runtime.queries.page(RunFilter(state="sending_to_queue"), 10, None)
    assert [r.id for r in only.items] == [created[0]]
    by_ref = await runtime.queries.page(RunFilter(ref_id="inv-3", lifecycle="queued"), 10, None)
    assert [r.id for r in by_ref.items] == [created[3]]


async def test_a_real_timer_fires_with_an_embedded_worker(database_url: str) -> None:
    """The deadline with the real clock and the runtime's own polling worker (short timeout)."""
    rt = Runtime(settings_for(database_url, workers=1), build_registry(0.0))
    await rt.start()
    try:
        run = await new_run(rt, output=0.9, approval_timeout_s=0.3)
        await send(rt, run.id, "process")

        async def expired() -> bool:
            return (await rt.queries.get(run.id)).state == "error"

        await eventually(expired)
        assert (await events_of(rt, run.id))[-2:] == ["processed", "expire"]
    finally:
        await rt.stop()
