"""SQLite: one write connection per process with group commit; a transition is a few statements.

Statements run inline on the write connection once it holds the write lock, where each costs
microseconds, so storing a transition is plain statements in order. `BEGIN IMMEDIATE` orders
every writer, so seq order is commit order and repeats of one idempotency key cannot race.
Other processes' commits are found by the feed's polling (SQLite has no notifications).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from signoff.engine.audit import chain
from signoff.engine.storage import jobs
from signoff.engine.storage.jobs import WEBHOOK_KIND, ClaimedJob
from signoff.engine.storage.records import TransitionWrite
from signoff.engine.storage.schema import JOBS, RUNS
from signoff.engine.storage.sqlite_writer import PRAGMAS, SqliteWriter
from signoff.engine.storage.statements import Tx, sql
from signoff.engine.storage.store import (
    ANY_SUBSCRIBER,
    HISTORY_COLUMNS,
    INBOX_FIELDS,
    LIST_INBOX,
    RUN_COLUMNS,
    STATE_COLUMNS,
    UNLIST_INBOX,
    Store,
    Stored,
    delivery_payload,
    history_row,
    pending_counts,
)

_INSERT_RUN = sql(
    f"INSERT INTO runs ({', '.join(RUN_COLUMNS)})"
    f" VALUES ({', '.join(f'${i}' for i in range(1, len(RUN_COLUMNS) + 1))})"
)
# $1 the run's id, $2 the version it was read at.
_UPDATE_RUN = sql(
    "UPDATE runs SET "
    + ", ".join(f"{c} = ${i}" for i, c in enumerate(STATE_COLUMNS, start=3))
    + " WHERE id = $1 AND version = $2"
)
# The last entry: its hash is the one the next links to, its seq + 1 the next one's seq
# (BEGIN IMMEDIATE holds every other writer off, so both stay so until commit).
_LAST = sql("SELECT seq, hash FROM history ORDER BY seq DESC LIMIT 1")
_APPEND = sql(
    f"INSERT INTO history (seq, hash, {', '.join(HISTORY_COLUMNS)})"
    f" VALUES ({', '.join(f'${i}' for i in range(1, len(HISTORY_COLUMNS) + 3))})"
)
_COUNT = sql("INSERT INTO pending_counts (seq, counts) VALUES ($1, $2)")

# A run's open jobs, cancelled when it leaves the states that armed them (or ends); $3 is a
# job to keep (the one whose outcome the transition applies). PostgreSQL does the same, and
# the enqueueing, inside its one transition statement.
_CANCEL = f"""UPDATE jobs SET status = 'cancelled', updated_at = $2
    WHERE run_id = $1 AND status IN ('ready', 'running') AND id <> $3
    AND kind <> '{WEBHOOK_KIND}'"""
_CANCEL_ALL = sql(_CANCEL)
_CANCEL_IN = sql(_CANCEL + " AND state IN (SELECT value FROM json_each($4))")
_ENQUEUE = sql(
    """INSERT INTO jobs (run_id, kind, state, payload, status, attempts, max_attempts, due_at,
    created_for_version, created_at, updated_at)
    VALUES ($1, $2, $3, $4, 'ready', 0, $5, $6, $7, $8, $8)"""
)
# A notification, as a delivery to each active subscription that wants it ($1 run, $2 its
# definition, $3 type, $4 payload, $5 now, $6 run version).
_FAN_OUT = sql(
    f"""INSERT INTO jobs (run_id, kind, state, payload, status, attempts, max_attempts, due_at,
    created_for_version, created_at, updated_at, subscription_id)
    SELECT $1, '{WEBHOOK_KIND}', '', $4, 'ready', 0, w.max_attempts, $5, $6, $5, $5, w.id
    FROM webhooks w WHERE w.active
    AND (w.definitions = '[]' OR EXISTS (SELECT 1 FROM json_each(w.definitions) WHERE value = $2))
    AND (w.events = '[]' OR EXISTS (SELECT 1 FROM json_each(w.events) WHERE value = $3))"""
)
_DUE = jobs.DUE.format(kinds="IN (SELECT value FROM json_each($5))")
_CLAIM = sql(jobs.CLAIM.format(due=_DUE), of=JOBS)
_INPUTS = sql("SELECT id, input FROM runs WHERE id IN (SELECT value FROM json_each($1))", of=RUNS)


class SqliteStore(Store):
    def __init__(self, url: str) -> None:
        engine = self.create_engine(url)
        super().__init__(url, engine)
        _configure(engine.sync_engine)
        self._writer = SqliteWriter(make_url(url).database or ":memory:")

    def _transaction(self, *, single: bool) -> Any:
        return self._writer.transaction()

    async def _probe(self) -> None:
        await self._writer.probe()

    async def _close_writer(self) -> None:
        await self._writer.close()

    async def store_transition(self, tx: Tx, w: TransitionWrite) -> Stored | None:
        a, now = w.after, w.now
        if w.before is None:
            await tx.execute(_INSERT_RUN, *(a[c] for c in RUN_COLUMNS))
        else:
            state = (a[c] for c in STATE_COLUMNS)
            if await tx.execute(_UPDATE_RUN, a["id"], w.before["version"], *state) != 1:
                return None
        keep = -1 if w.keep_job is None else w.keep_job
        if w.cancel_all:
            await tx.execute(_CANCEL_ALL, a["id"], now, keep)
        elif w.cancel_states:
            await tx.execute(_CANCEL_IN, a["id"], now, keep, list(w.cancel_states))
        for r, attempts in zip(w.requests, w.max_attempts, strict=True):
            due = r.due(now)
            await tx.execute(
                _ENQUEUE,
                a["id"],
                r.kind,
                r.state,
                r.payload,
                attempts,
                due,
                a["version"],
                now,
            )
        if w.inbox is not None:
            if w.listed:
                await tx.execute(UNLIST_INBOX, a["id"])
            made = (a["id"], a["definition"], a["ref_type"], a["ref_id"], a["created_by"])
            for listed in w.inbox:
                await tx.execute(LIST_INBOX, *made, *(listed[f] for f in INBOX_FIELDS))
        deliveries = 0
        # Under the write lock, so exact: with nobody subscribed, nothing is made or written.
        if await tx.fetchrow(ANY_SUBSCRIBER) is not None:
            for n in w.notify():
                payload = delivery_payload(n)
                args = (a["id"], a["definition"], n.type, payload, now, a["version"])
                deliveries += await tx.execute(_FAN_OUT, *args)
        last = await tx.fetchrow(_LAST)
        seq = 1 if last is None else int(last["seq"]) + 1
        prev = chain.GENESIS if last is None or last["hash"] is None else last["hash"]
        linked = chain.link(prev, seq, w.digest)
        entry = history_row(w)
        await tx.execute(_APPEND, seq, linked, *(entry[c] for c in HISTORY_COLUMNS))
        counted = pending_counts(w)
        if counted is not None:
            await tx.execute(_COUNT, seq, counted)
        return Stored(seq, deliveries)

    async def claim_jobs(
        self, owner: str, limit: int, now: datetime, until: datetime, kinds: Sequence[str]
    ) -> list[ClaimedJob]:
        # BEGIN IMMEDIATE holds every other writer off, so no two workers claim one job.
        async with self.write() as tx:
            rows = await tx.fetch(_CLAIM, owner, until, now, limit, list(kinds))
            found = await tx.fetch(_INPUTS, sorted({r["run_id"] for r in rows}))
        inputs = {r["id"]: r["input"] for r in found}
        rows.sort(key=lambda r: r["id"])
        return [jobs.claimed(r, owner, inputs.get(r["run_id"], {})) for r in rows]


def _configure(engine: Any) -> None:
    """SQLAlchemy's read connections: the same pragmas, and a plain deferred BEGIN."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # The driver must not issue its own BEGIN: the "begin" hook below chooses the mode.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in PRAGMAS:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Readers never block the writer (WAL).
        conn.exec_driver_sql("BEGIN")
