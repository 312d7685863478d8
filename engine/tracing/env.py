"""Whether to trace, from the standard OTEL_* variables, and the SDK set up from them.

Tracing is on when an exporter is asked for (OTEL_TRACES_EXPORTER other than `none`, or an OTLP
endpoint: OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), OTEL_SDK_DISABLED is
not `true`, and the `otel` extra is installed. Otherwise nothing of OpenTelemetry is imported.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from signoff.engine.tracing.tracer import Tracer

log = logging.getLogger("signoff.tracing")

# The SDK's own names for OTLP over each protocol (OTEL_EXPORTER_OTLP_PROTOCOL).
_OTLP = {"grpc": "otlp_proto_grpc", "http/protobuf": "otlp_proto_http"}


def exporter_names(env: Mapping[str, str]) -> list[str]:
    """The span exporters the environment asks for (empty: tracing is off)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = env.get("OTEL_TRACES_EXPORTER", "").strip()
    if not names:
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        names = "otlp" if endpoint else ""
    if names.lower() == "none":
        return []
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    ) or "grpc"  # the Python SDK's default
    found = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        if name == "otlp":
            if protocol.strip() not in _OTLP:
                raise ValueError(
                    f"OTEL_EXPORTER_OTLP_PROTOCOL must be grpc or http/protobuf, not {protocol!r}"
                )
            name = _OTLP[protocol.strip()]
        found.append(name)
    return found


def from_env(env: Mapping[str, str] | None = None) -> Tracer:
    """A tracer as OTEL_* say (`env`: os.environ): spans exported by the named exporters
    through the SDK, or none."""
    env = os.environ if env is None else env
    names = exporter_names(env)
    if not names:
        return Tracer()
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        from signoff.engine.tracing.otel import OtelTracer
    except ImportError:
        log.warning(
            "OTEL_* ask for traces, but OpenTelemetry is not installed "
            "(pip install 'signoff[otel]'): tracing stays off"
        )
        return Tracer()
    configured = trace.get_tracer_provider()
    if not isinstance(configured, trace.ProxyTracerProvider):
        # The process set up OpenTelemetry already (opentelemetry-instrument, or its own
        # code): its provider exports Signoff's spans too, and is not Signoff's to shut down.
        return OtelTracer(configured)
    # The SDK reads the rest itself: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, the
    # sampler (OTEL_TRACES_SAMPLER), the exporters' endpoints and headers, OTEL_BSP_*.
    named = "OTEL_SERVICE_NAME" in os.environ or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    resource = Resource.create({} if named else {SERVICE_NAME: "signoff"})
    provider = TracerProvider(resource=resource)
    for name in names:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name)()))
    # The global provider: spans of the application's own code (a job handler's, say) and of
    # its other instrumentation join these traces.
    trace.set_tracer_provider(provider)
    return OtelTracer(provider, owned=True)


def _exporter(name: str) -> Any:
    found = entry_points(group="opentelemetry_traces_exporter", name=name)
    if not found:
        raise ValueError(
            f"OTEL_TRACES_EXPORTER names {name!r}, which no installed package provides "
            "(otlp and console come with the otel extra)"
        )
    return next(iter(found)).load()
