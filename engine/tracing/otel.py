"""OpenTelemetry spans for transitions, job attempts and webhook deliveries.

Imported only when tracing is on (signoff.engine.tracing.env), so a process without it never
loads OpenTelemetry. Context crosses the database in W3C headers, injected and extracted by the
globally configured propagator (OTEL_PROPAGATORS; W3C trace context by default).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import Any

import msgspec
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from signoff.engine.tracing import carried
from signoff.engine.tracing.tracer import Tracer, TransitionSpan

SCOPE = "signoff"


class _Change(msgspec.Struct):
    from_: list[str] = msgspec.field(name="from", default_factory=list)
    to: list[str] = msgspec.field(default_factory=list)


class _Entry(msgspec.Struct):
    seq: int
    business: _Change
    lifecycle: _Change


_ENTRY = msgspec.json.Decoder(_Entry)


class _Transition(TransitionSpan):
    """`signoff.transition <event>`, current while the transaction runs; the jobs it writes
    carry its context."""

    def __init__(self, tracer: trace.Tracer, event: str, run_id: str | None) -> None:
        attributes = {"signoff.event": event}
        if run_id is not None:
            attributes["signoff.run_id"] = run_id
        self._opened = tracer.start_as_current_span(
            f"signoff.transition {event}", attributes=attributes
        )
        self._span: Span | None = None
        self._token: Any = None

    def __enter__(self) -> _Transition:
        self._span = self._opened.__enter__()
        headers: dict[str, str] = {}
        propagate.inject(headers)
        self._token = carried.current.set(headers or None)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        carried.current.reset(self._token)
        self._opened.__exit__(kind, exc, tb)

    def committed(self, definition: str, run_id: str, entry: bytes) -> None:
        if self._span is None or not self._span.is_recording():
            return
        e = _ENTRY.decode(entry)
        self._span.set_attributes(
            {
                "signoff.definition": definition,
                "signoff.run_id": run_id,
                "signoff.seq": e.seq,
                "signoff.from": e.business.from_,
                "signoff.to": e.business.to,
                "signoff.lifecycle.from": e.lifecycle.from_,
                "signoff.lifecycle.to": e.lifecycle.to,
            }
        )


class OtelTracer(Tracer):
    """Spans from `provider`; `owned`: this process made the provider, and shuts it down."""

    on = True

    def __init__(self, provider: trace.TracerProvider, *, owned: bool = False) -> None:
        self.provider = provider
        self.owned = owned
        self._tracer = provider.get_tracer(SCOPE)

    def transition(self, event: str, run_id: str | None) -> TransitionSpan:
        return _Transition(self._tracer, event, run_id)

    def job_attempt(
        self, kind: str, job_id: int, run_id: str, attempt: int, payload: Mapping[str, Any]
    ) -> AbstractContextManager[Any]:
        headers = carried.carried(payload)
        # The attempt continues the trace of the transition that enqueued the job: a child of
        # that transition's span, however long after it ended.
        parent = None if headers is None else propagate.extract(headers)
        return self._tracer.start_as_current_span(
            f"signoff.job {kind}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={
                "signoff.job.kind": kind,
                "signoff.job.id": job_id,
                "signoff.job.attempt": attempt,
                "signoff.run_id": run_id,
            },
        )

    def job_failed(self, error: str) -> None:
        trace.get_current_span().set_status(Status(StatusCode.ERROR, error))

    def delivery(self, url: str, message_type: str) -> AbstractContextManager[dict[str, str]]:
        return self._delivery(url, message_type)

    @contextmanager
    def _delivery(self, url: str, message_type: str) -> Iterator[dict[str, str]]:
        attributes = {
            "http.request.method": "POST",
            "url.full": url,
            "signoff.webhook.type": message_type,
        }
        with self._tracer.start_as_current_span(
            "POST", kind=SpanKind.CLIENT, attributes=attributes
        ):
            headers: dict[str, str] = {}
            propagate.inject(headers)
            yield headers

    def close(self) -> None:
        shutdown = getattr(self.provider, "shutdown", None)
        if self.owned and shutdown is not None:
            shutdown()
