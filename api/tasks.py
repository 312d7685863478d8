"""Human tasks: the caller's inbox, bulk decisions from it, and claiming, releasing,
reassigning and delegating a run's task."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from signoff.api.auth import Principal, Tokens, principal_of, requires
from signoff.api.errors import problem_of
from signoff.api.runs import (
    NO_NUL,
    RUN_RESPONSES,
    IdempotencyHeader,
    IfMatchHeader,
    idempotency_key,
    parse_if_match,
    respond,
)
from signoff.api.schemas import Actor, Name, Reason
from signoff.engine import (
    BulkOutcome,
    BulkResult,
    EngineError,
    Inbox,
    InvalidRequestError,
    Runtime,
    Target,
    TaskCounts,
    TaskFilter,
    TaskPage,
    tasks_page,
)

Query = Annotated[str | None, QueryParameter(max_length=200, pattern=NO_NUL)]
RFC3339 = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})?$"
TASK_EVENTS = {
    "claim": "task.claim",
    "release": "task.release",
    "reassign": "task.reassign",
    "delegate": "task.delegate",
}


class TaskAction(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which task (`slot`: its wait state or approval region; omit it when the run has one
    open task), and, to reassign or delegate it, to whom."""

    slot: Name | None = None
    to: Actor | None = None
    reason: Reason | None = None


class BulkItem(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A run to decide (and, on a definition with approval regions, the region)."""

    run_id: Annotated[str, msgspec.Meta(min_length=1, max_length=36, pattern=NO_NUL)]
    region: Name | None = None


class BulkDecision(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One decision for several runs, with one reason: each run in its own transaction."""

    event: Name
    runs: Annotated[list[BulkItem], msgspec.Meta(min_length=1, max_length=100)]
    reason: Reason | None = None
    data: dict[str, Any] | None = None


def target_of(request: Request[Any, Any, Any], actor: str) -> Target:
    """Whom a task goes to, as the server's tokens know them (an open server knows nobody, so
    it cannot check them)."""
    tokens: Tokens = request.app.state.tokens
    if tokens.open:
        return Target(actor, known=False)
    person = tokens.person(actor)
    if person is None:
        raise InvalidRequestError(f"No token names {actor!r}: a task goes to someone who can act.")
    return Target(actor, person.roles, person.groups)


def _instant(text: str | None) -> datetime | None:
    """An RFC 3339 time (UTC when it names no offset)."""
    if text is None:
        return None
    try:
        found = datetime.fromisoformat(text)
    except ValueError as exc:  # the pattern's shape, but no such day (2026-02-30)
        raise InvalidRequestError(f"due_before is not a time: {text!r}.") from exc
    return found if found.tzinfo is not None else found.replace(tzinfo=UTC)


def _inbox(principal: Principal, runtime: Runtime) -> Inbox:
    sod = runtime.dispatcher.separation_of_duties
    return Inbox(principal.actor, principal.decides_in, sod)


class TaskController(Controller):
    path = "/api"
    tags = ("tasks",)
    guards = (requires("viewer"),)

    @get("/tasks")
    async def inbox(
        self,
        request: Request[Any, Any, Any],
        runtime: NamedDependency[Runtime],
        definition: Query = None,
        ref_type: Query = None,
        ref_id: Query = None,
        due_before: Annotated[
            str | None,
            QueryParameter(pattern=RFC3339, description="tasks due before this time (RFC 3339)"),
        ] = None,
        sort: Annotated[
            Literal["due", "age"],
            QueryParameter(description="`due`: soonest due first; `age`: oldest first"),
        ] = "due",
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        offset: Annotated[int, QueryParameter(ge=0, le=100_000)] = 0,
    ) -> TaskPage:
        """What the caller may decide now: tasks offered to them (by name, by group, or to
        any approver) or claimed by them, without those they already decided in (and, under
        separation of duties, their own runs); with counts, exact up to the server's count
        limit (`SIGNOFF_TASK_COUNT_LIMIT`, 1,000) and `exact: false` beyond it. Admins see
        every open task."""
        principal = principal_of(request)
        if not principal.has("approver"):  # only approvers decide: nothing waits for them
            empty = TaskCounts(total=0, overdue=0, by_definition={})
            return TaskPage(items=[], counts=empty, limit=limit, offset=offset)
        where = TaskFilter(definition, ref_type, ref_id, _instant(due_before))
        inbox = _inbox(principal, runtime)
        now = datetime.now(UTC)
        return await tasks_page(
            runtime.store,
            inbox,
            where,
            now,
            sort=sort,
            limit=limit,
            offset=offset,
            count_limit=runtime.settings.task_count_limit,
        )

    @post("/tasks/decisions", status_code=200)
    async def decide_many(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[BulkDecision],
        runtime: NamedDependency[Runtime],
    ) -> BulkOutcome:
        """Apply one decision to several runs, each in its own transaction, and report each:
        a refusal leaves that run unchanged and the others go on."""
        principal = principal_of(request)
        results = []
        for item in data.runs:
            extra = {"region": item.region} if item.region else {}
            try:
                outcome = await runtime.dispatcher.dispatch(
                    item.run_id,
                    data.event,
                    actor=principal.actor,
                    data={**(data.data or {}), **extra},
                    reason=data.reason,
                    roles=principal.roles,
                    groups=principal.decides_in,
                )
            except EngineError as exc:
                status, body = problem_of(exc)
                results.append(BulkResult(run_id=item.run_id, status=status, problem=body))
                continue
            results.append(BulkResult(run_id=item.run_id, status=200, version=outcome.version))
        decided = sum(1 for r in results if r.status == 200)
        return BulkOutcome(decided=decided, refused=len(results) - decided, results=results)


def _task_route(action: str, summary: str) -> Any:
    @post(
        f"/api/runs/{{run_id:str}}/tasks/{action}",
        guards=[requires("viewer")],
        status_code=200,
        responses=RUN_RESPONSES,
        tags=["tasks"],
        summary=summary,
        operation_id=f"{action}_task",
        name=f"{action}-task",
    )
    async def handler(
        request: Request[Any, Any, Any],
        run_id: FromPath[str],
        runtime: NamedDependency[Runtime],
        data: JSONBody[TaskAction | None] = None,
        idempotency: IdempotencyHeader = None,
        if_match: IfMatchHeader = None,
    ) -> Response[bytes]:
        principal = principal_of(request)
        body = data or TaskAction()
        target = None if body.to is None else target_of(request, body.to)
        outcome = await runtime.dispatcher.act(
            run_id,
            TASK_EVENTS[action],
            actor=principal.actor,
            slot=body.slot,
            target=target,
            reason=body.reason,
            if_match=parse_if_match(if_match),
            idem=await idempotency_key(request, idempotency, principal.actor),
            roles=principal.roles,
            groups=principal.decides_in,
        )
        return respond(outcome)

    return handler


# Each is a history entry of the run (`task.claim`, …), on the feed, and notified.
TASK_ROUTES = [
    _task_route("claim", "Claim a run's task: then only you (or an admin) decide it"),
    _task_route("release", "Release a claimed task (its claimer, or an operator)"),
    _task_route("reassign", "Give a task to someone else (operators)"),
    _task_route("delegate", "Hand your claimed task on; the decision records acting_for"),
]
