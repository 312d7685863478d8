"""What the engine asks of a tracer; this base class traces nothing, at next to no cost.

The dispatcher, the worker and the webhook deliverer call it on every transition, job attempt
and delivery; `signoff.engine.tracing.otel.OtelTracer` makes OpenTelemetry spans of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any


class TransitionSpan:
    """A transition's span, open around its transaction; this one records nothing."""

    def __enter__(self) -> TransitionSpan:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def committed(self, definition: str, run_id: str, entry: bytes) -> None:
        """The transaction committed `entry` (its history entry as JSON) for `run_id`."""


class _Headers(AbstractContextManager[dict[str, str]]):
    """No span, and no headers to add."""

    def __enter__(self) -> dict[str, str]:
        return {}

    def __exit__(self, *exc: object) -> None:
        return None


_NO_SPAN = TransitionSpan()
_NO_HEADERS = _Headers()


class Tracer:
    """Makes the engine's spans: this base class makes none (tracing is off)."""

    on = False

    def transition(self, event: str, run_id: str | None) -> TransitionSpan:
        """A span around one transition's transaction (`run_id` None: it creates the run)."""
        return _NO_SPAN

    def job_attempt(
        self, kind: str, job_id: int, run_id: str, attempt: int, payload: Mapping[str, Any]
    ) -> AbstractContextManager[Any]:
        """A span around one attempt of a job, continuing the trace its payload carries."""
        return _NO_HEADERS

    def job_failed(self, error: str) -> None:
        """The current job attempt failed with `error` (it is retried or given up)."""

    def delivery(self, url: str, message_type: str) -> AbstractContextManager[dict[str, str]]:
        """A span around one webhook delivery attempt; gives the headers that carry it to the
        receiver (`traceparent`)."""
        return _NO_HEADERS

    def close(self) -> None:
        """Send the spans still buffered, and stop."""
