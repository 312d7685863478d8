"""The store: one database, two dialects, in the shape of DBOS's system database.

`Store` holds what SQLite and PostgreSQL share: SQLAlchemy's async engine for the schema and
reads, write transactions on the raw driver, the translation of driver errors, and the SQL that
is the same on both (settling and releasing jobs, idempotency records). `SqliteStore` and
`PgStore` override only what differs: how a transition is stored, how jobs are claimed, how
repeats of one idempotency key wait for each other, and how other processes' commits are heard.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from signoff.engine.errors import (
    IdempotencyMismatchError,
    LeaseLostError,
    StorageUnavailableError,
    WriteConflictError,
)
from signoff.engine.storage import jobs
from signoff.engine.storage.failures import DRIVER_ERRORS, INTEGRITY_ERRORS, is_storage_failure
from signoff.engine.storage.jobs import ClaimedJob, JobStatus, Lease
from signoff.engine.storage.records import IdempotencyKey, StoredOutcome, TransitionWrite
from signoff.engine.storage.schema import HISTORY, RUNS
from signoff.engine.storage.statements import Row, Sql, Tx, columns, sql
from signoff.engine.tasks.notify import Notification
from signoff.engine.tracing import stamp

_ENCODER = msgspec.json.Encoder()

_LOOKUP = sql(
    "SELECT request_hash, created, body FROM idempotency"
    " WHERE key = $1 AND actor = $2 AND route = $3"
)
_RECORD = sql(
    "INSERT INTO idempotency (key, actor, route, request_hash, created, body, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
)
_SET_TASKS = sql("UPDATE runs SET tasks = $3 WHERE id = $1 AND version = $2")
UNLIST_INBOX = sql("DELETE FROM inbox WHERE run_id = $1")
ANY_SUBSCRIBER = sql("SELECT 1 AS found FROM webhooks WHERE active LIMIT 1")
RUN_COLUMNS = columns(RUNS)
# What a transition may change on an existing run: all but what the run was created with.
_CREATED_WITH = (
    "id", "definition", "ref_id", "ref_type", "input", "created_by", "created_at", "replay_of"
)  # fmt: skip
STATE_COLUMNS = [c for c in RUN_COLUMNS if c not in _CREATED_WITH]
# A history entry's columns but its seq and audit hash, which the store fills in under the
# lock that orders seq, and the counters only entries older than migration 0011 hold (newer
# ones write theirs to `pending_counts`: `pending_counts(w)`).
HISTORY_COLUMNS = columns(HISTORY, skip=("seq", "hash", "counts"))

# An inbox row's fields that come from the task (signoff.engine.tasks.inbox); the rest are
# the run's.
INBOX_FIELDS = (
    "who", "slot", "state", "assignee", "voters", "shared", "due_at", "due_sort", "opened_at"
)  # fmt: skip
LIST_INBOX = sql(
    "INSERT INTO inbox (run_id, definition, ref_type, ref_id, created_by,"
    f" {', '.join(INBOX_FIELDS)})"
    f" VALUES ($1, $2, $3, $4, $5, {', '.join(f'${i}' for i in range(6, 6 + len(INBOX_FIELDS)))})"
)


@dataclass(frozen=True)
class Stored:
    """A stored transition: its history entry's seq, and the webhook deliveries it wrote."""

    seq: int
    deliveries: int = 0


