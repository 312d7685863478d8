"""Signoff: a statechart-driven approval engine.

What a user of the library needs is here, listed in `__all__`:

- to declare a workflow: `Definition` (a chart and what its states mean), `StateKind`,
  `WaitTask` (who may take a wait state's task, when it is due, reminders, escalation),
  `Trigger` and `Receive` (external events that start runs or reach waiting ones), `Delay`
  (a state that sends itself an event after a while),
  `RunModel` (the model a chart records its intents on), `Pack` (definitions and their job
  handlers, as `--app` and the entry-point group `signoff.definitions` take them), `Registry`;
- to hold its effects: `JobKind`, `JobContext`, `JobOutcome`, `TransientJobError`,
  `PermanentJobError`, `RetryPolicy`, `Backoff`;
- to run it: `Settings`, `Runtime`, `create_app` (the HTTP API and monitor), `Role`,
  `OtelTracer` (a runtime's spans from an OpenTelemetry tracer provider of yours);
- to talk to a server: `SignoffClient`, `ApiError`, and the views it returns (a definition's
  stats: `Stats`, with `StateStats`, `ApproverStats` and `DayStats`);
- to check an audit export offline: `read_audit_export`, `AuditChecker` (pages in order) or
  `verify_audit`, `AuditVerdict`, and the export's `AuditChainLine` and `AuditEndLine`;
- the error tree, rooted at `EngineError` (each docstring is the default message).

Everything else (`signoff.engine.*` below its face, `signoff.api.*` but `create_app`) is internal
and may change without notice.
"""

from typing import TYPE_CHECKING, Any

from signoff.engine import (
    ApproverStats,
    Backoff,
    BulkPreview,
    BulkRunResult,
    BulkStarted,
    BulkSummary,
    DayStats,
    Definition,
    Delay,
    EventRecord,
    HistoryEntry,
    JobContext,
    JobKind,
    JobOutcome,
    Pack,
    PermanentJobError,
    Receive,
    Registry,
    RetryPolicy,
    Role,
    RunDetail,
    RunModel,
    Runtime,
    RunView,
    Settings,
    StateKind,
    StateStats,
    Stats,
    TaskView,
    TransientJobError,
    Trigger,
    WaitTask,
)
from signoff.engine.audit import ChainLine as AuditChainLine
from signoff.engine.audit import Checker as AuditChecker
from signoff.engine.audit import EndLine as AuditEndLine
from signoff.engine.audit import Verdict as AuditVerdict
from signoff.engine.audit import read as read_audit_export
from signoff.engine.audit import verify as verify_audit
from signoff.engine.errors import (
    AppLoadError,
    ConflictError,
    DefinitionInUseError,
    DefinitionNotFoundError,
    DefinitionNotLoadedError,
    DefinitionRetiredError,
    DeliveryNotFoundError,
    DeliveryPendingError,
    DocumentRejectedError,
    DuplicateApprovalError,
    EngineError,
    EventNotAllowedError,
    ForbiddenError,
    IdempotencyMismatchError,
    InternalEventError,
    InvalidCursorError,
    InvalidEventDataError,
    InvalidInputError,
    InvalidLinkError,
    InvalidPeriodError,
    InvalidRequestError,
    InvalidWebhookError,
    LeaseLostError,
    LinkExpiredError,
    MigrationTargetError,
    NotFoundError,
    PreconditionFailedError,
    RegionForbiddenError,
    RemovedStateError,
    ReplayVersionError,
    RunCancelledError,
    RunNotFoundError,
    RunPausedError,
    SeparationOfDutiesError,
    SnapshotError,
    StaleVersionError,
    StateForbiddenError,
    StorageUnavailableError,
    TaskClaimedError,
    TaskForbiddenError,
    TaskNotClaimedError,
    TaskNotOpenError,
    UnknownEventError,
    WebhookNotFoundError,
    WriteConflictError,
)

if TYPE_CHECKING:
    from signoff.api.app import create_app
    from signoff.client import ApiError, SignoffClient
    from signoff.engine.tracing.otel import OtelTracer

__version__ = "0.1.0"
# Imported on first use, so that code that only runs charts and the engine (a worker, a test,
# a script) does not load the web framework and the HTTP client with them.
_LAZY = {
    "create_app": "signoff.api.app",
    "ApiError": "signoff.client",
    "SignoffClient": "signoff.client",
    "OtelTracer": "signoff.engine.tracing.otel",  # needs the otel extra
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'signoff' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "ApiError",
    "AppLoadError",
    "ApproverStats",
    "AuditChainLine",
    "AuditChecker",
    "AuditEndLine",
    "AuditVerdict",
    "Backoff",
    "BulkPreview",
    "BulkRunResult",
    "BulkStarted",
    "BulkSummary",
    "ConflictError",
    "DayStats",
    "Definition",
    "DefinitionInUseError",
    "DefinitionNotFoundError",
    "DefinitionNotLoadedError",
    "DefinitionRetiredError",
    "Delay",
    "DeliveryNotFoundError",
    "DeliveryPendingError",
    "DocumentRejectedError",
    "DuplicateApprovalError",
    "EngineError",
    "EventNotAllowedError",
    "EventRecord",
    "ForbiddenError",
    "HistoryEntry",
    "IdempotencyMismatchError",
    "InternalEventError",
    "InvalidCursorError",
    "InvalidEventDataError",
    "InvalidInputError",
    "InvalidLinkError",
    "InvalidPeriodError",
    "InvalidRequestError",
    "InvalidWebhookError",
    "JobContext",
    "JobKind",
    "JobOutcome",
    "LeaseLostError",
    "LinkExpiredError",
    "MigrationTargetError",
    "NotFoundError",
    "OtelTracer",
    "Pack",
    "PermanentJobError",
    "PreconditionFailedError",
    "Receive",
    "RegionForbiddenError",
    "Registry",
    "RemovedStateError",
    "ReplayVersionError",
    "RetryPolicy",
    "Role",
    "RunCancelledError",
    "RunDetail",
    "RunModel",
    "RunNotFoundError",
    "RunPausedError",
    "RunView",
    "Runtime",
    "SeparationOfDutiesError",
    "Settings",
    "SignoffClient",
    "SnapshotError",
    "StaleVersionError",
    "StateForbiddenError",
    "StateKind",
    "StateStats",
    "Stats",
    "StorageUnavailableError",
    "TaskClaimedError",
    "TaskForbiddenError",
    "TaskNotClaimedError",
    "TaskNotOpenError",
    "TaskView",
    "TransientJobError",
    "Trigger",
    "UnknownEventError",
    "WaitTask",
    "WebhookNotFoundError",
    "WriteConflictError",
    "create_app",
    "read_audit_export",
    "verify_audit",
]
