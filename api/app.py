"""The Litestar application: `create_app(runtime)` wires routes, errors and lifespan."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, get
from litestar.di import NamedDependency, Provide
from litestar.openapi.config import OpenAPIConfig
from litestar.response import Response
from sqlalchemy import text

from api.definitions import DefinitionController
from api.errors import HANDLERS, problem
from api.guard import guard_request
from api.runs import SHORTCUTS, RunController
from engine.runtime import Runtime

VERSION = "0.1.0"


@get("/healthz", tags=["operations"])
async def healthz(runtime: NamedDependency[Runtime]) -> Response[Any]:
    """Liveness and database reachability."""
    try:
        async with runtime.db.read() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        return problem(503, f"The database is unreachable: {type(exc).__name__}.")
    return Response({"status": "ok", "database": "ok"})


def create_app(runtime: Runtime, *, manage_runtime: bool = True) -> Litestar:
    """The app for one runtime; with `manage_runtime` the app starts and stops it."""

    async def start() -> None:
        await runtime.start()

    async def stop() -> None:
        await runtime.stop()

    return Litestar(
        route_handlers=[RunController, DefinitionController, *SHORTCUTS, healthz],
        dependencies={
            "runtime": Provide(lambda: runtime, sync_to_thread=False, use_cache=True),
            "actor": Provide(lambda: "anonymous", sync_to_thread=False, use_cache=True),
        },
        exception_handlers=HANDLERS,
        before_request=guard_request,
        on_startup=[start] if manage_runtime else [],
        on_shutdown=[stop] if manage_runtime else [],
        request_max_body_size=runtime.settings.max_body_bytes,
        openapi_config=OpenAPIConfig(title="Signoff", version=VERSION, path="/schema"),
        debug=False,
    )
