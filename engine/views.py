"""What leaves the engine: the run view and history entries, as frozen msgspec Structs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import msgspec


class TaskView(msgspec.Struct, kw_only=True):
    """An open task of a run (signoff.engine.tasks): a wait state (or approval region) and who
    may decide it now. `candidates` may claim and decide it (`user:<actor>`, `group:<group>`,
    `*`: any approver); once claimed only `assignee` (or an admin) decides, on behalf of
    `acting_for` if it was delegated. `voters` already decided in it this round."""

    slot: str
    state: str
    candidates: list[str]
    opened_at: datetime
    due_at: datetime | None = None
    assignee: str | None = None
    acting_for: str | None = None
    voters: list[str] = []
    escalated: bool = False


class RunView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    definition: str
    definition_version: int
    version: int
    ref_id: str | None
    ref_type: str | None
    input: dict[str, Any]
    state: str
    configuration: list[str]
    lifecycle: str
    context: dict[str, Any]
    allowed_events: list[str]
    created_at: datetime
    updated_at: datetime
    # False when the server answering has not loaded the run's definition (version): the run
    # is shown as stored, and it refuses events (409 definition-not-loaded).
    definition_loaded: bool = True
    tasks: list[TaskView] = []
    # The run this one replays (POST /api/runs/{id}/replay), if it is a replay.
    replay_of: str | None = None


class RunDetail(RunView, frozen=True, kw_only=True):
    """The run view as `GET /api/runs/{id}` answers it: also the runs that replay it, newest
    first (looked up on that read only, never written with each transition)."""

    replays: list[str] = []


class Change(msgspec.Struct, frozen=True, kw_only=True, rename={"from_": "from"}):
    from_: list[str]
    to: list[str]


class _Transition(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    run_id: str
    at: datetime
    actor: str
    event: str
    data: dict[str, Any]
    reason: str | None
    business: Change
    lifecycle: Change


class HistoryEntry(_Transition, frozen=True, kw_only=True):
    run: RunView


class EntryJson(_Transition, frozen=True, kw_only=True):
    """A HistoryEntry as written once per transition: the same JSON, but `run` is the run
    view's bytes as encoded for the response, embedded without a second encoding."""

    run: msgspec.Raw


class RunPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[RunView]
    next_cursor: str | None


class HistoryPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[HistoryEntry]


class Attempt(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt at a job: `result` is running, failed or succeeded."""

    number: int
    started_at: datetime
    ended_at: datetime | None
    result: str
    error: str | None = None


class JobView(msgspec.Struct, frozen=True, kw_only=True):
    """A job (or timer) a run's state asked for, and each of its attempts so far."""

    id: int
    kind: str
    state: str
    status: str  # ready, running, done, cancelled, dropped, or dead (a webhook delivery)
    attempts: int
    max_attempts: int
    due_at: datetime
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    attempt_log: list[Attempt]


class JobPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[JobView]


def run_view(row: Mapping[str, Any], allowed: list[str], *, loaded: bool = True) -> RunView:
    """The run view of a `runs` row's column values."""
    return RunView(
        id=row["id"],
        definition=row["definition"],
        definition_version=row["definition_version"],
        version=row["version"],
        ref_id=row["ref_id"],
        ref_type=row["ref_type"],
        input=row["input"],
        state=row["state"],
        configuration=list(row["configuration"]),
        lifecycle=row["lifecycle"],
        context=row["context"],
        allowed_events=allowed,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        definition_loaded=loaded,
        tasks=msgspec.convert(row.get("tasks") or [], list[TaskView]),
        replay_of=row.get("replay_of"),
    )


def history_entry(row: Any, run: RunView) -> HistoryEntry:
    """A history row's entry, with the run view as it was after it (`run`, see
    signoff.engine.storage.stored_view)."""
    return HistoryEntry(
        seq=row.seq,
        run_id=row.run_id,
        at=row.at,
        actor=row.actor,
        event=row.event,
        data=row.data,
        reason=row.reason,
        business=Change(from_=row.business_from, to=row.business_to),
        lifecycle=Change(from_=row.lifecycle_from, to=row.lifecycle_to),
        run=run,
    )


def job_view(row: Any) -> JobView:
    """A `jobs` row with its attempts: the failed ones it logged, then the one running, or
    the last one if it succeeded."""
    log = [
        Attempt(
            number=a["attempt"],
            started_at=datetime.fromisoformat(a["started_at"]),
            ended_at=datetime.fromisoformat(a["ended_at"]),
            result="failed",
            error=a["error"],
        )
        for a in row.attempt_log
    ]
    logged = {a.number for a in log}
    if row.claimed_at is not None and row.attempts not in logged and row.attempts > 0:
        if row.status == "running":
            log.append(
                Attempt(
                    number=row.attempts, started_at=row.claimed_at, ended_at=None, result="running"
                )
            )
        elif row.status == "done":
            log.append(
                Attempt(
                    number=row.attempts,
                    started_at=row.claimed_at,
                    ended_at=row.updated_at,
                    result="succeeded",
                )
            )
    return JobView(
        id=row.id,
        kind=row.kind,
        state=row.state,
        status=row.status,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        due_at=row.due_at,
        last_error=row.last_error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        attempt_log=log,
    )


class PlannedJob(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    state: str
    due_at: datetime


class DryRun(msgspec.Struct, frozen=True, kw_only=True):
    """What an event would do: the run after it, the jobs and timers it would arm, the
    notifications it would send. Nothing was committed."""

    dry_run: bool
    run: RunView
    jobs: list[PlannedJob]
    notifications: list[str]


class BulkResult(msgspec.Struct, frozen=True, kw_only=True):
    """What became of one run: the status it would have had alone, and its new version or
    the problem that refused it (the run then unchanged)."""

    run_id: str
    status: int
    version: int | None = None
    problem: dict[str, Any] | None = None


class BulkOutcome(msgspec.Struct, frozen=True, kw_only=True):
    decided: int
    refused: int
    results: list[BulkResult]
