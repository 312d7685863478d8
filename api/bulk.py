"""`POST /api/runs/bulk`: one action for every run a filter matches (signoff.engine.dispatch.bulk).

A dry run answers JSON (how many match, the first ids). Otherwise the answer streams NDJSON, a
line per run as each transaction lands, between a `start` and a `summary` line: a client shows
progress, and a dropped connection stops the work between two runs (repeat the request with
the same Idempotency-Key to finish it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody
from litestar.response import Stream

from signoff.api.auth import principal_of, requires
from signoff.api.errors import problem_of
from signoff.api.runs import IdempotencyHeader, idempotency_key
from signoff.api.schemas import Name, Reason, RefId, RefType
from signoff.engine import (
    Bulk,
    BulkAction,
    BulkCaller,
    BulkFilter,
    BulkLine,
    BulkOrder,
    BulkPreview,
    Runtime,
    errors,
)

NDJSON = "application/x-ndjson"
Lifecycle = Literal["queued", "running", "waiting", "errored", "paused", "completed", "cancelled"]
Instant = Annotated[datetime, msgspec.Meta(tz=True)]  # RFC 3339, with its offset


class RunsFilter(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which runs: every given criterion holds (at least one is given)."""

    definition: Name | None = None
    state: Name | None = None
    lifecycle: Lifecycle | None = None
    ref_type: RefType | None = None
    ref_id: RefId | None = None
    created_before: Instant | None = None
    created_after: Instant | None = None


class BulkRuns(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An action for every run `filter` matches: `to_version` is migrate's target (admin),
    `same_version` keeps replays on the originals' version, `reason` goes into history."""

    action: Literal["cancel", "retry", "replay", "pause", "resume", "migrate"]
    filter: RunsFilter
    dry_run: bool = False
    to_version: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] | None = None
    same_version: bool = False
    reason: Reason | None = None


@post(
    "/api/runs/bulk",
    guards=[requires("operator")],
    status_code=200,
    responses={
        200: ResponseSpec(
            BulkPreview,
            description=f"A dry run's count; otherwise {NDJSON}: a start line, a line per run, "
            "a summary line",
        )
    },
    tags=["runs"],
    operation_id="bulk_runs",
    name="bulk-runs",
)
async def bulk_runs(
    request: Request[Any, Any, Any],
    data: JSONBody[BulkRuns],
    runtime: NamedDependency[Runtime],
    idempotency: IdempotencyHeader = None,
) -> Response[Any]:
    """Cancel, retry, replay, pause, resume or migrate every run the filter matches (at most
    10,000), each in its own transaction, reported per run: `done`, `skipped` (refused, or
    changed since it was matched: never forced) or `failed`. `dry_run` only counts. With an
    Idempotency-Key a repeat acts on the same runs and does nothing twice."""
    principal = principal_of(request)
    if data.action == "migrate" and not principal.has("admin"):
        raise errors.ForbiddenError(
            f"{principal.actor} lacks the admin role: migrate moves runs to another version."
        )
    where = data.filter
    order = BulkOrder(
        BulkAction(data.action),
        BulkFilter(
            where.definition, where.state, where.lifecycle, where.ref_type, where.ref_id,
            where.created_before, where.created_after,
        ),
        to_version=data.to_version,
        same_version=data.same_version,
        reason=data.reason,
    )  # fmt: skip
    bulk = Bulk(runtime.dispatcher, lambda exc: problem_of(exc)[1])
    if data.dry_run:
        preview = msgspec.json.encode(await bulk.preview(order))
        return Response(preview, media_type="application/json")
    idem = await idempotency_key(request, idempotency, principal.actor)
    plan = await bulk.plan(order, runtime.dispatcher.clock(), idem)
    caller = BulkCaller(principal.actor, principal.roles, principal.decides_in)
    headers = {"Idempotent-Replayed": "true"} if plan.repeat else {}
    return Stream(_ndjson(bulk.run(order, plan, caller, idem)), media_type=NDJSON, headers=headers)


async def _ndjson(lines: AsyncIterator[BulkLine]) -> AsyncIterator[bytes]:
    async for line in lines:
        yield msgspec.json.encode(line) + b"\n"
