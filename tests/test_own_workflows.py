"""Your own workflow on the engine: jobs wait for a worker that can run them, each job kind's
retries and timeout, the attempts on record, who decides in each wait state, and runs of a
definition the process has not loaded (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from signoff import (
    DefinitionNotLoadedError,
    ForbiddenError,
    JobContext,
    JobKind,
    JobOutcome,
    Pack,
    PermanentJobError,
    Registry,
    RetryPolicy,
    Runtime,
    StateForbiddenError,
    TransientJobError,
)
from signoff.engine import RunFilter, Worker, utcnow
from signoff.machines.lifecycle import Lifecycle
from signoff.machines.registry import build_registry
from tests.helpers import settings_for

pytestmark = pytest.mark.usefixtures("example_on_path")
Handler = Callable[[JobContext], Awaitable[JobOutcome]]
MANAGERS, FINANCE = frozenset({"managers"}), frozenset({"finance"})
APPROVER = frozenset({"approver"})


async def paid(ctx: JobContext) -> JobOutcome:
    return JobOutcome("paid_out", {"payment_id": f"pay-{ctx.run_id[-6:]}"})


def expense_registry(handler: Handler | None = paid, **job: Any) -> Registry:
    """The example's definition; its pay_expense job is `handler` (None: no handler here)."""
    from expense_report import EXPENSE_REPORT

    jobs = [] if handler is None else [JobKind("pay_expense", handler, "payment_declined", **job)]
    return Registry.of_packs([Pack("expense_report", [EXPENSE_REPORT], jobs)], Lifecycle)


@pytest.fixture
async def started() -> AsyncIterator[list[Runtime]]:
    """Runtimes a test starts; each is stopped afterwards."""
    runtimes: list[Runtime] = []
    yield runtimes
    for rt in runtimes:
        await rt.stop()


async def start(database_url: str, registry: Registry, runtimes: list[Runtime]) -> Runtime:
    rt = Runtime(settings_for(database_url), registry)
    await rt.start()
    runtimes.append(rt)
    return rt


def worker(rt: Runtime, *, later_s: float = 0.0) -> Worker:
    return Worker(
        rt.dispatcher,
        rt.store,
        rt.registry,
        retry=RetryPolicy(max_attempts=5, base_s=0.0, cap_s=0.0),
        clock=lambda: utcnow() + timedelta(seconds=later_s),
    )


async def run_jobs(w: Worker, rounds: int = 20) -> int:
    """Claim and run due jobs until none is due; how many attempts ran."""
    total = 0
    for _ in range(rounds):
        claimed = await w.claim(8)
        if not claimed:
            break
        await asyncio.gather(*(w.process(job) for job in claimed))
        total += len(claimed)
    return total


async def paying(rt: Runtime, amount: float = 120) -> str:
    """A new expense report that a manager and finance approved: now in `paying`."""
    d = rt.dispatcher
    run = await d.create("expense_report", actor="sam", input={"amount": amount, "payee": "Ada"})
    await d.dispatch(run.run_id, "submit", actor="sam")
    await d.dispatch(run.run_id, "approve", actor="mia", roles=APPROVER, groups=MANAGERS)
    await d.dispatch(run.run_id, "approve", actor="fay", roles=APPROVER, groups=FINANCE)
    assert (await rt.queries.get(run.run_id)).state == "paying"
    return run.run_id


