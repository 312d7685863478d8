"""`GET /healthz`: liveness, whether the database answers, and whether it takes writes."""

from __future__ import annotations

from typing import Any

from litestar import get
from litestar.di import NamedDependency
from litestar.response import Response
from sqlalchemy import text

from signoff.api.errors import problem
from signoff.engine import Runtime, StorageUnavailableError


@get("/healthz", tags=["operations"])
async def healthz(runtime: NamedDependency[Runtime]) -> Response[Any]:
    """Liveness, database reachability, and writes: 503 storage-unavailable (with
    Retry-After) while the database cannot be read, or while writes fail for a storage
    reason (after a write failed, each call retries a probe write until one commits)."""
    try:
        async with runtime.store.read() as conn:
            await conn.execute(text("SELECT 1"))
        await runtime.store.check_writes()
    except StorageUnavailableError:
        raise  # answered like any request the storage refused (api/errors.py)
    except Exception as exc:
        return problem(503, f"The database is unreachable: {type(exc).__name__}.")
    return Response({"status": "ok", "database": "ok"})