class Listener(ABC):
    """Hears other processes' commits and calls back with their history seq (None: unknown)."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...


class Store(ABC):
    """A Signoff database; `Store.open(url)` picks the dialect."""

    # Appended to the statement that reads a run before changing it.
    lock_clause: ClassVar[str] = ""

    def __init__(self, url: str, engine: AsyncEngine) -> None:
        self.url = url
        self.engine = engine
        # The last write that failed for a storage reason, until a probe write succeeds.
        self.storage_failure: StorageUnavailableError | None = None
        self._lock_run = sql(
            f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE id = $1{self.lock_clause}", of=RUNS
        )

    @staticmethod
    def open(url: str, *, pool_size: int = 10) -> Store:
        # The dialects subclass Store, so they are imported once one is chosen.
        from signoff.engine.storage.postgres import PgStore
        from signoff.engine.storage.sqlite import SqliteStore

        if url.startswith("sqlite"):
            return SqliteStore(url)
        return PgStore(url, pool_size=pool_size)

    @staticmethod
    def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
        return create_async_engine(
            url,
            json_serializer=lambda value: _ENCODER.encode(value).decode(),
            json_deserializer=msgspec.json.decode,
            **kwargs,
        )

    # --- what each dialect provides --------------------------------------------------------

    @abstractmethod
    def _transaction(self, *, single: bool) -> AbstractAsyncContextManager[Tx]:
        """A write transaction on the raw driver, committed when the block exits cleanly."""

    @abstractmethod
    async def _probe(self) -> None:
        """Commit a write that changes no data (see `check_writes`)."""

    @abstractmethod
    async def _close_writer(self) -> None: ...

    @abstractmethod
    async def store_transition(self, tx: Tx, w: TransitionWrite) -> Stored | None:
        """Write a transition (run row, jobs it cancels and asks for, its inbox rows, its
        notifications' deliveries, its history entry); the entry's seq and how many
        deliveries it wrote, or None if the run's version moved on meanwhile."""

    @abstractmethod
    async def claim_jobs(
        self, owner: str, limit: int, now: datetime, until: datetime, kinds: Sequence[str]
    ) -> list[ClaimedJob]:
        """Lease up to `limit` due jobs of `kinds` (and any timers) to `owner` until `until`."""

    @asynccontextmanager
    async def migrating(self) -> AsyncIterator[AsyncConnection]:
        """A connection to change the schema on, held by one process at a time."""
        async with self.engine.connect() as conn:
            yield conn

    async def _wait_for_key(self, tx: Tx, idem: IdempotencyKey) -> None:  # noqa: B027
        """Make a repeat of `idem` wait until its first use commits or rolls back (nothing to
        do where one writer at a time holds the database, as on SQLite)."""

    async def lock_definitions(self, tx: Tx) -> None:  # noqa: B027
        """Serialize changes to stored definitions (nothing to do where one writer at a time
        holds the database)."""

    async def announce_definitions(self, tx: Tx) -> None:  # noqa: B027
        """Tell other processes, at commit, that stored definitions changed (where the store
        has no channel for it, they look for changes themselves)."""

    def listener(
        self,
        on_commit: Callable[[int | None], None],
        on_definitions: Callable[[], None] | None = None,
        on_jobs: Callable[[], None] | None = None,
    ) -> Listener | None:
        """Hears other processes' commits (and changes to stored definitions, and commits
        that enqueued jobs); None where the feed and the workers must poll for them."""
        return None

    # --- transactions and reads ------------------------------------------------------------

    @asynccontextmanager
    async def write(self, *, single: bool = False) -> AsyncIterator[Tx]:
        """A write transaction, committed when the block exits without an error. `single`
        promises that the block runs exactly one statement (PostgreSQL then saves the
        BEGIN and COMMIT round trips).

        A unique-key violation (two requests racing on one key) surfaces as WriteConflictError;
        a full disk, a read-only or unreachable database as StorageUnavailableError (the
        transaction was rolled back, or never began).
        """
        try:
            async with self._transaction(single=single) as tx:
                yield tx
        except INTEGRITY_ERRORS as exc:
            raise WriteConflictError() from exc
        except DRIVER_ERRORS as exc:
            if not is_storage_failure(exc):
                raise
            raise self._write_failed() from exc

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A read-only snapshot (no write lock taken); StorageUnavailableError if the database
        cannot be reached."""
        try:
            async with self.engine.connect() as conn, conn.begin():
                yield conn
        except DRIVER_ERRORS as exc:
            if not is_storage_failure(exc):
                raise
            raise StorageUnavailableError() from exc

    async def check_writes(self) -> None:
        """Raise StorageUnavailableError while writes fail for a storage reason.

        Only after a real write failed: then a probe write (one that commits, without user
        data) is tried, and its success clears the failure. A probe that rolled back would
        prove nothing (it writes nothing, so a full disk accepts it), and nor would a
        successful write that changed no rows (an empty job claim), so neither clears it.
        """
        if self.storage_failure is None:
            return
        try:
            await self._probe()
        except DRIVER_ERRORS as exc:
            if not is_storage_failure(exc):
                raise
            raise self._write_failed() from exc
        self.storage_failure = None

    def _write_failed(self) -> StorageUnavailableError:
        self.storage_failure = StorageUnavailableError()
        return self.storage_failure

    async def dispose(self) -> None:
        await self._close_writer()
        await self.engine.dispose()

    # --- runs ------------------------------------------------------------------------------

    async def lock_run(self, tx: Tx, run_id: str) -> Row | None:
        """The run's row, locked until the transaction ends (None: no such run)."""
        return await tx.fetchrow(self._lock_run, run_id)

    # --- jobs, outside and inside transitions -----------------------------------------------

    async def settle_job(self, tx: Tx, lease: Lease, now: datetime) -> None:
        """Mark a leased job done inside the transition that applies its outcome.

        Raises LeaseLostError when the lease is no longer ours (another worker took the job
        over, or the run left the state and the job was cancelled): the transaction then rolls
        back, so an outcome is applied at most once.
        """
        if await tx.execute(jobs.SETTLE, lease.job_id, lease.owner, now) != 1:
            raise LeaseLostError()

    async def release_job(
        self,
        lease: Lease,
        now: datetime,
        status: JobStatus = JobStatus.READY,
        *,
        due_at: datetime | None = None,
        error: str | None = None,
        outcome: dict[str, Any] | None = None,
        uncount: bool = False,
        attempt_log: list[dict[str, Any]] | None = None,
    ) -> None:
        """Record what became of a leased job outside a transition: put back (READY, at
        `due_at`, with `outcome` kept for a paused run; `uncount` gives the attempt back) or
        dropped; `attempt_log` replaces its log of failed attempts. Raises LeaseLostError if the
        lease is gone."""
        args = (status, due_at, error, outcome, int(uncount), now, attempt_log)
        await self._held(jobs.RELEASE, lease, *args)

    async def note_failure(
        self, lease: Lease, error: str, attempt_log: list[dict[str, Any]]
    ) -> None:
        """Record a leased job's failed last attempt before its failure event is applied."""
        await self._held(jobs.NOTE, lease, error, attempt_log)

    async def extend_lease(self, lease: Lease, until: datetime) -> None:
        """Heartbeat: keep the lease while the job runs. Raises LeaseLostError if it is gone."""
        await self._held(jobs.EXTEND, lease, until)

    async def _held(self, stmt: Sql, lease: Lease, *args: Any) -> None:
        async with self.write() as tx:
            if await tx.execute(stmt, lease.job_id, lease.owner, *args) != 1:
                raise LeaseLostError()

    # --- tasks outside transitions ----------------------------------------------------------

    async def open_tasks(
        self, tx: Tx, run: Row, tasks: list[dict[str, Any]], rows: Sequence[Row]
    ) -> bool:
        """Give a run that has none its open tasks and inbox rows, outside a transition (runs
        stored before tasks were kept); False if the run changed meanwhile."""
        if await tx.execute(_SET_TASKS, run["id"], run["version"], tasks) != 1:
            return False
        await tx.execute(UNLIST_INBOX, run["id"])
        made = (run["id"], run["definition"], run["ref_type"], run["ref_id"], run["created_by"])
        for listed in rows:
            await tx.execute(LIST_INBOX, *made, *(listed[f] for f in INBOX_FIELDS))
        return True

    # --- idempotency -----------------------------------------------------------------------

    async def find_outcome(self, tx: Tx, idem: IdempotencyKey) -> StoredOutcome | None:
        """The outcome stored for this key, if any; first waits out a concurrent first use."""
        await self._wait_for_key(tx, idem)
        row = await tx.fetchrow(_LOOKUP, idem.key, idem.actor, idem.route)
        if row is None:
            return None
        if row["request_hash"] != idem.request_hash:
            raise IdempotencyMismatchError()
        return StoredOutcome(bool(row["created"]), row["body"].encode())

    async def record_outcome(
        self, tx: Tx, idem: IdempotencyKey, stored: StoredOutcome, now: datetime
    ) -> None:
        """Store an outcome in the same transaction as the effect it describes."""
        await tx.execute(
            _RECORD,
            idem.key,
            idem.actor,
            idem.route,
            idem.request_hash,
            stored.created,
            stored.body.decode(),
            now,
        )


def history_row(w: TransitionWrite) -> dict[str, Any]:
    """A transition's history entry, by column."""
    a = w.after
    return {
        "run_id": a["id"],
        "version": a["version"],
        "at": w.now,
        "actor": w.actor,
        "event": w.event,
        "data": w.data,
        "reason": w.reason,
        "business_from": w.business_from,
        "business_to": a["configuration"],
        "lifecycle_from": w.lifecycle_from,
        "lifecycle_to": a["lifecycle_configuration"],
        "run": msgspec.Raw(w.view),  # JSON already: stored as encoded, never encoded again
    }


def pending_counts(w: TransitionWrite) -> list[list[Any]] | None:
    """The counters the transition adds, as its `pending_counts` row stores them (None: it
    adds none, and writes no row)."""
    return [list(c) for c in w.counts] or None


def delivery_payload(n: Notification) -> dict[str, Any]:
    """A webhook delivery job's payload: the message and its webhook-id (and, when the
    transition is traced, its trace context)."""
    return stamp({"id": n.id, "type": n.type, "message": n.message})
