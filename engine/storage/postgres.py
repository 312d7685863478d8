"""PostgreSQL: a transition is one statement, jobs are claimed with SKIP LOCKED, NOTIFY wakes.

Storing a transition is one round trip: data-modifying CTEs update or insert the run, cancel and
insert jobs, take the feed lock, append the history entry and NOTIFY its seq. Every part hangs
off the run write, so a stale version writes nothing. Writes run on an asyncpg pool of their
own (signoff.engine.storage.pg_writer); SQLAlchemy's pool serves reads and migrations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, cast

import msgspec
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from signoff.engine.storage import jobs
from signoff.engine.storage.jobs import WEBHOOK_KIND, ClaimedJob
from signoff.engine.storage.listener import (
    CHANNEL,
    DEFINITIONS_CHANNEL,
    JOBS_CHANNEL,
    PgListener,
    asyncpg_dsn,
)
from signoff.engine.storage.pg_writer import PgTx, PgWriter
from signoff.engine.storage.records import IdempotencyKey, TransitionWrite
from signoff.engine.storage.schema import JOBS, RUNS
from signoff.engine.storage.statements import Row, Sql, Tx, sql
from signoff.engine.storage.store import (
    HISTORY_COLUMNS,
    INBOX_FIELDS,
    RUN_COLUMNS,
    STATE_COLUMNS,
    Listener,
    Store,
    Stored,
    delivery_payload,
    history_row,
    pending_counts,
)

# Held from the history insert to commit, so seq order is commit order and a feed reader that
# has seen seq N can never later find a smaller seq appear (two transactions that took seq 10
# and 11 could otherwise commit 11 first, and a reader past 11 would never see 10).
FEED_LOCK = 0x5160FF
# Serializes concurrent `migrate`/`serve` starts on one database.
MIGRATION_LOCK = 0x5160FE
DEFINITIONS_LOCK = 0x5160FD
# An entry takes its seq under the feed lock, then its audit hash links to the hash of the last
# entry, read by this function (migration 0007): a VOLATILE function's query takes a snapshot of
# its own, so it sees every entry committed before the lock was granted, which this statement's
# snapshot, taken before it waited for the lock, may not.
SEQUENCE = "history_seq_seq"
LAST_HASH = "signoff_last_hash"
_LOCK_DEFINITIONS = sql(f"SELECT pg_advisory_xact_lock({DEFINITIONS_LOCK})")
_ANNOUNCE_DEFINITIONS = sql(f"SELECT pg_notify('{DEFINITIONS_CHANNEL}', '')")
# Requests repeating one idempotency key serialize here until the first commits or rolls back.
_WAIT_FOR_KEY = sql("SELECT pg_advisory_xact_lock(hashtextextended($1, 5160))")
_CLAIM = sql(
    "WITH claimed AS ("
    + jobs.CLAIM.format(
        due=jobs.DUE.format(kinds="= ANY($5::text[])") + " FOR UPDATE OF j SKIP LOCKED"
    )
    + ") SELECT c.*, r.input FROM claimed c JOIN runs r ON r.id = c.run_id",
    of=JOBS,
)


# The array type each inbox field travels in.
_INBOX_TYPES = {
    "who": "::text[]",
    "slot": "::text[]",
    "state": "::text[]",
    "assignee": "::text[]",
    "voters": "::text[]",  # JSON text: a list of lists would travel as a 2-D array
    "shared": "::bool[]",
    "due_at": "::timestamptz[]",
    "due_sort": "::timestamptz[]",
    "opened_at": "::timestamptz[]",
}


_INBOX_VALUES = {f: "i.voters::jsonb" if f == "voters" else "i." + f for f in _INBOX_TYPES}


class _Params:
    """Numbers a statement's parameters by name, in the order the text first uses them."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __call__(self, name: str, cast: str = "") -> str:
        if name not in self.names:
            self.names.append(name)
        return f"${self.names.index(name) + 1}{cast}"


