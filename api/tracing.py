"""A span per HTTP request, when the runtime traces (Litestar's OpenTelemetry plugin).

The request's span is the outermost: the transitions it makes, and through them the jobs and
webhook deliveries they enqueue, are its descendants. It is named by the route's template
(`POST /api/runs/{run_id}/approve`), never by the path, which names a run.
"""

from __future__ import annotations

from typing import Any

from litestar.enums import ScopeType
from litestar.plugins import InitPlugin
from litestar.types import ASGIApp, Receive, Scope, Send

from signoff.engine import Runtime

# Scrapes and probes come every few seconds and say nothing about any run.
UNTRACED = ["^/metrics", "^/healthz"]


def plugins(runtime: Runtime) -> list[InitPlugin]:
    """Litestar's OpenTelemetry plugin on the runtime's tracer provider; none when off."""
    if not runtime.tracer.on:
        return []
    from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin

    from signoff.engine.tracing.otel import OtelTracer

    assert isinstance(runtime.tracer, OtelTracer)
    config = OpenTelemetryConfig(
        tracer_provider=runtime.tracer.provider,
        scope_span_details_extractor=_method_only,
        # One span per request: not one more per chunk received or sent (an SSE stream
        # sends for hours).
        exclude_spans=["receive", "send"],
        exclude=UNTRACED,
    )
    return [OpenTelemetryPlugin(config)]


def name_by_route(app: ASGIApp) -> ASGIApp:
    """Middleware (it runs after routing): names the request's span by its route."""
    from opentelemetry import trace

    async def named(scope: Scope, receive: Receive, send: Send) -> None:
        route = scope.get("path_template")
        if route and scope["type"] == ScopeType.HTTP:
            span = trace.get_current_span()
            span.update_name(f"{scope['method']} {route}")
            span.set_attribute("http.route", route)
        await app(scope, receive, send)

    return named


def _method_only(scope: Scope) -> tuple[str, dict[str, Any]]:
    # The span's first name, until routing finds the route (a 404 keeps it).
    return str(scope.get("method", scope["type"])), {}
