"""`GET /api/definitions/{name}/stats`: time in state, SLA breaches, decisions, throughput."""

from __future__ import annotations

from typing import Annotated

from litestar import get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, QueryParameter

from signoff.api.auth import requires
from signoff.engine import DefinitionNotFoundError, Period, Runtime, Stats, read_stats

# An RFC 3339 date or date-time; a value of this form that is no day (2026-02-30) is a 422.
DAY = r"^\d{4}-\d{2}-\d{2}([Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2}))?$"
Day = Annotated[
    str | None,
    QueryParameter(
        max_length=40,
        pattern=DAY,
        description="an RFC 3339 date or date-time; its UTC day is counted whole",
    ),
]


@get(
    "/api/definitions/{name:str}/stats",
    guards=[requires("viewer")],
    tags=["definitions"],
    operation_id="definition_stats",
    name="definition-stats",
)
async def definition_stats(
    name: FromPath[str],
    runtime: NamedDependency[Runtime],
    since: Day = None,
    until: Day = None,
) -> Stats:
    """Per state: runs that entered it, how long they stayed (p50/p90/p99), runs there now,
    its SLA and the stays that broke it; per approver: decisions and time to decide; finished
    runs per day. From `since` to `until` (UTC days, both included; default the last 30 days),
    over every version of the definition."""
    if not runtime.registry.versions(name):
        raise NotFoundException(DefinitionNotFoundError(name).message)
    period = Period.parse(since, until, runtime.dispatcher.clock())
    return await read_stats(runtime.store, runtime.registry, name, period)
