"""The Litestar application: `create_app(runtime)` wires routes, errors and lifespan."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from litestar import Litestar, MediaType, get
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import NotFoundException
from litestar.openapi.config import OpenAPIConfig
from litestar.params import FromPath
from litestar.response import File

from signoff.api.audit import export_audit
from signoff.api.auth import Tokens
from signoff.api.bulk import bulk_runs
from signoff.api.definitions import DefinitionController
from signoff.api.diagrams import DiagramController
from signoff.api.errors import HANDLERS
from signoff.api.events import post_event
from signoff.api.guard import guard_request
from signoff.api.health import healthz
from signoff.api.identity import IdentityController
from signoff.api.links import Signer, open_link, use_link
from signoff.api.metrics import Metrics, metrics
from signoff.api.openapi import finish as finish_openapi
from signoff.api.origin import HostPolicy, host_guard
from signoff.api.replay import replay_run
from signoff.api.runs import SHORTCUTS, RunController
from signoff.api.security import CONTENT_SECURITY_POLICY, add_security_headers, cors
from signoff.api.stats import definition_stats
from signoff.api.stream import StreamController
from signoff.api.tasks import TASK_ROUTES, TaskController
from signoff.api.tracing import name_by_route, plugins
from signoff.api.webhooks import WebhookController
from signoff.engine import Runtime

VERSION = "0.1.0"


STATIC = Path(__file__).parent / "static"


@get("/", include_in_schema=False, media_type=MediaType.HTML)
async def monitor() -> File:
    """The live web monitor."""
    return File(
        STATIC / "index.html",
        content_disposition_type="inline",
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY},
    )


# The monitor's files, listed once: a request names one of them or gets a 404, and never
# reaches the file system with a name of its own.
STATIC_FILES = {p.name: p for p in STATIC.iterdir() if p.is_file()}


@get("/static/{name:str}", include_in_schema=False, cache_control=None)
async def static_file(name: FromPath[str]) -> File:
    """One of the monitor's static files."""
    path = STATIC_FILES.get(name)
    if path is None:
        raise NotFoundException("No such file.")
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return File(path, content_disposition_type="inline", media_type=media_type)


@get("/favicon.ico", include_in_schema=False)
async def favicon() -> File:
    """Browsers ask for it on pages without an icon link (the API's JSON, say)."""
    return File(
        STATIC / "favicon.svg", content_disposition_type="inline", media_type="image/svg+xml"
    )


def create_app(runtime: Runtime, *, manage_runtime: bool = True) -> Litestar:
    """The app for one runtime; with `manage_runtime` the app starts and stops it."""

    async def start() -> None:
        await runtime.start()

    async def stop() -> None:
        await runtime.stop()

    tokens = Tokens(runtime.settings.tokens)
    signer = None if tokens.open else Signer(tokens, runtime.settings)
    runtime.dispatcher.links = None if signer is None else signer.links
    if isinstance(runtime.observer, Metrics):
        runtime.observer.watch(runtime.dispatcher)

    app = Litestar(
        route_handlers=[
            RunController,
            DefinitionController,
            StreamController,
            DiagramController,
            IdentityController,
            WebhookController,
            TaskController,
            *TASK_ROUTES,
            *SHORTCUTS,
            replay_run,
            export_audit,
            definition_stats,
            post_event,
            bulk_runs,
            open_link,
            use_link,
            healthz,
            metrics,
            monitor,
            static_file,
            favicon,
        ],
        dependencies={
            "runtime": Provide(lambda: runtime, sync_to_thread=False, use_cache=True),
        },
        middleware=[
            lambda app: host_guard(app, HostPolicy.of(runtime.settings)),
            *([name_by_route] if runtime.tracer.on else []),
        ],
        plugins=plugins(runtime),
        exception_handlers=HANDLERS,
        before_request=guard_request,
        after_request=add_security_headers,
        cors_config=cors(runtime.settings.cors_origins),
        state=State({"tokens": tokens, "runtime": runtime, "signer": signer}),
        on_startup=[start] if manage_runtime else [],
        on_shutdown=[stop] if manage_runtime else [],
        request_max_body_size=runtime.settings.max_body_bytes,
        openapi_config=OpenAPIConfig(title="Signoff", version=VERSION, path="/schema"),
        debug=False,
    )
    finish_openapi(app.openapi_schema, runtime.registry)  # the served document is this object
    return app
