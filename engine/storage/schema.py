"""The schema: runs, their history, jobs, tasks, webhooks and idempotency records (SQLite and
PostgreSQL).

The one place the tables are spelled; the hot-path statements take their column lists from here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlmodel import Column, Field, SQLModel

JSONValue = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
SeqType = BigInteger().with_variant(Integer(), "sqlite")
REF_ID = String(200).with_variant(String(200, collation="C"), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both dialects (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json(**kw: Any) -> Any:
    return Field(sa_column=Column(JSONValue, nullable=kw.pop("nullable", False)), **kw)


def _time(nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


class Run(SQLModel, table=True):
    __tablename__ = "runs"
    # The run list (GET /api/runs) is newest first: each filter it accepts is an index that
    # ends in `id`, so a page is a range read in order that stops at `limit`, whatever the
    # filtered value's share of the table (migration 0010 says why each exists).
    __table_args__ = (
        Index("ix_runs_definition_id", "definition", "id"),
        Index("ix_runs_state_id", "state", "id"),
        Index("ix_runs_lifecycle_id", "lifecycle", "id"),
        Index("ix_runs_definition_state_id", "definition", "state", "id"),
        Index("ix_runs_definition_lifecycle_id", "definition", "lifecycle", "id"),
        Index("ix_runs_ref_id", "ref_id", "id"),
        Index("ix_runs_ref_type_id", "ref_type", "id"),
        Index("ix_runs_replay_of_id", "replay_of", "id"),
    )

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    definition: str = Field(sa_column=Column(String(100), nullable=False))
    definition_version: int
    # The structural hash of the chart version the run is on (signoff.engine.model.structure).
    definition_hash: str | None = Field(default=None, sa_column=Column(String(64)))
    version: int
    # Compared byte by byte on both databases ("C" on PostgreSQL, SQLite's BINARY), so a
    # prefix is an index range (signoff.engine.storage.queries.prefix_range).
    ref_id: str | None = Field(default=None, sa_column=Column(REF_ID))
    ref_type: str | None = Field(default=None, sa_column=Column(String(100)))
    input: dict[str, Any] = _json()
    state: str = Field(sa_column=Column(String(100), nullable=False))
    configuration: list[str] = _json()
    business_history: dict[str, list[str]] = _json()
    lifecycle: str = Field(sa_column=Column(String(32), nullable=False))
    lifecycle_configuration: list[str] = _json()
    lifecycle_history: dict[str, list[str]] = _json()
    context: dict[str, Any] = _json()
    created_by: str = Field(sa_column=Column(String(200), nullable=False))
    created_at: datetime = _time()
    updated_at: datetime = _time()
    # The run's open tasks (signoff.engine.tasks): who may decide each wait state, who claimed
    # it, who already decided in its round. The inbox table indexes them.
    tasks: list[dict[str, Any]] = Field(
        default_factory=list,
        sa_column=Column(JSONValue, nullable=False, server_default="[]"),
    )
    # The run this one replays (POST /api/runs/{id}/replay), if any.
    replay_of: str | None = Field(default=None, sa_column=Column(String(36)))
    # When the run entered each state it is in now (RFC 3339), for time in state
    # (signoff.engine.stats).
    entered: dict[str, str] = Field(
        default_factory=dict,
        sa_column=Column(JSONValue, nullable=False, server_default="{}"),
    )


class History(SQLModel, table=True):
    __tablename__ = "history"
    __table_args__ = (
        Index("ix_history_run_seq", "run_id", "seq"),
        # One entry per version: a doubled transition cannot be stored, whatever the code does.
        UniqueConstraint("run_id", "version", name="uq_history_run_version"),
    )

    seq: int | None = Field(default=None, sa_column=Column(SeqType, primary_key=True))
    run_id: str = Field(sa_column=Column(String(36), nullable=False))
    version: int
    at: datetime = _time()
    actor: str = Field(sa_column=Column(String(200), nullable=False))
    event: str = Field(sa_column=Column(String(100), nullable=False))
    data: dict[str, Any] = _json()
    reason: str | None = Field(default=None, sa_column=Column(Text))
    business_from: list[str] = _json()
    business_to: list[str] = _json()
    lifecycle_from: list[str] = _json()
    lifecycle_to: list[str] = _json()
    run: dict[str, Any] = _json()
    # Written by entries stored before migration 0011 only (their stats counters, folded long
    # since, never read again); newer entries keep them in `pending_counts` until folded.
    counts: list[Any] | None = _json(nullable=True, default=None)
    # The audit chain: sha256 over the previous entry's hash, this seq and this entry's
    # content (signoff.engine.audit.chain); None for entries older than the chain.
    hash: str | None = Field(default=None, sa_column=Column(String(64)))


class AuditChain(SQLModel, table=True):
    """Where the audit chain began (one row): entries up to `started_seq` were stored before
    it (migration 0007) and carry no hash."""

    __tablename__ = "audit_chain"

    id: int = Field(sa_column=Column(Integer, primary_key=True))
    started_seq: int = Field(sa_column=Column(SeqType, nullable=False))
    started_at: datetime = _time()


class AuditPurged(SQLModel, table=True):
    """Where a purged range of history ends (`signoff purge`): the kept entry `seq` links to
    `last_hash`, the hash of the purged entry `last_seq` right before it; `after_seq` is the
    kept entry before the range (None: the range starts at the first entry)."""

    __tablename__ = "audit_purged"

    seq: int = Field(sa_column=Column(SeqType, primary_key=True, autoincrement=False))
    after_seq: int | None = Field(default=None, sa_column=Column(SeqType))
    last_seq: int = Field(sa_column=Column(SeqType, nullable=False))
    last_hash: str | None = Field(default=None, sa_column=Column(String(64)))
    purged_at: datetime = _time()


class PendingCounts(SQLModel, table=True):
    """The counters one history entry adds, [definition, kind, key, day, bucket, n] each (the
    stats, signoff.engine.stats.counts, and the run census, signoff.engine.stats.census),
    written with the entry and deleted by the fold that adds them into `stat_counts` and
    `run_counts` (signoff.engine.storage.stats_rollup): the table holds only what is not
    folded yet, so history keeps nothing the audit and the feed do not need."""

    __tablename__ = "pending_counts"

    seq: int = Field(sa_column=Column(SeqType, primary_key=True, autoincrement=False))
    counts: list[Any] = _json()


class StatCount(SQLModel, table=True):
    """Incremental aggregates for stats: a counter per (definition, kind, key, day, bucket),
    folded from `pending_counts` (signoff.engine.storage.stats_rollup)."""

    __tablename__ = "stat_counts"
    # A period's rows of one definition, with every column the stats read (migration 0008).
    __table_args__ = (
        Index("ix_stat_counts_period", "definition", "day", "kind", "key", "bucket", "n"),
    )

    definition: str = Field(sa_column=Column(String(100), primary_key=True))
    kind: str = Field(sa_column=Column(String(16), primary_key=True))
    key: str = Field(sa_column=Column(String(200), primary_key=True))
    day: str = Field(sa_column=Column(String(10), primary_key=True))  # YYYY-MM-DD, or ""
    bucket: int = Field(sa_column=Column(Integer, primary_key=True))  # -1: no duration
    n: int = Field(sa_column=Column(BigInteger, nullable=False))


class RunCount(SQLModel, table=True):
    """Runs per (definition, state, lifecycle), for /metrics: folded from `pending_counts`
    with the stats (signoff.engine.storage.census), started from the runs there
    were by migration 0010."""

    __tablename__ = "run_counts"

    definition: str = Field(sa_column=Column(String(100), primary_key=True))
    state: str = Field(sa_column=Column(String(100), primary_key=True))
    lifecycle: str = Field(sa_column=Column(String(32), primary_key=True))
    n: int = Field(sa_column=Column(BigInteger, nullable=False))


class StatsRollup(SQLModel, table=True):
    """The fold's row (one): locked by each fold, so folds take turns; `seq` is the last
    entry whose counters it added."""

    __tablename__ = "stats_rollup"

    id: int = Field(sa_column=Column(Integer, primary_key=True))
    seq: int = Field(sa_column=Column(SeqType, nullable=False))


class ExternalEvent(SQLModel, table=True):
    """An event posted to POST /api/events, by its id: a repeat is answered from here."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_name_received", "name", "received_at"),)

    id: str = Field(sa_column=Column(String(200), primary_key=True))
    name: str = Field(sa_column=Column(String(100), nullable=False))
    ref_type: str | None = Field(default=None, sa_column=Column(String(100)))
    ref_id: str | None = Field(default=None, sa_column=Column(String(200)))
    data: dict[str, Any] = _json()
    actor: str = Field(sa_column=Column(String(200), nullable=False))
    # What became of it: runs started, runs it was delivered to (with their outcomes).
    started: list[Any] = _json()
    delivered: list[Any] = _json()
    unwanted: bool = False
    received_at: datetime = _time()