async def test_a_worker_claims_only_the_job_kinds_it_can_run(
    database_url: str, started: list[Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    """A rolling deploy: this worker lacks the new handler, so the job waits (never dropped),
    is reported once it has waited a minute, and a worker that has the handler runs it."""
    old = await start(database_url, expense_registry(handler=None), started)
    run_id = await paying(old)
    assert await run_jobs(worker(old)) == 0
    jobs = (await old.queries.jobs(run_id)).items
    assert [(j.kind, j.status, j.attempts) for j in jobs] == [("pay_expense", "ready", 0)]

    with caplog.at_level(logging.WARNING, logger="signoff.worker"):
        assert await worker(old).report_unclaimed() == []  # not overdue yet
        assert await worker(old, later_s=120).report_unclaimed() == ["pay_expense"]
    assert "job(s) of kind 'pay_expense' have waited" in caplog.text
    census = await old.queries.census(utcnow())
    assert set(census.oldest_due) == {"pay_expense"}

    new = await start(database_url, expense_registry(), started)
    assert await run_jobs(worker(new)) == 1
    view = await new.queries.get(run_id)
    assert (view.state, view.lifecycle) == ("paid", "completed")
    assert view.context["payment_id"] == f"pay-{run_id[-6:]}"
    assert await worker(new, later_s=120).report_unclaimed() == []


async def test_each_job_kind_has_its_own_retries_and_every_attempt_is_on_record(
    database_url: str, started: list[Runtime]
) -> None:
    failures = iter(["bank timeout", "bank busy"])

    async def flaky(ctx: JobContext) -> JobOutcome:
        error = next(failures, None)
        if error is not None:
            raise TransientJobError(error)
        return await paid(ctx)

    policy = RetryPolicy(max_attempts=3, base_s=0.0, cap_s=0.0, jitter=False)
    rt = await start(database_url, expense_registry(flaky, retry=policy), started)
    run_id = await paying(rt)
    assert await run_jobs(worker(rt)) == 3
    (job,) = (await rt.queries.jobs(run_id)).items
    assert (job.status, job.attempts, job.max_attempts) == ("done", 3, 3)
    assert [(a.number, a.result, a.error) for a in job.attempt_log] == [
        (1, "failed", "bank timeout"),
        (2, "failed", "bank busy"),
        (3, "succeeded", None),
    ]
    for attempt in job.attempt_log:
        assert attempt.ended_at is not None and attempt.started_at <= attempt.ended_at
    assert (await rt.queries.get(run_id)).state == "paid"


async def test_a_job_kinds_attempts_run_out_at_its_own_limit(
    database_url: str, started: list[Runtime]
) -> None:
    async def down(ctx: JobContext) -> JobOutcome:
        raise TransientJobError(f"bank down ({ctx.attempt})")

    policy = RetryPolicy(max_attempts=2, base_s=0.0, cap_s=0.0)
    rt = await start(database_url, expense_registry(down, retry=policy), started)
    run_id = await paying(rt)
    assert await run_jobs(worker(rt)) == 2  # the worker's default (5) does not apply
    view = await rt.queries.get(run_id)
    assert (view.state, view.context["last_error"]) == ("payment_failed", "bank down (2)")
    (job,) = (await rt.queries.jobs(run_id)).items
    assert [a.result for a in job.attempt_log] == ["failed", "failed"]


async def test_a_permanent_error_fails_at_once_and_a_slow_attempt_times_out(
    database_url: str, started: list[Runtime]
) -> None:
    async def refused(ctx: JobContext) -> JobOutcome:
        raise PermanentJobError("account closed")

    rt = await start(database_url, expense_registry(refused), started)
    run_id = await paying(rt)
    assert await run_jobs(worker(rt)) == 1
    assert (await rt.queries.get(run_id)).context["last_error"] == "account closed"
    (job,) = (await rt.queries.jobs(run_id)).items
    assert [(a.result, a.error) for a in job.attempt_log] == [("failed", "account closed")]

    async def slow(ctx: JobContext) -> JobOutcome:
        await asyncio.sleep(30)
        return await paid(ctx)

    once = RetryPolicy(max_attempts=1)
    rt2 = await start(database_url, expense_registry(slow, retry=once, timeout_s=0.05), started)
    run_id = await paying(rt2)
    assert await run_jobs(worker(rt2)) == 1
    (job,) = (await rt2.queries.jobs(run_id)).items
    assert job.attempt_log[0].error == "the attempt took longer than 0.05 s"
    assert (await rt2.queries.get(run_id)).state == "payment_failed"


async def test_the_group_of_each_wait_state_decides_there(
    database_url: str, started: list[Runtime]
) -> None:
    rt = await start(database_url, expense_registry(), started)
    d = rt.dispatcher
    run = await d.create("expense_report", actor="sam", input={"amount": 9000, "payee": "Ada"})
    await d.dispatch(run.run_id, "submit", actor="sam")
    with pytest.raises(StateForbiddenError, match="fay is not in the managers group"):
        await d.dispatch(run.run_id, "approve", actor="fay", roles=APPROVER, groups=FINANCE)
    with pytest.raises(ForbiddenError, match="lacks the approver role"):
        await d.dispatch(run.run_id, "approve", actor="otto", roles=frozenset({"operator"}))
    assert (await rt.queries.get(run.run_id)).version == 2  # refused: nothing changed
    await d.dispatch(run.run_id, "approve", actor="mia", roles=APPROVER, groups=MANAGERS)
    # Sequential steps: the manager who approved cannot also decide for finance.
    with pytest.raises(StateForbiddenError, match="mia is not in the finance group"):
        await d.dispatch(run.run_id, "approve", actor="mia", roles=APPROVER, groups=MANAGERS)
    await d.dispatch(run.run_id, "approve", actor="fay", roles=APPROVER, groups=FINANCE)
    assert (await rt.queries.get(run.run_id)).state == "finance_review"  # 9,000: two needed
    await d.dispatch(run.run_id, "approve", actor="finn", roles=APPROVER, groups=FINANCE)
    assert (await rt.queries.get(run.run_id)).state == "paying"
    # An admin (groups None) and the engine itself are not limited to a group.
    run2 = await d.create("expense_report", actor="sam", input={"amount": 10, "payee": "Bo"})
    await d.dispatch(run2.run_id, "submit", actor="sam")
    await d.dispatch(run2.run_id, "approve", actor="root", roles=frozenset({"admin"}))


async def test_runs_of_a_definition_not_loaded_are_listed_and_refuse_events(
    database_url: str, started: list[Runtime]
) -> None:
    full = await start(database_url, expense_registry(), started)
    d = full.dispatcher
    run = await d.create("expense_report", actor="sam", input={"amount": 10, "payee": "Bo"})

    stock = await start(database_url, build_registry(0.0), started)  # no expense_report
    page = await stock.queries.page(RunFilter(), 50, None)
    (listed,) = [v for v in page.items if v.id == run.run_id]
    assert (listed.definition_loaded, listed.allowed_events) == (False, [])
    view = await stock.queries.get(run.run_id)
    assert (view.state, view.definition_loaded) == ("submitted", False)
    assert len((await stock.queries.history(run.run_id)).items) == 1
    with pytest.raises(DefinitionNotLoadedError, match="expense_report v1, which this server"):
        await stock.dispatcher.dispatch(run.run_id, "submit", actor="sam")
    assert (await stock.queries.get(run.run_id)).version == 1
    assert (await full.queries.get(run.run_id)).definition_loaded is True


async def test_a_failed_attempt_is_retried_after_its_kinds_own_backoff(
    database_url: str, started: list[Runtime]
) -> None:
    async def down(ctx: JobContext) -> JobOutcome:
        raise TransientJobError("bank down")

    hourly = RetryPolicy(max_attempts=3, base_s=3600, cap_s=7200, jitter=False)
    rt = await start(database_url, expense_registry(down, retry=hourly), started)
    run_id = await paying(rt)
    before = utcnow()
    assert await run_jobs(worker(rt)) == 1  # the worker's own policy would retry at once
    (job,) = (await rt.queries.jobs(run_id)).items
    assert (job.status, job.last_error) == ("ready", "bank down")
    assert job.due_at >= before + timedelta(seconds=3600)


def test_backoff_grows_exponentially_or_linearly_up_to_the_cap() -> None:
    exponential = RetryPolicy(base_s=0.5, cap_s=3.0, jitter=False)
    assert [exponential.delay_s(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    linear = RetryPolicy(base_s=0.5, cap_s=1.2, backoff="linear", jitter=False)  # type: ignore[arg-type]
    assert [linear.delay_s(n) for n in range(1, 4)] == [0.5, 1.0, 1.2]
    jittered = RetryPolicy(base_s=1.0, cap_s=8.0)
    assert all(0.0 <= jittered.delay_s(4) <= 8.0 for _ in range(200))
    with pytest.raises(ValueError, match="max_attempts must be 1 or more"):
        RetryPolicy(max_attempts=0)


async def test_a_timer_of_a_run_another_process_runs_is_left_to_it(
    database_url: str, started: list[Runtime]
) -> None:
    """Timers are claimed by every worker; one whose run's definition this process lacks is
    put back for a process that has it, never dropped."""
    stock = await start(database_url, build_registry(0.0), started)
    d = stock.dispatcher
    run = await d.create("approval", actor="a", input={"output": 0.9, "approval_timeout_s": 60})
    await d.dispatch(run.run_id, "process", actor="a")
    assert await run_jobs(worker(stock)) == 1  # the approval job: now waiting, a timer set
    other = await start(database_url, expense_registry(), started)  # no `approval` here
    assert await run_jobs(worker(other, later_s=120), rounds=1) == 1
    (timer,) = [j for j in (await stock.queries.jobs(run.run_id)).items if j.kind == "timer"]
    assert (timer.status, timer.attempts) == ("ready", 0)  # put back, the attempt not counted
    assert await run_jobs(worker(stock, later_s=300)) == 1
    assert (await stock.queries.get(run.run_id)).state == "error"  # the deadline passed
