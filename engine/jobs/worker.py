"""The worker: claims due jobs, runs their handlers outside any transaction, applies outcomes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TypeVar

import msgspec

from signoff.engine.dispatch.dispatcher import Dispatcher, utcnow
from signoff.engine.errors import (
    DefinitionNotLoadedError,
    EventNotAllowedError,
    InvalidRequestError,
    LeaseLostError,
    RunCancelledError,
    RunNotFoundError,
    RunPausedError,
    StorageUnavailableError,
)
from signoff.engine.ids import uuid7
from signoff.engine.model.jobs import JobContext, JobOutcome, PermanentJobError
from signoff.engine.model.registry import Registry
from signoff.engine.model.retry import RetryPolicy
from signoff.engine.model.run_model import TIMER_KIND
from signoff.engine.observer import Observer
from signoff.engine.storage.jobs import WEBHOOK_KIND, ClaimedJob, JobStatus
from signoff.engine.storage.queries import RunQueries
from signoff.engine.storage.store import Store
from signoff.engine.tracing import TRACE_KEY, unstamped
from signoff.engine.webhooks.delivery import Deliverer, DeliveryPolicy

log = logging.getLogger("signoff.worker")
MAX_PAUSE_S = 5.0  # the longest wait between claims while the database is unavailable
UNCLAIMED_CHECK_S = 30.0  # how often a worker looks for jobs that nobody claims
UNCLAIMED_AFTER_S = 60.0  # a due job unclaimed this long is reported
T = TypeVar("T")


class Worker:
    """Runs up to `concurrency` jobs at once; wakes on new jobs in this process, else polls.

    It claims only the job kinds its registry has handlers for (and timers, and webhook
    deliveries, which every worker can make): a job of a kind it cannot run waits for a worker
    that can, as in a rolling deploy where old workers lack a new handler. Jobs that nobody
    claims for UNCLAIMED_AFTER_S are logged as a warning.
    """

    def __init__(
        self,
        dispatcher: Dispatcher,
        store: Store,
        registry: Registry,
        *,
        concurrency: int = 8,
        poll_interval_s: float = 0.5,
        lease_s: float = 30.0,
        retry: RetryPolicy | None = None,
        observer: Observer | None = None,
        job_timeout_s: float = 300.0,
        clock: Callable[[], datetime] = utcnow,
        webhooks: DeliveryPolicy | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.store = store
        self.registry = registry
        self.concurrency = concurrency
        self.poll_interval_s = poll_interval_s
        self.lease_s = lease_s
        self.retry = retry or RetryPolicy()
        self.observer = observer or Observer()
        self.job_timeout_s = job_timeout_s
        self.clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid7()[-12:]}"
        self.kinds = sorted({*registry.jobs, WEBHOOK_KIND})
        self.tracer = dispatcher.tracer
        self.webhooks = Deliverer(
            store, webhooks or DeliveryPolicy(), self.observer, clock, tracer=self.tracer
        )
        self._queries = RunQueries(store, registry)
        self._next_check = clock()
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Claim and run jobs until `stop()`; while the database is unavailable, back off."""
        pause = self.poll_interval_s
        while not self._stopping:
            free = self.concurrency - len(self._tasks)
            claimed: list[ClaimedJob] = []
            if free > 0:
                try:
                    claimed = await self.claim(free)
                    pause = self.poll_interval_s
                except StorageUnavailableError as exc:
                    pause = min(max(pause * 2, 0.1), MAX_PAUSE_S)
                    log.warning("claiming jobs: %s (%s); again in %.1fs", exc, exc.__cause__, pause)
                except Exception:
                    log.exception("claiming jobs failed; retrying after %ss", self.poll_interval_s)
            for job in claimed:
                task = asyncio.create_task(self.process(job))
                self._tasks.add(task)
                task.add_done_callback(self._finished)
            if self.clock() >= self._next_check:
                await self.report_unclaimed()
            if not claimed or len(claimed) == free:
                await self._sleep(pause)

    async def claim(self, limit: int) -> list[ClaimedJob]:
        """Lease up to `limit` due jobs of the kinds this worker runs."""
        now = self.clock()
        until = now + timedelta(seconds=self.lease_s)
        return await self.store.claim_jobs(self.owner, limit, now, until, self.kinds)

    async def report_unclaimed(self) -> list[str]:
        """Warn of job kinds with due jobs that no worker has claimed for UNCLAIMED_AFTER_S and
        that this worker cannot run; the kinds warned of."""
        now = self.clock()
        self._next_check = now + timedelta(seconds=UNCLAIMED_CHECK_S)
        try:
            overdue = await self._queries.overdue(now - timedelta(seconds=UNCLAIMED_AFTER_S))
        except Exception as exc:  # a report is not worth stopping the worker for
            log.info("could not look for unclaimed jobs: %s", exc)
            return []
        warned = []
        for o in overdue:
            if o.kind in (TIMER_KIND, WEBHOOK_KIND) or o.kind in self.registry.jobs:
                continue  # this worker runs them: it is busy, not missing a handler
            waited = (now - o.oldest_due).total_seconds()
            log.warning(
                "%d job(s) of kind %r have waited up to %.0f s: no worker with a handler for "
                "it is claiming them (this one runs %s)",
                o.jobs,
                o.kind,
                waited,
                ", ".join(self.kinds) or "only timers",
            )
            warned.append(o.kind)
        return warned

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop claiming; let in-flight jobs finish for `grace_s`, then cancel them.

        A cancelled job is released at once (back to ready, the attempt not counted), so
        another worker runs it without waiting for the lease to expire; its outcome, if it
        had one, was never applied.
        """
        self._stopping = True
        self._wake.set()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.webhooks.close()

    async def process(self, job: ClaimedJob) -> None:
        try:
            # The attempt's span is current while its outcome is applied, so the transition
            # that applies it (and its webhooks) joins the trace.
            with self.tracer.job_attempt(job.kind, job.id, job.run_id, job.attempts, job.payload):
                await self._process(job)
        except asyncio.CancelledError:
            release = self.store.release_job(
                job.lease, self.clock(), due_at=self.clock(), uncount=True
            )
            await asyncio.shield(self._settle(release))
            raise
        except StorageUnavailableError as exc:
            # Nothing of it was recorded; its lease runs out and a worker claims it again.
            log.warning("job %s: %s (%s)", job.id, exc, exc.__cause__)

    async def _process(self, job: ClaimedJob) -> None:
        if job.kind == WEBHOOK_KIND:  # its result is recorded on the job; the run never hears
            await self.webhooks.deliver(job, self._with_heartbeat)
            return
        try:
            outcome = await self._outcome(job)
        except LeaseLostError:
            log.info("job %s: lease lost while running; another worker has it", job.id)
            return
        except PermanentJobError as exc:
            self.tracer.job_failed(str(exc) or type(exc).__name__)
            await self._give_up(job, str(exc) or type(exc).__name__)
            return
        except Exception as exc:  # TransientJobError and any unexpected failure are retried
            error = _describe(exc)
            self.tracer.job_failed(error)
            retry = self.retry_for(job)
            if retry.exhausted(job.attempts, job.max_attempts):
                await self._give_up(job, error)
            else:
                self.observer.job_retry(job.kind)
                now = self.clock()
                due = now + timedelta(seconds=retry.delay_s(job.attempts))
                log_ = job.logged(now, error)
                release = self.store.release_job(
                    job.lease, now, due_at=due, error=error, attempt_log=log_
                )
                await self._settle(release)
            return
        await self._apply(job, outcome)

    def retry_for(self, job: ClaimedJob) -> RetryPolicy:
        """The job's own retry policy (a chart document's job says it in its payload), else its
        kind's, else this worker's default."""
        own = job.payload.get("retry")
        if isinstance(own, dict):
            return RetryPolicy(**own)
        kind = self.registry.jobs.get(job.kind)
        return kind.retry if kind is not None and kind.retry is not None else self.retry

    async def _outcome(self, job: ClaimedJob) -> JobOutcome:
        if job.outcome is not None:  # finished while its run was paused; apply it now
            return msgspec.convert(job.outcome, JobOutcome)
        if job.attempts > job.max_attempts:  # its last lease expired: the worker died
            raise PermanentJobError(job.last_error or "the job's worker stopped responding")
        if job.kind == TIMER_KIND:
            # A task's slot, if any (a timer's event and trace context are not data).
            data = {k: v for k, v in job.payload.items() if k not in ("event", TRACE_KEY)}
            return JobOutcome(str(job.payload["event"]), data)
        kind = self.registry.jobs.get(job.kind)
        if kind is None:
            raise PermanentJobError(f"no handler is registered for job kind {job.kind!r}")
        self.observer.job_attempt(job.kind)
        context = JobContext(job.run_id, job.input, unstamped(job.payload), job.attempts)
        timeout_s = kind.timeout_s or self.job_timeout_s
        try:
            async with asyncio.timeout(timeout_s):
                return await self._with_heartbeat(job, kind.handler(context))
        except TimeoutError:
            raise TimeoutError(f"the attempt took longer than {timeout_s:g} s") from None

    async def _with_heartbeat(self, job: ClaimedJob, work: Awaitable[T]) -> T:
        """Run `work`, extending the job's lease every third of it, so a long job is not taken
        over; if the lease is lost anyway, stop (its outcome would be discarded)."""
        task = asyncio.ensure_future(work)
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.lease_s / 3)
                if done:
                    return task.result()
                until = self.clock() + timedelta(seconds=self.lease_s)
                await self.store.extend_lease(job.lease, until)
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _give_up(self, job: ClaimedJob, error: str) -> None:
        kind = self.registry.jobs.get(job.kind)
        if kind is None:
            await self._settle(self._drop(job, error))
            return
        if job.outcome is None:  # an attempt ran and failed: keep it in the job's log
            log_ = job.logged(self.clock(), error)
            try:
                await self.store.note_failure(job.lease, error, log_)
            except LeaseLostError:
                log.info("job %s: lease lost before its failure was recorded", job.id)
                return
        data = {"error": error, "attempts": min(job.attempts, job.max_attempts)}
        self.observer.job_failure(job.kind)
        await self._apply(job, JobOutcome(self.failure_event(job), data))

    def failure_event(self, job: ClaimedJob) -> str:
        """The event a job sends when it fails for good: its own (a document's job names it),
        else its kind's."""
        own = job.payload.get("failure_event")
        return str(own) if own else self.registry.jobs[job.kind].failure_event

    async def _apply(self, job: ClaimedJob, outcome: JobOutcome) -> None:
        actor = "timer" if job.kind == TIMER_KIND else "worker"
        try:
            await self.dispatcher.dispatch(
                job.run_id,
                outcome.event,
                actor=actor,
                data=outcome.data,
                lease=job.lease,
                internal=True,
            )
        except RunPausedError:
            # Kept until the run is resumed, then applied.
            now, kept = self.clock(), msgspec.to_builtins(outcome)
            hold = self.store.release_job(job.lease, now, due_at=now, outcome=kept, uncount=True)
            await self._settle(hold)
        except (EventNotAllowedError, RunCancelledError, RunNotFoundError) as exc:
            await self._settle(self._drop(job, exc.message))
        except InvalidRequestError as exc:
            # The run refused the outcome's data (a document's guard could not read it): the
            # job failed; its failure event goes instead, unless that is what was refused.
            if job.kind in self.registry.jobs and outcome.event != self.failure_event(job):
                await self._give_up(job, f"the run refused the outcome: {exc.message}")
            else:
                await self._settle(self._drop(job, exc.message))
        except DefinitionNotLoadedError as exc:
            # A timer of a run whose definition only other processes load: leave it to them.
            log.warning("job %s: %s", job.id, exc.message)
            now = self.clock()
            due = now + timedelta(seconds=self.lease_s)
            hold = self.store.release_job(job.lease, now, due_at=due, uncount=True)
            await self._settle(hold)
        except LeaseLostError:
            log.info("job %s: lease lost, outcome %s discarded", job.id, outcome.event)

    async def _drop(self, job: ClaimedJob, reason: str) -> None:
        """Discard a job whose outcome the run no longer accepts (or whose kind has no handler
        anywhere: only a job already running when its handler vanished gets here)."""
        await self.store.release_job(job.lease, self.clock(), JobStatus.DROPPED, error=reason)

    async def _settle(self, update: Awaitable[None]) -> None:
        try:
            await update
        except LeaseLostError:
            log.info("lease lost before a job's state could be recorded")

    async def _sleep(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):  # not wait_for: see Feed._run
                await self._wake.wait()
        self._wake.clear()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("job task failed", exc_info=task.exception())
        self._wake.set()


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
