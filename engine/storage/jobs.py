"""The job table as a queue: enqueue and cancel inside transitions, claim with leases, settle."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from signoff.engine.errors import LeaseLostError
from signoff.engine.model.definition import PAUSED, JobRequest
from signoff.engine.storage.statements import Sql, Tx, sql
from signoff.engine.storage.store import Database

READY, RUNNING, DONE, CANCELLED, DROPPED = "ready", "running", "done", "cancelled", "dropped"

_ENQUEUE = sql(
    """INSERT INTO jobs (run_id, kind, state, payload, status, attempts, max_attempts, due_at,
    created_for_version, created_at, updated_at)
    VALUES ($1, $2, $3, $4, 'ready', 0, $5, $6, $7, $8, $8)"""
)
_CANCEL = """UPDATE jobs SET status = 'cancelled', updated_at = $2
    WHERE run_id = $1 AND status IN ('ready', 'running') AND id <> $3"""
_CANCEL_ALL = sql(_CANCEL)
_CANCEL_IN = sql(
    _CANCEL + " AND state = ANY($4::text[])",
    sqlite=_CANCEL + " AND state IN (SELECT value FROM json_each($4))",
)
# Held: the job is still running under this lease (nobody took it over or cancelled it).
_HELD = "WHERE id = $1 AND lease_owner = $2 AND status = 'running'"
_SETTLE = sql("UPDATE jobs SET status = 'done', updated_at = $3, lease_until = NULL " + _HELD)
_RELEASE = sql(
    """UPDATE jobs SET status = $3, due_at = COALESCE($4, due_at),
    last_error = COALESCE($5, last_error), outcome = COALESCE($6, outcome),
    attempts = attempts - $7, lease_owner = NULL, lease_until = NULL, updated_at = $8 """
    + _HELD
)
_EXTEND = sql("UPDATE jobs SET lease_until = $3 " + _HELD)
# Due: ready ones, and running ones whose lease expired. A paused run's jobs and timers wait
# for it to be resumed. SKIP LOCKED: concurrent workers claim disjoint jobs without waiting.
_DUE = f"""SELECT j.id FROM jobs j JOIN runs r ON r.id = j.run_id
    WHERE ((j.status = 'ready' AND j.due_at <= $3) OR (j.status = 'running' AND j.lease_until < $3))
    AND r.lifecycle <> '{PAUSED}' ORDER BY j.due_at LIMIT $4"""
_CLAIM = """UPDATE jobs SET status = 'running', lease_owner = $1, attempts = attempts + 1,
    lease_until = $2, updated_at = $3 WHERE id IN ({due})
    RETURNING id, run_id, kind, payload, attempts, max_attempts, outcome, last_error"""
# PostgreSQL: claim and read the runs' inputs in one autocommit statement.
_CLAIM_PG = sql(
    "WITH claimed AS ("
    + _CLAIM.format(due=_DUE + " FOR UPDATE OF j SKIP LOCKED")
    + ") SELECT c.*, r.input FROM claimed c JOIN runs r ON r.id = c.run_id",
    sqlite="-- PostgreSQL only",
)
_CLAIM_SQLITE = sql(_CLAIM.format(due=_DUE), json=("payload", "outcome"))
_INPUTS = sql(
    "SELECT id, input FROM runs WHERE id IN (SELECT value FROM json_each($1))",
    json=("input",),
)


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
    tx: Tx,
    run_id: str,
    version: int,
    requests: Sequence[JobRequest],
    now: datetime,
    max_attempts: int,
) -> None:
    """Insert the jobs a transition asked for (inside that transition's transaction)."""
    for r in requests:
        due = now + timedelta(seconds=r.delay_s)
        await tx.execute(
            _ENQUEUE, run_id, r.kind, r.state, r.payload, max_attempts, due, version, now
        )


async def cancel(
    tx: Tx,
    run_id: str,
    now: datetime,
    states: Sequence[str] | None = None,
    keep: int | None = None,
) -> None:
    """Cancel a run's open jobs (only those armed in `states`, when given), except `keep`."""
    keep_id = -1 if keep is None else keep
    if states is None:
        await tx.execute(_CANCEL_ALL, run_id, now, keep_id)
    elif states:
        await tx.execute(_CANCEL_IN, run_id, now, keep_id, list(states))


async def settle(tx: Tx, lease: Lease, now: datetime) -> None:
    """Mark a leased job done inside the transition that applies its outcome.

    Raises LeaseLostError when the lease is no longer ours (another worker took the job over,
    or the run left the state and the job was cancelled): the transaction then rolls back, so
    an outcome is applied at most once.
    """
    if await tx.execute(_SETTLE, lease.job_id, lease.owner, now) != 1:
        raise LeaseLostError()


class JobQueue:
    """Claims due jobs with leases and records what became of them, outside transitions."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def claim(
        self, owner: str, limit: int, now: datetime, lease_s: float
    ) -> list[ClaimedJob]:
        """Lease up to `limit` due jobs: ready ones, and running ones whose lease expired."""
        until = now + timedelta(seconds=lease_s)
        if not self.db.is_sqlite:
            rows = await self.db.fetch_once(_CLAIM_PG, owner, until, now, limit)
            inputs = {r["run_id"]: r["input"] for r in rows}
        else:
            async with self.db.write() as tx:
                rows = await tx.fetch(_CLAIM_SQLITE, owner, until, now, limit)
                found = await tx.fetch(_INPUTS, sorted({r["run_id"] for r in rows}))
            inputs = {r["id"]: r["input"] for r in found}
        return [
            ClaimedJob(
                r["id"],
                r["run_id"],
                r["kind"],
                r["payload"],
                r["attempts"],
                r["max_attempts"],
                r["outcome"],
                r["last_error"],
                Lease(r["id"], owner),
                inputs.get(r["run_id"], {}),
            )
            for r in sorted(rows, key=lambda r: r["id"])
        ]

    async def retry(self, lease: Lease, error: str, due_at: datetime, now: datetime) -> None:
        """Put a failed attempt back in the queue for `due_at`."""
        await self._release(lease, now, READY, due_at=due_at, error=error)

    async def hold(self, lease: Lease, outcome: dict[str, Any], now: datetime) -> None:
        """Keep a finished job's outcome until its paused run is resumed, then apply it."""
        await self._release(lease, now, READY, due_at=now, outcome=outcome, uncount=True)

    async def release(self, lease: Lease, now: datetime) -> None:
        """Give a job back unfinished (its worker is stopping); the attempt does not count."""
        await self._release(lease, now, READY, due_at=now, uncount=True)

    async def extend(self, lease: Lease, until: datetime) -> None:
        """Heartbeat: keep the lease while the job runs. Raises LeaseLostError if it is gone."""
        await self._held(_EXTEND, lease, until)

    async def drop(self, lease: Lease, reason: str, now: datetime) -> None:
        """Discard a job whose outcome the run no longer accepts."""
        await self._release(lease, now, DROPPED, error=reason)

    async def _release(
        self,
        lease: Lease,
        now: datetime,
        status: str,
        *,
        due_at: datetime | None = None,
        error: str | None = None,
        outcome: dict[str, Any] | None = None,
        uncount: bool = False,
    ) -> None:
        await self._held(_RELEASE, lease, status, due_at, error, outcome, int(uncount), now)

    async def _held(self, stmt: Sql, lease: Lease, *args: Any) -> None:
        async with self.db.write() as tx:
            if await tx.execute(stmt, lease.job_id, lease.owner, *args) != 1:
                raise LeaseLostError()
