"""Storing one transition: the run row, its history entry, and the jobs it cancels and asks for.

On PostgreSQL all of it is one statement (one round trip): data-modifying CTEs that update or
insert the run, cancel and insert jobs, take the feed lock, append the history entry and
NOTIFY its seq. Every part hangs off the run write, so a stale version writes nothing. On
SQLite the same parts are separate statements, which cost microseconds there (engine/sql.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from signoff.engine.model.definition import JobRequest
from signoff.engine.storage import jobs
from signoff.engine.storage.listener import CHANNEL
from signoff.engine.storage.statements import Row, Tx, sql

COLUMNS = (
    "id, definition, definition_version, version, ref_id, ref_type, input, state, configuration,"
    " business_history, lifecycle, lifecycle_configuration, lifecycle_history, context,"
    " created_by, created_at, updated_at, definition_hash"
)
_NAMES = [c.strip() for c in COLUMNS.split(",")]
RUN_JSON = (
    "input",
    "configuration",
    "business_history",
    "lifecycle_configuration",
    "lifecycle_history",
    "context",
)
# Held from the history insert to commit on PostgreSQL, so seq order is commit order and a
# feed reader that has seen seq N can never later find a smaller seq appear (see DESIGN.md).
# The NOTIFY reaches every process LISTENing (engine/listener.py) at commit; only the seq
# travels, payloads must stay small.
FEED_LOCK = 0x5160FF
_HISTORY = (
    "run_id, version, at, actor, event, data, reason,"
    " business_from, business_to, lifecycle_from, lifecycle_to, run"
)

_INSERT_RUN = sql(
    f"INSERT INTO runs ({COLUMNS}) VALUES"
    " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
)
_RUN_STATE = """version = $3, state = $4, configuration = $5, business_history = $6,
    lifecycle = $7, lifecycle_configuration = $8, lifecycle_history = $9, context = $10,
    updated_at = $11"""
# A migration to another version of the definition also rewrites these two.
_UPDATE_RUN = sql(
    f"UPDATE runs SET {_RUN_STATE}, definition_version = $12, definition_hash = $13"
    " WHERE id = $1 AND version = $2"
)
_APPEND_SQLITE = sql(
    f"INSERT INTO history ({_HISTORY}) VALUES"
    " ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING seq"
)

# PostgreSQL, in one statement. $1 id, $2 version before, $3..$11 the run's new state (as in
# _UPDATE_RUN), $12 job to keep, $13 cancel all open jobs, $14 states whose jobs to cancel,
# $15 max attempts, $16..$19 new jobs (kinds, states, payloads, due times), $20 actor,
# $21 event, $22 data, $23 reason, $24 business from, $25 lifecycle from, $26 run view;
# updating: $27 definition version, $28 its hash.
_TAIL = f"""
cancelled AS (UPDATE jobs SET status = 'cancelled', updated_at = $11
    WHERE run_id = (SELECT id FROM run) AND status IN ('ready', 'running') AND id <> $12
    AND ($13 OR state = ANY($14::text[])) RETURNING id),
enqueued AS (INSERT INTO jobs (run_id, kind, state, payload, status, attempts, max_attempts,
    due_at, created_for_version, created_at, updated_at)
    SELECT run.id, j.kind, j.state, j.payload, 'ready', 0, $15, j.due_at, $3, $11, $11
    FROM run, unnest($16::text[], $17::text[], $18::jsonb[], $19::timestamptz[])
        AS j(kind, state, payload, due_at)
    RETURNING id),
feed AS (SELECT pg_advisory_xact_lock({FEED_LOCK}) FROM run),
entry AS (INSERT INTO history ({_HISTORY})
    SELECT $1, $3, $11, $20, $21, $22, $23, $24, $5, $25, $8, $26 FROM feed RETURNING seq)
