"""Run endpoints: create, read, list, send events, lifecycle controls, history."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter

from signoff.api.auth import principal_of, requires
from signoff.api.schemas import CreateRun, Decision, SendEvent
from signoff.engine import (
    Committed,
    DryRun,
    HistoryPage,
    IdempotencyKey,
    JobPage,
    Outcome,
    Permissions,
    PlannedJob,
    RunDetail,
    RunFilter,
    RunPage,
    Runtime,
    RunView,
    errors,
    permissions,
)

NO_NUL = r"^[^\x00]*$"  # PostgreSQL stores no NUL character
IdempotencyHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Idempotency-Key",
        max_length=255,
        # Printable ASCII. (Servers strip a header's edge spaces, so the pattern allows them.)
        pattern=r"^[\x20-\x7e]*$",
        description="Repeat a POST safely: a repeat returns the first response.",
    ),
]
IfMatchHeader = Annotated[
    str | None,
    HeaderParameter(
        name="If-Match",
        max_length=64,
        # Never empty. A bare version (3) is taken as "3": lenient, and the one form that
        # Schemathesis's coverage phase, which draws header values from [A-Za-z0-9], can send.
        pattern=r"^(\*|{tag}([ \t]*,[ \t]*{tag})*)$".format(tag=r'(W/)?("\d{1,12}"|\d{1,12})'),
        examples=[Example(value='"1"')],
        description='Apply only if the run is at this version (its ETag, "<version>").',
    ),
]
Query = Annotated[str | None, QueryParameter(max_length=200, pattern=NO_NUL)]
RUN_RESPONSES = {200: ResponseSpec(RunView, description="The run after the event")}


JSON = "application/json"


def dry_run_of(outcome: Outcome, committed: Committed) -> DryRun:
    jobs = [PlannedJob(kind=k, state=s, due_at=d) for k, s, d in committed.jobs]
    return DryRun(
        dry_run=True,
        run=outcome.view(),
        jobs=jobs,
        notifications=list(committed.notifications),
    )


def etag(version: int) -> str:
    return f'"{version}"'


def parse_if_match(value: str | None) -> list[int] | None:
    """The versions an If-Match header accepts (None: any). Tags are "<version>"."""
    if value is None or value.strip() == "*":
        return None
    versions = []
    for part in value.split(","):
        tag = part.strip().removeprefix("W/").strip('"')
        if not tag.isdigit():
            raise errors.InvalidRequestError(
                f'If-Match must list run version ETags like "3", not {value!r}.'
            )
        versions.append(int(tag))
    return versions


async def idempotency_key(
    request: Request[Any, Any, Any], key: str | None, actor: str
) -> IdempotencyKey | None:
    if key is None:
        return None
    body = await request.body()
    digest = hashlib.sha256(
        request.method.encode() + b" " + request.url.path.encode() + b"\n" + body
    ).hexdigest()
    return IdempotencyKey(
        key=key, actor=actor, route=f"{request.method} {request.url.path}", request_hash=digest
    )


def respond(outcome: Outcome) -> Response[bytes]:
    """The HTTP answer to a write: 201 and Location for a new run, the version as ETag."""
    headers = {"ETag": etag(outcome.version)}
    if outcome.created:
        headers["Location"] = f"/api/runs/{outcome.run_id}"
    if outcome.replayed:
        headers["Idempotent-Replayed"] = "true"
    status = 201 if outcome.created else 200
    return Response(
        outcome.body, status_code=status, media_type="application/json", headers=headers
    )


class RunController(Controller):
    path = "/api/runs"
    tags = ("runs",)
    guards = (requires("viewer"),)

    @post(
        "/",
        status_code=201,
        guards=[requires("operator")],
        responses={201: ResponseSpec(RunView, description="The new run")},
    )
    async def create_run(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[CreateRun],
        runtime: NamedDependency[Runtime],
        idempotency: IdempotencyHeader = None,
    ) -> Response[bytes]:
        """Create a run of a definition; it starts in the chart's initial state."""
        actor = principal_of(request).actor
        result = await runtime.dispatcher.create(
            data.definition,
            actor=actor,
            input=data.input,
            ref_id=data.ref_id,
            ref_type=data.ref_type,
            idem=await idempotency_key(request, idempotency, actor),
        )
        return respond(result)

    @get("/")
    async def list_runs(
        self,
        runtime: NamedDependency[Runtime],
        definition: Query = None,
        business_state: Annotated[
            str | None, QueryParameter(name="state", max_length=100, pattern=NO_NUL)
        ] = None,
        lifecycle: Query = None,
        ref_id: Query = None,
        ref_type: Query = None,
        ref_id_prefix: Annotated[
            str | None,
            QueryParameter(
                max_length=200, pattern=NO_NUL, description="runs whose ref_id starts with this"
            ),
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: Annotated[
            str | None,
            QueryParameter(
                pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
                description="`next_cursor` of the previous page",
            ),
        ] = None,
    ) -> RunPage:
        """Runs, newest first, filtered; follow `next_cursor` for the next page."""
        where = RunFilter(definition, business_state, lifecycle, ref_id, ref_type, ref_id_prefix)
        return await runtime.queries.page(where, limit, cursor)

    @get("/{run_id:str}")
    async def get_run(
        self, run_id: FromPath[str], runtime: NamedDependency[Runtime]
    ) -> Response[RunDetail]:
        """One run, with the runs that replay it (`replays`, newest first); its ETag is its
        version."""
        view = await runtime.queries.detail(run_id)
        return Response(view, headers={"ETag": etag(view.version)})

    @get("/{run_id:str}/history")
    async def history(
        self, run_id: FromPath[str], runtime: NamedDependency[Runtime]
    ) -> HistoryPage:
        """Every transition of the run, oldest first."""
        return await runtime.queries.history(run_id)

    @get("/{run_id:str}/jobs")
    async def jobs(self, run_id: FromPath[str], runtime: NamedDependency[Runtime]) -> JobPage:
        """The run's jobs and timers, oldest first, each with its attempts: when each started
        and ended, and why a failed one failed."""
        return await runtime.queries.jobs(run_id)

    @get("/{run_id:str}/permissions")
    async def permissions(
        self,
        request: Request[Any, Any, Any],
        run_id: FromPath[str],
        runtime: NamedDependency[Runtime],
    ) -> Permissions:
        """Why can't I? Every event of the run (per approval region, and claiming and
        releasing each task) with whether the caller may send it now, and each reason if
        not: a role, a group, separation of duties, already counted, claimed by someone
        else, not in this state, a guard that is false now. `allowed` is a dry run's verdict."""
        principal = principal_of(request)
        return await permissions(
            runtime.dispatcher,
            run_id,
            actor=principal.actor,
            roles=principal.roles,
            groups=principal.decides_in,
        )

    @post(
        "/{run_id:str}/events",
        status_code=200,
        responses={
            200: ResponseSpec(
                RunView | DryRun,  # type: ignore[arg-type]
                description="The run after the event (with dry_run: a DryRun)",
            )
        },
    )
    async def send_event(
        self,
        request: Request[Any, Any, Any],
        run_id: FromPath[str],
        data: JSONBody[SendEvent],
        runtime: NamedDependency[Runtime],
        idempotency: IdempotencyHeader = None,
        if_match: IfMatchHeader = None,
        dry_run: Annotated[
            bool, QueryParameter(description="answer what the event would do; commit nothing")
        ] = False,
    ) -> Response[bytes]:
        """Send a business event (or `pause`, `resume`, `cancel`) to a run. With
        `?dry_run=true`, answer what it would do (the next run view, the jobs and timers it
        would arm, the notifications it would send), decided by the same code, and commit
        nothing."""
        principal = principal_of(request)
        actor = principal.actor
        if dry_run:
            outcome, committed = await runtime.dispatcher.dry_run(
                run_id,
                data.event,
                actor=actor,
                data=data.data,
                reason=data.reason,
                if_match=parse_if_match(if_match),
                roles=principal.roles,
                groups=principal.decides_in,
            )
            return Response(msgspec.json.encode(dry_run_of(outcome, committed)), media_type=JSON)
        result = await runtime.dispatcher.dispatch(
            run_id,
            data.event,
            actor=actor,
            data=data.data,
            reason=data.reason,
            if_match=parse_if_match(if_match),
            idem=await idempotency_key(request, idempotency, actor),
            roles=principal.roles,
            groups=principal.decides_in,
        )
        return respond(result)


def _shortcut(event: str, summary: str) -> Any:
    @post(
        f"/api/runs/{{run_id:str}}/{event}",
        # Authenticated here; the role the event needs is the definition's to say, checked by
        # the dispatcher once it has read the run.
        guards=[requires("viewer")],
        status_code=200,
        responses=RUN_RESPONSES,
        tags=["runs"],
        summary=summary,
        operation_id=f"{event}_run",
        name=f"{event}-run",
    )
    async def handler(
        request: Request[Any, Any, Any],
        run_id: FromPath[str],
        runtime: NamedDependency[Runtime],
        data: JSONBody[Decision | None] = None,
        idempotency: IdempotencyHeader = None,
        if_match: IfMatchHeader = None,
    ) -> Response[bytes]:
        principal = principal_of(request)
        actor = principal.actor
        result = await runtime.dispatcher.dispatch(
            run_id,
            event,
            actor=actor,
            data={"region": data.region} if data and data.region else None,
            reason=data.reason if data else None,
            if_match=parse_if_match(if_match),
            idem=await idempotency_key(request, idempotency, actor),
            roles=principal.roles,
            groups=principal.decides_in,
        )
        return respond(result)

    return handler


SHORTCUTS = [
    _shortcut("process", "Start processing a run"),
    _shortcut("approve", "Approve a run waiting for approval"),
    _shortcut("reject", "Reject a run (reason required); it is processed again"),
    _shortcut("retry", "Process an errored run again"),
    _shortcut("pause", "Pause a run: it refuses business events and its jobs wait"),
    _shortcut("resume", "Resume a paused run where it was"),
    _shortcut("cancel", "Cancel a run for good; its jobs are dropped"),
]