def _transition(new: bool, listing: bool, telling: bool) -> tuple[Sql, list[str]]:
    """The one statement that stores a transition on a new run or an existing one; with
    `listing`, it rewrites the run's inbox rows, with `telling`, it writes deliveries (most
    transitions do neither, and their statement has no part for them)."""
    p = _Params()
    if new:
        run = (
            f"INSERT INTO runs ({', '.join(RUN_COLUMNS)})"
            f" VALUES ({', '.join(p(c) for c in RUN_COLUMNS)}) RETURNING id"
        )
    else:
        changes = ", ".join(f"{c} = {p(c)}" for c in STATE_COLUMNS)
        where = f"id = {p('id')} AND version = {p('before')}"
        run = f"UPDATE runs SET {changes} WHERE {where} RETURNING id"
    now = p("updated_at")
    text_ = f"""WITH run AS ({run}),
    cancelled AS (UPDATE jobs SET status = 'cancelled', updated_at = {now}
        WHERE run_id = (SELECT id FROM run) AND status IN ('ready', 'running')
        AND id <> {p("keep")} AND kind <> '{WEBHOOK_KIND}'
        AND ({p("cancel_all")} OR state = ANY({p("cancel_states", "::text[]")}))
        RETURNING id),
    enqueued AS (INSERT INTO jobs (run_id, kind, state, payload, status, attempts, max_attempts,
        due_at, created_for_version, created_at, updated_at)
        SELECT run.id, j.kind, j.state, j.payload, 'ready', 0, j.max_attempts, j.due_at,
            {p("version")}, {now}, {now}
        FROM run, unnest({p("kinds", "::text[]")}, {p("states", "::text[]")},
            {p("payloads", "::jsonb[]")}, {p("dues", "::timestamptz[]")},
            {p("max_attempts", "::int[]")}) AS j(kind, state, payload, due_at, max_attempts)
        RETURNING id),
    {_listing(p) if listing else ""}
    {_telling(p, now) if telling else ""}
    feed AS (SELECT nextval('{SEQUENCE}') AS seq
        FROM run, (SELECT pg_advisory_xact_lock({FEED_LOCK})) AS locked),
    entry AS (INSERT INTO history (seq, hash, {", ".join(HISTORY_COLUMNS)})
        SELECT feed.seq, encode(sha256(convert_to({LAST_HASH}() || E'\\n' || feed.seq::text
            || E'\\n' || {p("digest", "::text")}, 'UTF8')), 'hex'),
            {", ".join(p("h." + c) for c in HISTORY_COLUMNS)}
        FROM feed RETURNING seq),
    counted AS (INSERT INTO pending_counts (seq, counts)
        SELECT seq, {p("counts", "::jsonb")} FROM entry WHERE {p("counts", "::jsonb")} IS NOT NULL)
    SELECT seq, pg_notify('{CHANNEL}', seq::text) AS notified,
        (SELECT count(*) FROM (SELECT pg_notify('{JOBS_CHANNEL}', '') FROM (SELECT id FROM enqueued
            {"UNION ALL SELECT id FROM delivered" if telling else ""} LIMIT 1) AS j) AS n) AS woke,
        {"(SELECT count(*) FROM delivered)" if telling else "0"} AS deliveries,
        EXISTS (SELECT 1 FROM webhooks WHERE active) AS subscribed FROM entry"""
    return sql(text_), p.names


def _listing(p: _Params) -> str:
    return f"""unlisted AS (DELETE FROM inbox WHERE run_id = (SELECT id FROM run)
            AND {p("unlist")}),
    listed AS (INSERT INTO inbox (run_id, definition, ref_type, ref_id, created_by,
            {", ".join(INBOX_FIELDS)})
        SELECT run.id, {p("l.definition")}, {p("l.ref_type")}, {p("l.ref_id")},
            {p("l.created_by")}, {", ".join(_INBOX_VALUES[f] for f in INBOX_FIELDS)}
        FROM run, unnest({", ".join(p("i." + f, _INBOX_TYPES[f]) for f in INBOX_FIELDS)})
            AS i({", ".join(INBOX_FIELDS)})),"""


def _telling(p: _Params, now: str) -> str:
    return f"""delivered AS (INSERT INTO jobs (run_id, kind, state, payload, status, attempts,
            max_attempts, due_at, created_for_version, created_at, updated_at, subscription_id)
        SELECT run.id, '{WEBHOOK_KIND}', '', n.payload, 'ready', 0, w.max_attempts, {now},
            {p("version")}, {now}, {now}, w.id
        FROM run CROSS JOIN unnest({p("n_types", "::text[]")}, {p("n_payloads", "::jsonb[]")})
            AS n(type, payload)
        JOIN webhooks w ON w.active
            AND (w.definitions = '[]'::jsonb OR w.definitions ? {p("l.definition")})
            AND (w.events = '[]'::jsonb OR w.events ? n.type)
        RETURNING id),"""


# The notifications of a transition already written, as deliveries to every subscription that
# wants them ($1 run, $2 its definition, $3 its version, $4 now, $5 types, $6 payloads).
_FAN_OUT = sql(
    f"""WITH delivered AS (INSERT INTO jobs (run_id, kind, state, payload, status, attempts,
        max_attempts, due_at, created_for_version, created_at, updated_at, subscription_id)
    SELECT $1, '{WEBHOOK_KIND}', '', n.payload, 'ready', 0, w.max_attempts, $4, $3, $4, $4, w.id
    FROM unnest($5::text[], $6::jsonb[]) AS n(type, payload)
    JOIN webhooks w ON w.active
        AND (w.definitions = '[]'::jsonb OR w.definitions ? $2::text)
        AND (w.events = '[]'::jsonb OR w.events ? n.type)
    RETURNING id) SELECT count(*) AS deliveries FROM delivered"""
)
# (new run, rewrites its inbox rows, writes deliveries) → the statement and its parameters.
_STATEMENTS = {
    (new, listing, telling): _transition(new, listing, telling)
    for new in (True, False)
    for listing in (True, False)
    for telling in (True, False)
}


