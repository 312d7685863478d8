"""The engine's face: what the HTTP API, the command line and the charts use of the runtime.

Inside, the engine is layered, and imports only run downwards:

    model     the vocabulary charts and the runtime share (Definition, Registry, roles, the
              lifecycle's names, what job handlers see and return)
    charts    restoring a chart from a snapshot, pooled instances, describing, walking, drawing
    tasks     a run's open tasks (who may decide each wait state now), planned per transition,
              the inbox index rows, and the notifications a transition sends
    storage   the store (one base, a SQLite and a PostgreSQL dialect), schema, migrations, reads
    dispatch  one event = one transaction: the dispatcher, who may decide, task actions, dry
              runs and "why can't I?", version migrations
    feed      the live feed: one broadcaster per process, a bounded mailbox per client
    jobs      the worker
    webhooks  subscriptions, signed deliveries (jobs of kind `webhook`) and their log
    documents chart documents (YAML, JSON, SCXML) deployed at run time: read, checked, built,
              stored as versions, loaded into every process's registry
    runtime   wires them together for one process

Anything not re-exported here is internal to the engine.
"""

from signoff.engine import errors, webhooks
from signoff.engine.charts import drawing
from signoff.engine.charts import paths as generated_paths
from signoff.engine.charts.describe import ChartInfo, describe, describe_lifecycle
from signoff.engine.charts.snapshots import event_names
from signoff.engine.dispatch.bulk import (
    Bulk,
    BulkAction,
    BulkCaller,
    BulkFilter,
    BulkLine,
    BulkOrder,
    BulkPreview,
    BulkRunResult,
    BulkStarted,
    BulkSummary,
)
from signoff.engine.dispatch.dispatcher import Dispatcher, utcnow
from signoff.engine.dispatch.events import ExternalEvent, send_event
from signoff.engine.dispatch.outcome import Committed, Outcome
from signoff.engine.dispatch.permissions import Permission, Permissions, Reason, permissions
from signoff.engine.dispatch.replay import replay
from signoff.engine.dispatch.task_actions import Target
from signoff.engine.dispatch.versions import MigrationReport, migrate_runs
from signoff.engine.documents.compile import compile_document
from signoff.engine.errors import (
    DefinitionNotFoundError,
    DocumentRejectedError,
    EngineError,
    InvalidRequestError,
    StorageUnavailableError,
)
from signoff.engine.feed.broadcaster import Feed
from signoff.engine.feed.subscription import FeedFilter
from signoff.engine.jobs.worker import Worker
from signoff.engine.model.definition import Definition, Migration, StateKind
from signoff.engine.model.delays import Delay
from signoff.engine.model.jobs import (
    JobContext,
    JobHandler,
    JobKind,
    JobOutcome,
    PermanentJobError,
    TransientJobError,
)
from signoff.engine.model.lifecycle import CONTROL_EVENTS, LifecycleEvent, LifecycleState
from signoff.engine.model.pack import Pack
from signoff.engine.model.registry import Registry
from signoff.engine.model.retry import Backoff, RetryPolicy
from signoff.engine.model.roles import Role
from signoff.engine.model.run_model import RunModel
from signoff.engine.model.tasks import WaitTask
from signoff.engine.model.triggers import Receive, Trigger
from signoff.engine.observer import Observer
from signoff.engine.runtime import Runtime
from signoff.engine.settings import Settings
from signoff.engine.stats.period import Period
from signoff.engine.stats.report import ApproverStats, DayStats, StateStats, Stats
from signoff.engine.storage.events import Delivered, EventRecord, Started
from signoff.engine.storage.inbox import Inbox, TaskCounts, TaskFilter, TaskItem, TaskPage
from signoff.engine.storage.inbox import page as tasks_page
from signoff.engine.storage.migrate import upgrade
from signoff.engine.storage.queries import Census, RunFilter, RunQueries
from signoff.engine.storage.records import IdempotencyKey
from signoff.engine.storage.stats import read_stats
from signoff.engine.storage.store import Store
from signoff.engine.storage.urls import DatabaseUrlError, check_reachable
from signoff.engine.views import (
    BulkOutcome,
    BulkResult,
    DryRun,
    HistoryEntry,
    HistoryPage,
    JobPage,
    JobView,
    PlannedJob,
    RunDetail,
    RunPage,
    RunView,
    TaskView,
)

__all__ = [
    "CONTROL_EVENTS",
    "ApproverStats",
    "Backoff",
    "Bulk",
    "BulkAction",
    "BulkCaller",
    "BulkFilter",
    "BulkLine",
    "BulkOrder",
    "BulkOutcome",
    "BulkPreview",
    "BulkResult",
    "BulkRunResult",
    "BulkStarted",
    "BulkSummary",
    "Census",
    "ChartInfo",
    "Committed",
    "DatabaseUrlError",
    "DayStats",
    "Definition",
    "DefinitionNotFoundError",
    "Delay",
    "Delivered",
    "Dispatcher",
    "DocumentRejectedError",
    "DryRun",
    "EngineError",
    "EventRecord",
    "ExternalEvent",
    "Feed",
    "FeedFilter",
    "HistoryEntry",
    "HistoryPage",
    "IdempotencyKey",
    "Inbox",
    "InvalidRequestError",
    "JobContext",
    "JobHandler",
    "JobKind",
    "JobOutcome",
    "JobPage",
    "JobView",
    "LifecycleEvent",
    "LifecycleState",
    "Migration",
    "MigrationReport",
    "Observer",
    "Outcome",
    "Pack",
    "Period",
    "PermanentJobError",
    "Permission",
    "Permissions",
    "PlannedJob",
    "Reason",
    "Receive",
    "Registry",
    "RetryPolicy",
    "Role",
    "RunDetail",
    "RunFilter",
    "RunModel",
    "RunPage",
    "RunQueries",
    "RunView",
    "Runtime",
    "Settings",
    "Started",
    "StateKind",
    "StateStats",
    "Stats",
    "StorageUnavailableError",
    "Store",
    "Target",
    "TaskCounts",
    "TaskFilter",
    "TaskItem",
    "TaskPage",
    "TaskView",
    "TransientJobError",
    "Trigger",
    "WaitTask",
    "Worker",
    "check_reachable",
    "compile_document",
    "describe",
    "describe_lifecycle",
    "drawing",
    "errors",
    "event_names",
    "generated_paths",
    "migrate_runs",
    "permissions",
    "read_stats",
    "replay",
    "send_event",
    "tasks_page",
    "upgrade",
    "utcnow",
    "webhooks",
]
