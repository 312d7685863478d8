"""The trace context a transition hands to the jobs, timers and webhook deliveries it enqueues.

While a traced transition is being written, `current` holds its context as W3C headers
(`traceparent`, and `tracestate` if any); each job row it writes keeps them in its payload
under TRACE_KEY, which a job handler never sees. Without tracing, `current` is never set and a
payload is written as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

TRACE_KEY = "_trace"

current: ContextVar[dict[str, str] | None] = ContextVar("signoff_trace", default=None)


def stamp(payload: dict[str, Any]) -> dict[str, Any]:
    """`payload`, with the context of the transition being written when it is traced."""
    trace = current.get()
    return payload if trace is None else {**payload, TRACE_KEY: trace}


def unstamped(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """`payload` as its handler sees it: without the trace context it carried."""
    if TRACE_KEY not in payload:
        return payload
    return {k: v for k, v in payload.items() if k != TRACE_KEY}


def carried(payload: Mapping[str, Any]) -> dict[str, str] | None:
    """The trace context a job's payload carries, if any."""
    trace = payload.get(TRACE_KEY)
    if not isinstance(trace, dict):
        return None
    return {str(k): str(v) for k, v in trace.items()}