class PgStore(Store):
    # FOR UPDATE serializes events on one run.
    lock_clause = " FOR UPDATE"

    def __init__(self, url: str, *, pool_size: int) -> None:
        # Reads check a pooled connection before use, so a restarted server costs no request.
        engine = self.create_engine(
            url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
        )
        super().__init__(url, engine)
        self._read_run = sql(f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE id = $1", of=RUNS)
        self._writer = PgWriter(asyncpg_dsn(url), size=pool_size)
        # Whether a webhook subscription was active at the last transition this process wrote
        # (True until one says otherwise): see store_transition.
        self.subscribed = True

    def _transaction(self, *, single: bool) -> Any:
        return self._writer.transaction(single=single)

    async def _probe(self) -> None:
        await self._writer.probe()

    async def _close_writer(self) -> None:
        await self._writer.close()

    async def lock_run(self, tx: Tx, run_id: str) -> Row | None:
        # Outside a transaction block (an optimistic transition: Dispatcher._transact) a row
        # lock would end with the statement: the run is read as it is, and the statement that
        # stores the transition checks that its version has not moved on.
        if cast(PgTx, tx).conn.is_in_transaction():
            return await tx.fetchrow(self._lock_run, run_id)
        return await tx.fetchrow(self._read_run, run_id)

    async def store_transition(self, tx: Tx, w: TransitionWrite) -> Stored | None:
        a = w.after
        values: dict[str, Any] = {
            **a,
            "before": 0 if w.before is None else w.before["version"],
            "keep": -1 if w.keep_job is None else w.keep_job,
            "cancel_all": w.cancel_all,
            "cancel_states": list(w.cancel_states),
            "max_attempts": list(w.max_attempts),
            "kinds": [r.kind for r in w.requests],
            "states": [r.state for r in w.requests],
            "payloads": [r.payload for r in w.requests],
            "dues": [r.due(w.now) for r in w.requests],
        }
        values.update({"h." + k: v for k, v in history_row(w).items()})
        values["digest"] = w.digest
        values["counts"] = pending_counts(w)
        values.update({"l." + k: a[k] for k in ("definition", "ref_type", "ref_id", "created_by")})
        listed = w.inbox or []
        values["unlist"] = w.inbox is not None and w.listed
        values.update({"i." + f: [r[f] for r in listed] for f in INBOX_FIELDS})
        values["i.voters"] = [msgspec.json.encode(r["voters"]).decode() for r in listed]
        # Notifications are made only while this process believes someone subscribes (and
        # always outside a transaction block, where nothing can be added after the statement);
        # the statement says whether anyone does, and a belief found stale is put right in the
        # same transaction, so no transition commits without its deliveries.
        alone = not cast(PgTx, tx).conn.is_in_transaction()
        told = list(w.notify()) if self.subscribed or alone else []
        values["n_types"] = [n.type for n in told]
        values["n_payloads"] = [delivery_payload(n) for n in told]
        stmt, names = _STATEMENTS[w.before is None, w.inbox is not None, bool(told)]
        row = await tx.fetchrow(stmt, *(values[n] for n in names))
        if row is None:
            return None
        deliveries = int(row["deliveries"])
        if row["subscribed"] and not (self.subscribed or alone):
            told = list(w.notify())
            args = (a["id"], a["definition"], a["version"], w.now)
            types, payloads = [n.type for n in told], [delivery_payload(n) for n in told]
            found = await tx.fetchrow(_FAN_OUT, *args, types, payloads)
            deliveries = 0 if found is None else int(found["deliveries"])
        self.subscribed = bool(row["subscribed"])
        return Stored(int(row["seq"]), deliveries)

    async def claim_jobs(
        self, owner: str, limit: int, now: datetime, until: datetime, kinds: Sequence[str]
    ) -> list[ClaimedJob]:
        # One autocommit statement: SKIP LOCKED gives concurrent workers disjoint jobs.
        async with self.write(single=True) as tx:
            rows = await tx.fetch(_CLAIM, owner, until, now, limit, list(kinds))
        rows.sort(key=lambda r: r["id"])
        return [jobs.claimed(r, owner, r["input"]) for r in rows]

    async def _wait_for_key(self, tx: Tx, idem: IdempotencyKey) -> None:
        await tx.execute(_WAIT_FOR_KEY, f"{idem.key}\x1f{idem.actor}\x1f{idem.route}")

    async def lock_definitions(self, tx: Tx) -> None:
        await tx.execute(_LOCK_DEFINITIONS)

    async def announce_definitions(self, tx: Tx) -> None:
        await tx.execute(_ANNOUNCE_DEFINITIONS)

    def listener(
        self,
        on_commit: Callable[[int | None], None],
        on_definitions: Callable[[], None] | None = None,
        on_jobs: Callable[[], None] | None = None,
    ) -> Listener:
        if on_jobs is None:
            return PgListener(self.url, on_commit, on_definitions)
        wake = on_jobs
        own = self._writer.pids

        # This process's own commits have woken its workers already (Runtime._wake_workers).
        def heard(pid: int) -> None:
            if pid not in own:
                wake()

        return PgListener(self.url, on_commit, on_definitions, heard)

    @asynccontextmanager
    async def migrating(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
            try:
                yield conn
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
                await conn.commit()
