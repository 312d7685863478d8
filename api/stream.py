"""Server-sent event feeds: one run, or every run (optionally of one definition)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter, QueryParameter
from litestar.response import Stream

from signoff.api.auth import requires
from signoff.api.send_timeout import abort_of, direct_of
from signoff.engine import FeedFilter, InvalidRequestError, Runtime

HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # proxies such as nginx must not buffer the stream
    "Connection": "keep-alive",
}
LastEventHeader = Annotated[
    str | None,
    HeaderParameter(
        name="Last-Event-ID",
        max_length=32,
        description="Resume after this seq (browsers send it on reconnect).",
    ),
]
LastEventQuery = Annotated[
    str | None,
    QueryParameter(
        name="last_event_id",
        max_length=32,
        description="Resume after this seq (for clients that cannot set headers).",
    ),
]
RETRY = b"retry: 3000\n\n"


MAX_SEQ = 2**63 - 1  # history.seq is a signed 64-bit integer


def resume_point(header: str | None, query: str | None) -> int | None:
    """The seq to resume after: ASCII digits only (`str.isdigit` also takes `²`), in range."""
    value = header if header is not None else query
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or int(value) > MAX_SEQ:
        raise InvalidRequestError(
            f"Last-Event-ID must be a history seq (0 to {MAX_SEQ}), not {value!r}."
        )
    return int(value)


def event_stream(frames: AsyncIterator[bytes]) -> Stream:
    return Stream(frames, media_type="text/event-stream", headers=HEADERS)


class StreamController(Controller):
    tags = ("streams",)
    guards = (requires("viewer", stream=True),)  # ?token= from POST /api/stream-tokens too

    @get("/api/runs/{run_id:str}/stream")
    async def run_stream(
        self,
        request: Request[Any, Any, Any],
        run_id: FromPath[str],
        runtime: NamedDependency[Runtime],
        last_event_id: LastEventHeader = None,
        last_event_id_query: LastEventQuery = None,
    ) -> Stream:
        """Every transition of one run (its whole history first, or after Last-Event-ID)."""
        await runtime.queries.get(run_id)  # 404 for an unknown run, before streaming starts
        after = resume_point(last_event_id, last_event_id_query)
        frames = runtime.feed.follow(
            FeedFilter(run_id=run_id),
            after,
            prefix=RETRY,
            on_drop=abort_of(request.scope),
            direct=direct_of(request.scope),
        )
        return event_stream(frames)

    @get("/api/stream")
    async def global_stream(
        self,
        request: Request[Any, Any, Any],
        runtime: NamedDependency[Runtime],
        definition: Annotated[str | None, QueryParameter(max_length=100)] = None,
        last_event_id: LastEventHeader = None,
        last_event_id_query: LastEventQuery = None,
    ) -> Stream:
        """Every transition of every run (of one definition, if given), live from now or
        from after Last-Event-ID."""
        if definition is not None:
            runtime.registry.get(definition)  # 422 for an unknown definition
        after = resume_point(last_event_id, last_event_id_query)
        frames = runtime.feed.follow(
            FeedFilter(definition=definition),
            after,
            prefix=RETRY,
            on_drop=abort_of(request.scope),
            direct=direct_of(request.scope),
        )
        return event_stream(frames)
