"""The jobs table as a queue: its records and the SQL both dialects share.

Jobs are enqueued and cancelled inside the transition that asks for them, claimed with a lease,
and settled (marked done) inside the transition that applies their outcome, only while the lease
is still the worker's: so an outcome is applied at most once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from signoff.engine.model.lifecycle import LifecycleState
from signoff.engine.model.run_model import TIMER_KIND
from signoff.engine.storage.statements import sql

# A webhook delivery (signoff.engine.webhooks): claimed by every worker, never sent to its run.
WEBHOOK_KIND = "webhook"


class JobStatus(StrEnum):
    READY = "ready"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"
    DROPPED = "dropped"  # its outcome was refused by the run, or it had no handler
    DEAD = "dead"  # a webhook delivery that ran out of attempts (redelivered on request)


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
    claimed_at: datetime
    attempt_log: list[dict[str, Any]]
    created_at: datetime | None = None  # when the transition that wrote it committed
    subscription_id: str | None = None  # a webhook delivery's subscription

    def logged(self, now: datetime, error: str) -> list[dict[str, Any]]:
        """The job's log of failed attempts with this one added."""
        entry = {
            "attempt": self.attempts,
            "started_at": self.claimed_at.isoformat(),
            "ended_at": now.isoformat(),
            "error": error[:2000],
        }
        return [*self.attempt_log, entry]


# Held: the job is still running under this lease (nobody took it over or cancelled it).
_HELD = "WHERE id = $1 AND lease_owner = $2 AND status = 'running'"
SETTLE = sql("UPDATE jobs SET status = 'done', updated_at = $3, lease_until = NULL " + _HELD)
RELEASE = sql(
    """UPDATE jobs SET status = $3, due_at = COALESCE($4, due_at),
    last_error = COALESCE($5, last_error), outcome = COALESCE($6, outcome),
    attempts = attempts - $7, lease_owner = NULL, lease_until = NULL, updated_at = $8,
    attempt_log = COALESCE($9, attempt_log) """
    + _HELD
)
EXTEND = sql("UPDATE jobs SET lease_until = $3 " + _HELD)
# Due: ready ones, and running ones whose lease expired, of the kinds this worker runs ($5, in
# the dialect's list form: `{kinds}`; timers always). A paused run's jobs and timers wait for
# it to be resumed; its webhook deliveries do not (they tell of what already happened).
# ($1 owner, $2 lease end, $3 now, $4 how many.)
DUE = f"""SELECT j.id FROM jobs j JOIN runs r ON r.id = j.run_id
    WHERE ((j.status = 'ready' AND j.due_at <= $3) OR (j.status = 'running' AND j.lease_until < $3))
    AND (j.kind = '{TIMER_KIND}' OR j.kind {{kinds}})
    AND (r.lifecycle <> '{LifecycleState.PAUSED}' OR j.kind = '{WEBHOOK_KIND}')
    ORDER BY j.due_at LIMIT $4"""
CLAIM = """UPDATE jobs SET status = 'running', lease_owner = $1, attempts = attempts + 1,
    lease_until = $2, updated_at = $3, claimed_at = $3 WHERE id IN ({due})
    RETURNING id, run_id, kind, payload, attempts, max_attempts, outcome, last_error,
    claimed_at, attempt_log, created_at, subscription_id"""
# A failed last attempt's error, recorded before its failure event is applied.
NOTE = sql("UPDATE jobs SET last_error = $3, attempt_log = $4 " + _HELD)


def claimed(row: dict[str, Any], owner: str, input: dict[str, Any]) -> ClaimedJob:
    return ClaimedJob(
        row["id"],
        row["run_id"],
        row["kind"],
        row["payload"],
        row["attempts"],
        row["max_attempts"],
        row["outcome"],
        row["last_error"],
        Lease(row["id"], owner),
        input,
        row["claimed_at"],
        row["attempt_log"],
        row["created_at"],
        row["subscription_id"],
    )