SELECT seq, pg_notify('{CHANNEL}', seq::text) AS notified FROM entry"""
_UPDATE_PG = sql(
    f"WITH run AS (UPDATE runs SET {_RUN_STATE}, definition_version = $27,"
    " definition_hash = $28 WHERE id = $1 AND version = $2 RETURNING id)," + _TAIL,
    sqlite="-- PostgreSQL only",
)
# Creating: $2 is 0, and $27..$33 are the columns an update leaves alone.
_CREATE_PG = sql(
    f"""WITH run AS (INSERT INTO runs ({COLUMNS}) SELECT $1, $27, $28, $3, $29, $30, $31, $4,
    $5, $6, $7, $8, $9, $10, $32, $11, $11, $33 WHERE $2 = 0 RETURNING id),"""
    + _TAIL,
    sqlite="-- PostgreSQL only",
)


@dataclass(frozen=True)
class TransitionWrite:
    """Everything one transition stores; `before` is the run row as locked (None: creating)."""

    after: Row
    before: Row | None
    now: datetime
    actor: str
    event: str
    data: dict[str, Any]
    reason: str | None
    business_from: list[str]
    lifecycle_from: list[str]
    view: dict[str, Any]
    cancel_all: bool
    cancel_states: Sequence[str]
    keep_job: int | None
    requests: Sequence[JobRequest]
    max_attempts: int


async def store(tx: Tx, w: TransitionWrite) -> int | None:
    """Write the transition; its history seq, or None if the run's version moved on."""
    if tx.is_sqlite:
        return await _store_sqlite(tx, w)
    a = w.after
    args: list[Any] = [
        a["id"],
        0 if w.before is None else w.before["version"],
        a["version"],
        a["state"],
        a["configuration"],
        a["business_history"],
        a["lifecycle"],
        a["lifecycle_configuration"],
        a["lifecycle_history"],
        a["context"],
        w.now,
        -1 if w.keep_job is None else w.keep_job,
        w.cancel_all,
        list(w.cancel_states),
        w.max_attempts,
        [r.kind for r in w.requests],
        [r.state for r in w.requests],
        [r.payload for r in w.requests],
        [w.now + timedelta(seconds=r.delay_s) for r in w.requests],
        w.actor,
        w.event,
        w.data,
        w.reason,
        w.business_from,
        w.lifecycle_from,
        w.view,
    ]
    if w.before is None:
        args += [a["definition"], a["definition_version"], a["ref_id"], a["ref_type"]]
        args += [a["input"], a["created_by"], a["definition_hash"]]
    else:
        args += [a["definition_version"], a["definition_hash"]]
    row = await tx.fetchrow(_CREATE_PG if w.before is None else _UPDATE_PG, *args)
    return None if row is None else int(row["seq"])


async def _store_sqlite(tx: Tx, w: TransitionWrite) -> int | None:
    a = w.after
    run_id, now = a["id"], w.now
    if w.before is None:
        await tx.execute(_INSERT_RUN, *(a[name] for name in _NAMES))
    else:
        changed = await tx.execute(
            _UPDATE_RUN,
            run_id,
            w.before["version"],
            a["version"],
            a["state"],
            a["configuration"],
            a["business_history"],
            a["lifecycle"],
            a["lifecycle_configuration"],
            a["lifecycle_history"],
            a["context"],
            now,
            a["definition_version"],
            a["definition_hash"],
        )
        if changed != 1:
            return None
    if w.cancel_all:
        await jobs.cancel(tx, run_id, now, keep=w.keep_job)
    else:
        await jobs.cancel(tx, run_id, now, states=w.cancel_states, keep=w.keep_job)
    await jobs.enqueue(tx, run_id, a["version"], w.requests, now, w.max_attempts)
    row = await tx.fetchrow(
        _APPEND_SQLITE,
        run_id,
        a["version"],
        now,
        w.actor,
        w.event,
        w.data,
        w.reason,
        w.business_from,
        a["configuration"],
        w.lifecycle_from,
        a["lifecycle_configuration"],
        w.view,
    )
    assert row is not None
    return int(row["seq"])
