"""The engine's one error tree; each docstring is the default message.

EngineError
├── NotFoundError
│   ├── RunNotFoundError
│   ├── DefinitionNotFoundError
│   ├── WebhookNotFoundError
│   └── DeliveryNotFoundError
├── InvalidRequestError
│   ├── InvalidCursorError
│   ├── UnknownEventError
│   ├── InternalEventError
│   ├── InvalidEventDataError
│   ├── InvalidInputError
│   ├── MigrationTargetError
│   ├── IdempotencyMismatchError
│   ├── DocumentRejectedError
│   ├── InvalidWebhookError
│   └── InvalidPeriodError
├── ConflictError
│   ├── EventNotAllowedError
│   ├── RunPausedError
│   ├── RunCancelledError
│   ├── StaleVersionError
│   │   └── PreconditionFailedError
│   ├── WriteConflictError
│   ├── RemovedStateError
│   ├── DuplicateApprovalError
│   ├── DefinitionNotLoadedError
│   ├── DefinitionRetiredError
│   ├── DefinitionInUseError
│   ├── ReplayVersionError
│   ├── DeliveryPendingError
│   ├── TaskNotOpenError
│   ├── TaskClaimedError
│   ├── TaskNotClaimedError
│   └── LinkExpiredError
├── ForbiddenError
│   ├── SeparationOfDutiesError
│   ├── RegionForbiddenError
│   ├── StateForbiddenError
│   ├── TaskForbiddenError
│   └── InvalidLinkError
├── LeaseLostError
├── SnapshotError
├── StorageUnavailableError
└── AppLoadError (also a ValueError: a configuration mistake, met at startup)
"""

from __future__ import annotations

from collections.abc import Sequence


class EngineError(Exception):
    """Signoff engine error."""

    def __init__(self, message: str | None = None) -> None:
        # A docstring that runs over lines is one sentence to a client: fold its white space.
        super().__init__(message or " ".join((self.__doc__ or "").split()))

    @property
    def message(self) -> str:
        return str(self.args[0])


class NotFoundError(EngineError):
    """Not found."""


class RunNotFoundError(NotFoundError):
    """No run has this id."""

    def __init__(self, run_id: str) -> None:
        shown = run_id if len(run_id) <= 64 else run_id[:64] + "…"
        super().__init__(f"No run has id {shown!r}.")
        self.run_id = run_id


class DefinitionNotFoundError(NotFoundError):
    """No definition has this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"No definition is registered as {name!r}.")
        self.name = name


class InvalidRequestError(EngineError):
    """The request is not valid."""


class InvalidCursorError(InvalidRequestError):
    """The cursor is not one this server handed out."""


class UnknownEventError(InvalidRequestError):
    """The definition has no event of this name."""

    def __init__(self, event: str, known: Sequence[str]) -> None:
        super().__init__(f"Unknown event {event!r}; known events: {', '.join(known)}.")
        self.event = event


class InternalEventError(InvalidRequestError):
    """This event is sent by workers and timers only."""

    def __init__(self, event: str) -> None:
        super().__init__(f"Event {event!r} is internal: only workers and timers send it.")
        self.event = event


class InvalidEventDataError(InvalidRequestError):
    """The event's data or reason is not valid."""


class MigrationTargetError(InvalidRequestError):
    """A run can only move to a newer registered version of its definition."""


class InvalidInputError(InvalidRequestError):
    """The run's input is not valid for this definition."""


class IdempotencyMismatchError(InvalidRequestError):
    """This Idempotency-Key was already used for a different request."""


class InvalidPeriodError(InvalidRequestError):
    """The stats period is not valid: since and until are RFC 3339 dates or date-times (UTC
    days are counted), since not after until, at most 3660 days apart."""


class ConflictError(EngineError):
    """The run's current state refuses this request."""


class EventNotAllowedError(ConflictError):
    """The event is not allowed in the run's current state."""

    def __init__(self, run_id: str, event: str, state: Sequence[str], allowed: Sequence[str]):
        super().__init__(
            f"Event {event!r} is not allowed now (run {run_id} is in {', '.join(state)})."
        )
        self.allowed_events = list(allowed)


class RunPausedError(ConflictError):
    """The run is paused: resume it before sending business events."""

    def __init__(self, allowed: Sequence[str]) -> None:
        super().__init__()
        self.allowed_events = list(allowed)


class RunCancelledError(ConflictError):
    """The run is cancelled and accepts no more events."""

    def __init__(self) -> None:
        super().__init__()
        self.allowed_events: list[str] = []


class StaleVersionError(ConflictError):
    """Another event changed this run first; reload and retry."""


class RemovedStateError(ConflictError):
    """The run is in a state the target version of its definition no longer has."""

    def __init__(self, run_id: str, name: str, version: int, states: Sequence[str]) -> None:
        self.states = list(states)
        super().__init__(
            f"Run {run_id} is in {', '.join(states)}, which {name} v{version} removed; it stays "
            f"on its version (give v{version} a migrate function that maps these states)."
        )


