"""`POST /api/events`: an external event, by id; it starts runs and reaches waiting ones
(signoff.engine.dispatch.events)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody

from signoff.api.auth import principal_of, requires
from signoff.api.schemas import Name, RefId, RefType
from signoff.engine import EventRecord, ExternalEvent, Runtime, send_event

EventId = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]


class PostEvent(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An event from outside: `id` names it (a repeat answers the first), `data` is what it
    carries, `ref_type`/`ref_id` what it is about (the runs with that ref receive it)."""

    id: EventId
    name: Name
    data: dict[str, Any] | None = None
    ref_type: RefType | None = None
    ref_id: RefId | None = None


_ENCODER = msgspec.json.Encoder()


@post(
    "/api/events",
    guards=[requires("operator")],
    status_code=200,
    responses={200: ResponseSpec(EventRecord, description="What became of the event")},
    tags=["events"],
    operation_id="post_event",
    name="post-event",
)
async def post_event(
    request: Request[Any, Any, Any],
    data: JSONBody[PostEvent],
    runtime: NamedDependency[Runtime],
) -> Response[bytes]:
    """Send an external event: the runs its triggers start and the runs it was delivered to
    (each with its outcome; a run that refused it says why). An event nobody wanted is
    recorded and answered with empty lists. A repeat of its `id` answers the first request
    (`Idempotent-Replayed: true`) and changes nothing."""
    event = ExternalEvent(
        id=data.id,
        name=data.name,
        data=data.data or {},
        ref_type=data.ref_type,
        ref_id=data.ref_id,
    )
    actor = principal_of(request).actor
    record, repeat = await send_event(runtime.dispatcher, event, actor=actor)
    headers = {"Idempotent-Replayed": "true"} if repeat else {}
    return Response(
        _ENCODER.encode(record), status_code=200, media_type="application/json", headers=headers
    )
