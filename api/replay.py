"""`POST /api/runs/{id}/replay`: a new run with the same definition, input and ref, linked."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Annotated, Any

from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, QueryParameter

from signoff.api.auth import principal_of, requires
from signoff.api.runs import IdempotencyHeader, idempotency_key, respond
from signoff.engine import Runtime, RunView, replay


@post(
    "/api/runs/{run_id:str}/replay",
    guards=[requires("operator")],
    status_code=201,
    responses={201: ResponseSpec(RunView, description="The new run, replaying the original")},
    tags=["runs"],
    operation_id="replay_run",
    name="replay-run",
)
async def replay_run(
    request: Request[Any, Any, Any],
    run_id: FromPath[str],
    runtime: NamedDependency[Runtime],
    same_version: Annotated[
        bool,
        QueryParameter(description="start it on the original's definition version, not the newest"),
    ] = False,
    idempotency: IdempotencyHeader = None,
) -> Response[bytes]:
    """Start a new run of the run's definition with the same input, ref_id and ref_type: on
    the newest version, or with `?same_version=true` on the original's. The new run's
    `replay_of` names the original; the original lists it in `replays`."""
    actor = principal_of(request).actor
    idem = await idempotency_key(request, idempotency, actor)
    if idem is not None and same_version:  # the query is part of the request the key names
        digest = hashlib.sha256(f"{idem.request_hash}?same_version".encode()).hexdigest()
        idem = replace(idem, request_hash=digest)
    outcome = await replay(
        runtime.dispatcher, run_id, actor=actor, same_version=same_version, idem=idem
    )
    return respond(outcome)