class DuplicateApprovalError(ConflictError):
    """This approver already counted in this review round; the same person cannot count twice."""

    def __init__(self, actor: str) -> None:
        super().__init__(
            f"{actor} already approved in this review round; the same approver counts once."
        )
        self.actor = actor


class WriteConflictError(ConflictError):
    """A concurrent request wrote the same record first; retry."""


class PreconditionFailedError(StaleVersionError):
    """If-Match does not match the run's current version."""

    def __init__(self, expected: Sequence[int], actual: int) -> None:
        tags = ", ".join(f'"{v}"' for v in expected)
        super().__init__(f"If-Match names {tags}; the run is at version {actual}.")
        self.expected = list(expected)
        self.actual = actual


class ForbiddenError(EngineError):
    """This actor may not do this."""


class SeparationOfDutiesError(ForbiddenError):
    """The actor who created a run may not approve it (SIGNOFF_SEPARATION_OF_DUTIES)."""


class RegionForbiddenError(ForbiddenError):
    """Only approvers of a region's group decide in that region."""

    def __init__(self, actor: str, region: str, group: str) -> None:
        super().__init__(
            f"{actor} is not in the {group} group, so cannot decide in the {region} region."
        )


class DocumentRejectedError(InvalidRequestError):
    """The chart document was refused; nothing was stored."""

    def __init__(self, reasons: Sequence[str]) -> None:
        first = reasons[0] if reasons else "it is not a valid chart document"
        more = (
            f" (and {len(reasons) - 1} more reason(s): see `reasons`)" if len(reasons) > 1 else ""
        )
        super().__init__(f"The document was refused: {first}{more}")
        self.reasons = list(reasons)


class DefinitionRetiredError(ConflictError):
    """Every version of this definition is retired: it starts no new runs."""


class DefinitionInUseError(ConflictError):
    """Runs use this definition version: it cannot be deleted."""


class ReplayVersionError(ConflictError):
    """The run's definition version starts no new runs here (it is retired, or this server has
    not loaded it): replay it on the newest version instead."""

    def __init__(self, run_id: str, definition: str, version: int, why: str) -> None:
        super().__init__(
            f"Run {run_id} is on {definition} v{version}, which {why}: it cannot be replayed "
            "on that version (replay it without same_version to use the newest)."
        )


class StateForbiddenError(ForbiddenError):
    """Only approvers of the group that decides in a wait state decide there."""

    def __init__(self, actor: str, state: str, group: str) -> None:
        super().__init__(f"{actor} is not in the {group} group, who decide in {state}.")


class DefinitionNotLoadedError(ConflictError):
    """The run's definition is not loaded by this server, so its events cannot be applied."""

    def __init__(self, run_id: str, definition: str, version: int) -> None:
        super().__init__(
            f"Run {run_id} is a run of {definition} v{version}, which this server has not "
            "loaded: start it with the app or pack that defines it (--app, SIGNOFF_APP, or "
            "an installed pack) to send events to this run."
        )


class LeaseLostError(EngineError):
    """This worker no longer holds the job's lease; its outcome is discarded."""


class SnapshotError(EngineError):
    """A stored snapshot does not match the registered chart."""


class StorageUnavailableError(EngineError):
    """The database cannot serve this request right now (disk full, read-only, unreachable or
    out of connections); nothing was written. Retry later."""

    retry_after_s = 5


class AppLoadError(EngineError, ValueError):
    """The app or an installed pack of definitions could not be loaded."""


class WebhookNotFoundError(NotFoundError):
    """No webhook subscription has this id."""


class DeliveryNotFoundError(NotFoundError):
    """This webhook subscription has no delivery with this id."""


class InvalidWebhookError(InvalidRequestError):
    """The webhook subscription is not valid; nothing was stored."""


class DeliveryPendingError(ConflictError):
    """The delivery is still being attempted: only a dead or done delivery is redelivered."""


class TaskNotOpenError(ConflictError):
    """The run has no open task there now (it moved on, or never waited there)."""

    def __init__(self, run_id: str, slot: str | None, open_: Sequence[str]) -> None:
        where = f" in {slot}" if slot else ""
        now = f"; open: {', '.join(open_)}" if open_ else "; it waits for nobody now"
        super().__init__(f"Run {run_id} has no open task{where}{now}.")


class TaskClaimedError(ConflictError):
    """Someone else has claimed this task: only they (or an admin) decide it."""

    def __init__(self, slot: str, assignee: str) -> None:
        super().__init__(
            f"The task in {slot} is claimed by {assignee}: only they (or an admin) decide it, "
            "until they release it or an operator reassigns it."
        )
        self.assignee = assignee


class TaskNotClaimedError(ConflictError):
    """Nobody has claimed this task."""


class TaskForbiddenError(ForbiddenError):
    """This actor may not take this task."""


class InvalidLinkError(ForbiddenError):
    """This approval link is not valid: it was altered, or not made by this server."""


class LinkExpiredError(ConflictError):
    """This approval link can no longer be used: it was used, it expired, or the run moved on."""
