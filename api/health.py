"""`GET /healthz`: liveness and whether the database answers."""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.di import NamedDependency
from litestar.response import Response
from sqlalchemy import text

from api.errors import problem
from engine.runtime import Runtime


@get("/healthz", tags=["operations"])
async def healthz(runtime: NamedDependency[Runtime]) -> Response[Any]:
    """Liveness and database reachability."""
    try:
        async with runtime.db.read() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        return problem(503, f"The database is unreachable: {type(exc).__name__}.")
    return Response({"status": "ok", "database": "ok"})
