"""Traces (OpenTelemetry): the engine's spans, and the trace context its jobs carry."""

from signoff.engine.tracing.carried import TRACE_KEY, stamp, unstamped
from signoff.engine.tracing.env import from_env
from signoff.engine.tracing.tracer import Tracer, TransitionSpan

__all__ = ["TRACE_KEY", "Tracer", "TransitionSpan", "from_env", "stamp", "unstamped"]