class Job(SQLModel, table=True):
    __tablename__ = "jobs"
    __table_args__ = (
        # The worker's claim (ready, by due time) and /metrics' due gauges (the ready jobs
        # already due, by kind: a range of it, read from the index alone).
        Index("ix_jobs_status_due_kind", "status", "due_at", "kind"),
        Index("ix_jobs_run_status", "run_id", "status"),
        Index("ix_jobs_subscription", "subscription_id", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(SeqType, primary_key=True))
    run_id: str = Field(sa_column=Column(String(36), nullable=False))
    kind: str = Field(sa_column=Column(String(100), nullable=False))
    state: str = Field(sa_column=Column(String(100), nullable=False))
    payload: dict[str, Any] = _json()
    status: str = Field(sa_column=Column(String(16), nullable=False))
    attempts: int = 0
    max_attempts: int = 5
    due_at: datetime = _time()
    lease_owner: str | None = Field(default=None, sa_column=Column(String(100)))
    lease_until: datetime | None = _time(nullable=True)
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    outcome: dict[str, Any] | None = _json(nullable=True)
    # When its current (or last) attempt was claimed, and each failed attempt before it:
    # {attempt, started_at, ended_at, error} (GET /api/runs/{id}/jobs).
    claimed_at: datetime | None = _time(nullable=True)
    attempt_log: list[dict[str, Any]] = Field(
        default_factory=list,
        sa_column=Column(JSONValue, nullable=False, server_default="[]"),
    )
    created_for_version: int
    created_at: datetime = _time()
    updated_at: datetime = _time()
    # A webhook delivery's subscription (kind `webhook`): its delivery log is a range of this.
    subscription_id: str | None = Field(default=None, sa_column=Column(String(36)))


class JobCount(SQLModel, table=True):
    """Jobs per (kind, status), for /metrics' queue gauges: folded from `job_moves`
    (signoff.engine.storage.job_counts), started from the jobs there were by migration 0012."""

    __tablename__ = "job_counts"

    kind: str = Field(sa_column=Column(String(100), primary_key=True))
    status: str = Field(sa_column=Column(String(16), primary_key=True))
    n: int = Field(sa_column=Column(BigInteger, nullable=False))


class JobMove(SQLModel, table=True):
    """A job that came to, left or changed status, appended by triggers on `jobs` (migration
    0012) in the writer's own transaction: `from_status` None for a new job, `to_status` None
    for a deleted one. Folded into `job_counts` off the write path."""

    __tablename__ = "job_moves"

    id: int | None = Field(default=None, sa_column=Column(SeqType, primary_key=True))
    kind: str = Field(sa_column=Column(String(100), nullable=False))
    from_status: str | None = Field(default=None, sa_column=Column(String(16)))
    to_status: str | None = Field(default=None, sa_column=Column(String(16)))


class InboxEntry(SQLModel, table=True):
    """The inbox index: one row per open task and audience member, kept in the transition's
    transaction from `runs.tasks`, so `GET /api/tasks` is an indexed range, never a scan.

    `who` is `user:<actor>`, `group:<group>`, `*` (any approver) or `#all` (every task, for
    callers not limited to groups); a claimed task has only its assignee (and `#all`).
    """

    __tablename__ = "inbox"
    __table_args__ = (
        Index("ix_inbox_who_due_opened", "who", "due_sort", "opened_at", "run_id"),
        Index("ix_inbox_who_opened", "who", "opened_at", "run_id"),
        Index("ix_inbox_run", "run_id"),
    )

    id: int | None = Field(default=None, sa_column=Column(SeqType, primary_key=True))
    who: str = Field(sa_column=Column(String(210), nullable=False))
    run_id: str = Field(sa_column=Column(String(36), nullable=False))
    slot: str = Field(sa_column=Column(String(100), nullable=False))
    state: str = Field(sa_column=Column(String(100), nullable=False))
    definition: str = Field(sa_column=Column(String(100), nullable=False))
    ref_type: str | None = Field(default=None, sa_column=Column(String(100)))
    ref_id: str | None = Field(default=None, sa_column=Column(String(200)))
    created_by: str = Field(sa_column=Column(String(200), nullable=False))
    assignee: str | None = Field(default=None, sa_column=Column(String(200)))
    voters: list[str] = _json()
    # The task reaches several names (a person might hold two of them): the inbox then
    # keeps one row per task, the first name's.
    shared: bool = False
    due_at: datetime | None = _time(nullable=True)
    due_sort: datetime = _time()  # due_at, or far in the future: sorts last, indexable
    opened_at: datetime = _time()


class Webhook(SQLModel, table=True):
    """A webhook subscription: where to send which notifications, and the key to sign them."""

    __tablename__ = "webhooks"

    id: str = Field(sa_column=Column(String(36), primary_key=True))
    url: str = Field(sa_column=Column(Text, nullable=False))
    secret: str = Field(sa_column=Column(String(200), nullable=False))
    definitions: list[str] = _json()  # empty: every definition
    events: list[str] = _json()  # empty: every notification type
    active: bool = True
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    max_attempts: int = 8
    created_by: str = Field(sa_column=Column(String(200), nullable=False))
    created_at: datetime = _time()
    updated_at: datetime = _time()


class Idempotency(SQLModel, table=True):
    __tablename__ = "idempotency"

    key: str = Field(sa_column=Column(String(255), primary_key=True))
    actor: str = Field(sa_column=Column(String(200), primary_key=True))
    route: str = Field(sa_column=Column(String(300), primary_key=True))
    request_hash: str = Field(sa_column=Column(String(64), nullable=False))
    created: bool  # the first use created a run
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _time()


class StoredDefinition(SQLModel, table=True):
    """A chart document deployed at run time: append-only versions, retired, never changed."""

    __tablename__ = "definitions"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_definitions_name_version"),)

    id: int | None = Field(default=None, sa_column=Column(SeqType, primary_key=True))
    name: str = Field(sa_column=Column(String(100), nullable=False))
    version: int
    format: str = Field(sa_column=Column(String(16), nullable=False))
    document: str = Field(sa_column=Column(Text, nullable=False))
    hash: str = Field(sa_column=Column(String(64), nullable=False))
    created_by: str = Field(sa_column=Column(String(200), nullable=False))
    created_at: datetime = _time()
    retired_at: datetime | None = _time(nullable=True)


RUNS = Run.__table__  # type: ignore[attr-defined]
HISTORY = History.__table__  # type: ignore[attr-defined]
JOBS = Job.__table__  # type: ignore[attr-defined]
JOB_COUNTS = JobCount.__table__  # type: ignore[attr-defined]
JOB_MOVES = JobMove.__table__  # type: ignore[attr-defined]
IDEMPOTENCY = Idempotency.__table__  # type: ignore[attr-defined]
DEFINITIONS = StoredDefinition.__table__  # type: ignore[attr-defined]
INBOX = InboxEntry.__table__  # type: ignore[attr-defined]
WEBHOOKS = Webhook.__table__  # type: ignore[attr-defined]
AUDIT_CHAIN = AuditChain.__table__  # type: ignore[attr-defined]
AUDIT_PURGED = AuditPurged.__table__  # type: ignore[attr-defined]
STAT_COUNTS = StatCount.__table__  # type: ignore[attr-defined]
RUN_COUNTS = RunCount.__table__  # type: ignore[attr-defined]
PENDING_COUNTS = PendingCounts.__table__  # type: ignore[attr-defined]
STATS_ROLLUP = StatsRollup.__table__  # type: ignore[attr-defined]
EVENTS = ExternalEvent.__table__  # type: ignore[attr-defined]
