"""The job table as a queue: enqueue and cancel inside transitions, claim with leases, settle."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.database import Database
from engine.definition import PAUSED, JobRequest
from engine.errors import LeaseLostError
from engine.tables import JOBS, RUNS

READY, RUNNING, DONE, CANCELLED, DROPPED = "ready", "running", "done", "cancelled", "dropped"
_OPEN = (READY, RUNNING)


class TransientJobError(Exception):
    """The job failed in a way that may pass; it is retried with backoff."""


class PermanentJobError(Exception):
    """The job failed for good; its run gets the failure event at once."""


@dataclass(frozen=True)
class Lease:
    """Proof that a worker holds a job: its outcome counts only while this still matches."""

    job_id: int
    owner: str


@dataclass(frozen=True)
class ClaimedJob:
    id: int
    run_id: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    outcome: dict[str, Any] | None
    last_error: str | None
    lease: Lease
    input: dict[str, Any]


async def enqueue(
    conn: AsyncConnection,
    run_id: str,
    version: int,
    requests: Sequence[JobRequest],
    now: datetime,
    max_attempts: int,
) -> None:
    """Insert the jobs a transition asked for (inside that transition's transaction)."""
    if not requests:
        return
    await conn.execute(
        JOBS.insert(),
        [
            {
                "run_id": run_id,
                "kind": r.kind,
                "state": r.state,
                "payload": r.payload,
                "status": READY,
                "attempts": 0,
                "max_attempts": max_attempts,
                "due_at": now + timedelta(seconds=r.delay_s),
                "created_for_version": version,
                "created_at": now,
                "updated_at": now,
            }
            for r in requests
        ],
    )


async def cancel(
    conn: AsyncConnection,
    run_id: str,
    now: datetime,
    states: Sequence[str] | None = None,
    keep: int | None = None,
) -> None:
    """Cancel a run's open jobs (only those armed in `states`, when given), except `keep`."""
    where = [JOBS.c.run_id == run_id, JOBS.c.status.in_(_OPEN)]
    if states is not None:
        if not states:
            return
        where.append(JOBS.c.state.in_(states))
    if keep is not None:
        where.append(JOBS.c.id != keep)
    await conn.execute(update(JOBS).where(*where).values(status=CANCELLED, updated_at=now))


async def settle(conn: AsyncConnection, lease: Lease, now: datetime) -> None:
    """Mark a leased job done inside the transition that applies its outcome.

    Raises LeaseLostError when the lease is no longer ours (another worker took the job over,
    or the run left the state and the job was cancelled): the transaction then rolls back, so
    an outcome is applied at most once.
    """
    result = await conn.execute(
        update(JOBS).where(*held(lease)).values(status=DONE, updated_at=now, lease_until=None)
    )
    if result.rowcount != 1:
        raise LeaseLostError()


def held(lease: Lease) -> tuple[Any, ...]:
    """The job is still running under this lease (nobody took it over or cancelled it)."""
    return (JOBS.c.id == lease.job_id, JOBS.c.lease_owner == lease.owner, JOBS.c.status == RUNNING)


class JobQueue:
    """Claims due jobs with leases and records what became of them, outside transitions."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def claim(
        self, owner: str, limit: int, now: datetime, lease_s: float
    ) -> list[ClaimedJob]:
        """Lease up to `limit` due jobs: ready ones, and running ones whose lease expired."""
        due = or_(
            and_(JOBS.c.status == READY, JOBS.c.due_at <= now),
            and_(JOBS.c.status == RUNNING, JOBS.c.lease_until < now),
        )
        # A paused run's jobs and timers wait for it to be resumed.
        query = (
            select(JOBS.c.id)
            .join(RUNS, RUNS.c.id == JOBS.c.run_id)
            .where(due, RUNS.c.lifecycle != PAUSED)
            .order_by(JOBS.c.due_at)
            .limit(limit)
        )
        if not self.db.is_sqlite:
            # SKIP LOCKED: concurrent workers claim disjoint jobs without waiting on each other.
            query = query.with_for_update(of=JOBS, skip_locked=True)
        async with self.db.write() as conn:
            ids = (await conn.execute(query)).scalars().all()
            if not ids:
                return []
            rows = (
                await conn.execute(
                    update(JOBS)
                    .where(JOBS.c.id.in_(ids))
                    .values(
                        status=RUNNING,
                        lease_owner=owner,
                        attempts=JOBS.c.attempts + 1,
                        lease_until=now + timedelta(seconds=lease_s),
                        updated_at=now,
                    )
                    .returning(JOBS)
                )
            ).all()
            run_ids = {r.run_id for r in rows}
            query = select(RUNS.c.id, RUNS.c.input).where(RUNS.c.id.in_(run_ids))
            inputs: dict[str, dict[str, Any]] = {
                run_id: data for run_id, data in (await conn.execute(query)).all()
            }
        return [
            ClaimedJob(
                r.id,
                r.run_id,
                r.kind,
                r.payload,
                r.attempts,
                r.max_attempts,
                r.outcome,
                r.last_error,
                Lease(r.id, owner),
                inputs.get(r.run_id, {}),
            )
            for r in rows
        ]

    async def retry(self, lease: Lease, error: str, due_at: datetime, now: datetime) -> None:
        """Put a failed attempt back in the queue for `due_at`."""
        await self._release(lease, now, status=READY, due_at=due_at, last_error=error)

    async def hold(self, lease: Lease, outcome: dict[str, Any], now: datetime) -> None:
        """Keep a finished job's outcome until its paused run is resumed, then apply it."""
        await self._release(
            lease, now, status=READY, due_at=now, outcome=outcome, attempts=JOBS.c.attempts - 1
        )

    async def release(self, lease: Lease, now: datetime) -> None:
        """Give a job back unfinished (its worker is stopping); the attempt does not count."""
        await self._release(lease, now, status=READY, due_at=now, attempts=JOBS.c.attempts - 1)

    async def extend(self, lease: Lease, until: datetime) -> None:
        """Heartbeat: keep the lease while the job runs. Raises LeaseLostError if it is gone."""
        await self._update_held(lease, lease_until=until)

    async def drop(self, lease: Lease, reason: str, now: datetime) -> None:
        """Discard a job whose outcome the run no longer accepts."""
        await self._release(lease, now, status=DROPPED, last_error=reason)

    async def _release(self, lease: Lease, now: datetime, **values: Any) -> None:
        await self._update_held(lease, lease_owner=None, lease_until=None, updated_at=now, **values)

    async def _update_held(self, lease: Lease, **values: Any) -> None:
        async with self.db.write() as conn:
            result = await conn.execute(update(JOBS).where(*held(lease)).values(**values))
            if result.rowcount != 1:
                raise LeaseLostError()
