"""`GET /api/audit/export`: the history with its hash chain, streamed as NDJSON or CSV.

The viewer role suffices: every role may read every run's history already, and an auditor who
checks the chain should not need a role that can change anything. The entries are read from the
database a page at a time while the response streams, so memory stays flat however long the
history; the `chain` line (and `X-Signoff-Chain-Start`) says where the chain starts, and the
`end` line that the export is whole (signoff.engine.audit.formats).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated

from litestar import get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import QueryParameter
from litestar.response import Stream

from signoff.api.auth import requires
from signoff.engine import Runtime
from signoff.engine.audit.formats import MEDIA_TYPES, Format, Line, csv_header, csv_line, ndjson
from signoff.engine.storage.audit import chain_start, export

CHAIN_START_HEADER = "X-Signoff-Chain-Start"
MAX_SEQ = 2**53  # exact as a JSON number
CHUNK = 64 * 1024


@get(
    "/api/audit/export",
    guards=[requires("viewer")],
    responses={
        200: ResponseSpec(
            str,
            description="A `chain` line, an `entry` line per history entry in seq order, an "
            "`end` line; as NDJSON (application/x-ndjson) or CSV (text/csv)",
            media_type=MEDIA_TYPES["ndjson"],
        )
    },
    tags=["audit"],
    operation_id="export_audit",
    name="export-audit",
)
async def export_audit(
    runtime: NamedDependency[Runtime],
    since_seq: Annotated[
        int, QueryParameter(ge=0, le=MAX_SEQ, description="only the entries after this seq")
    ] = 0,
    limit: Annotated[
        int | None, QueryParameter(ge=1, le=MAX_SEQ, description="at most this many entries")
    ] = None,
    format: Annotated[Format, QueryParameter(description="ndjson (default) or csv")] = "ndjson",
) -> Stream:
    """Every history entry after `since_seq` (at most `limit`) in seq order, each with the
    hash that chains it to the one before (`prev_hash`, `hash`). Page with `limit`: the end
    line's `last_seq` is the next page's `since_seq`. Check it with `signoff audit verify`."""
    start = await chain_start(runtime.store)
    lines = export(runtime.store, start, since_seq=since_seq, limit=limit)
    body = _csv(lines) if format == "csv" else _encoded(lines, ndjson)
    headers = {CHAIN_START_HEADER: str(start.seq)}
    return Stream(body, media_type=MEDIA_TYPES[format], headers=headers)


async def _encoded(
    lines: AsyncIterator[Line], encode: Callable[[Line], bytes]
) -> AsyncIterator[bytes]:
    # Lines go out in chunks of about CHUNK bytes, not one send per line.
    chunk: list[bytes] = []
    size = 0
    async for line in lines:
        encoded = encode(line)
        chunk.append(encoded)
        size += len(encoded)
        if size >= CHUNK:
            yield b"".join(chunk)
            chunk, size = [], 0
    if chunk:
        yield b"".join(chunk)


async def _csv(lines: AsyncIterator[Line]) -> AsyncIterator[bytes]:
    yield csv_header()
    async for line in _encoded(lines, csv_line):
        yield line
