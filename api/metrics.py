"""Prometheus metrics: counters from this process's engine, gauges read from the database."""

from __future__ import annotations

import threading
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from litestar import Request, get
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    make_wsgi_app,
)
from prometheus_client.exposition import ThreadingWSGIServer

from signoff.api.auth import Tokens, requires
from signoff.engine import Committed, Dispatcher, Observer, Runtime

# Time in state reaches from seconds (a job) to weeks (a forgotten approval).
STAY_BUCKETS = (1, 10, 60, 300, 900, 3600, 4 * 3600, 8 * 3600, 86400, 2 * 86400, 7 * 86400)


class Metrics(Observer):
    """The engine's observer, recording into one Prometheus registry per process."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.transitions = Counter(
            "signoff_transitions", "Committed transitions", ["definition", "event"], registry=r
        )
        self.commit_seconds = Histogram(
            "signoff_transition_commit_seconds",
            "From BEGIN to COMMIT of one transition",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.job_attempts = Counter(
            "signoff_job_attempts", "Job attempts started", ["kind"], registry=r
        )
        self.job_retries = Counter(
            "signoff_job_retries",
            "Attempts that failed transiently and were rescheduled",
            ["kind"],
            registry=r,
        )
        self.job_failures = Counter(
            "signoff_job_failures",
            "Jobs that ran out of attempts or failed for good",
            ["kind"],
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "signoff_webhook_deliveries",
            "Webhook delivery attempts by result: delivered (2xx), retried (failed, tried "
            "again later) or dead (failed, the last attempt)",
            ["result"],
            registry=r,
        )
        self.webhook_failures = Counter(
            "signoff_webhook_failures",
            "Failed webhook delivery attempts by reason: timeout, connection, status (not "
            "2xx), lost (its worker stopped) or refused (subscription inactive or host not "
            "allowed)",
            ["reason"],
            registry=r,
        )
        self.webhook_latency = Histogram(
            "signoff_webhook_latency_seconds",
            "From the commit of the transition that caused a notification to the receiver's 2xx",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
            registry=r,
        )
        self.runs = Gauge(
            "signoff_runs",
            "Runs by business and lifecycle state",
            ["definition", "state", "lifecycle"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "signoff_queue_depth", "Jobs and timers waiting (ready)", ["kind"], registry=r
        )
        self.queue_due = Gauge(
            "signoff_queue_due", "Ready jobs whose due time has passed", registry=r
        )
        self.unclaimed = Gauge(
            "signoff_jobs_unclaimed_seconds",
            "Per job kind, how long its longest-waiting due job has gone unclaimed (a kind "
            "that keeps growing has no worker with a handler for it)",
            ["kind"],
            registry=r,
        )
        self.listener_failures = Counter(
            "signoff_listener_failures",
            "Listeners that raised after a commit (the transition stayed committed)",
            registry=r,
        )
        self.time_in_state = Histogram(
            "signoff_time_in_state_seconds",
            "How long runs stayed in a state, observed when they leave it",
            ["definition", "state"],
            buckets=STAY_BUCKETS,
            registry=r,
        )
        self.sse_clients = Gauge(
            "signoff_sse_clients", "SSE clients connected to this process", registry=r
        )

    def transition(self, definition: str, event: str, seconds: float) -> None:
        self.transitions.labels(definition, event).inc()
        self.commit_seconds.observe(seconds)

    def watch(self, dispatcher: Dispatcher) -> None:
        """Observe the stays each committed transition ends (once per dispatcher)."""
        if self.committed not in dispatcher.listeners:
            dispatcher.listeners.append(self.committed)

    def committed(self, committed: Committed) -> None:
        for state, seconds in committed.stays:
            self.time_in_state.labels(committed.definition, state).observe(seconds)

    def job_attempt(self, kind: str) -> None:
        self.job_attempts.labels(kind).inc()

    def job_retry(self, kind: str) -> None:
        self.job_retries.labels(kind).inc()

    def job_failure(self, kind: str) -> None:
        self.job_failures.labels(kind).inc()

    def webhook_delivered(self, seconds: float) -> None:
        self.webhook_deliveries.labels("delivered").inc()
        self.webhook_latency.observe(max(0.0, seconds))

    def webhook_failed(self, reason: str, dead: bool) -> None:
        self.webhook_deliveries.labels("dead" if dead else "retried").inc()
        self.webhook_failures.labels(reason).inc()

    def listener_failure(self) -> None:
        self.listener_failures.inc()

    async def refresh(self, runtime: Runtime) -> None:
        """Read the gauges that describe the whole system (every process) from the database."""
        census = await runtime.queries.census(runtime.dispatcher.clock())
        self.runs.clear()
        for (definition, state, lifecycle), count in census.runs.items():
            self.runs.labels(definition, state, lifecycle).set(count)
        self.queue_depth.clear()
        for kind, count in census.ready_jobs.items():
            self.queue_depth.labels(kind).set(count)
        self.queue_due.set(census.due_jobs)
        now = runtime.dispatcher.clock()
        self.unclaimed.clear()
        for kind, due_at in census.oldest_due.items():
            self.unclaimed.labels(kind).set(max(0.0, (now - due_at).total_seconds()))
        self.sse_clients.set(runtime.feed.subscriber_count)


_VIEWER = requires("viewer")


async def metrics_access(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """With tokens set, scraping needs the viewer role (Prometheus sends a bearer token)
    unless SIGNOFF_METRICS_PUBLIC=1."""
    runtime: Runtime = connection.app.state.runtime
    if not runtime.settings.metrics_public:
        await _VIEWER(connection, handler)


@get("/metrics", include_in_schema=False, guards=[metrics_access])
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Prometheus text exposition."""
    runtime: Runtime = request.app.state.runtime
    observer = runtime.observer
    if not isinstance(observer, Metrics):
        return Response(b"", media_type=CONTENT_TYPE_LATEST)
    await observer.refresh(runtime)
    return Response(generate_latest(observer.registry), media_type=CONTENT_TYPE_LATEST)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged, as in prometheus_client's own server."""


def serve_worker_metrics(
    registry: CollectorRegistry, host: str, port: int, tokens: Tokens, *, public: bool
) -> None:
    """`signoff worker --metrics-port`: the worker's metrics on a thread of their own, under
    the same rule as the API's /metrics (a bearer token of any role when tokens are set,
    unless SIGNOFF_METRICS_PUBLIC=1)."""
    exposition = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        scheme, _, secret = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        if not (public or tokens.open) and (
            scheme.lower() != "bearer" or tokens.authenticate(secret.strip()) is None
        ):
            start_response(
                "401 Unauthorized",
                [
                    ("Content-Type", "application/problem+json"),
                    ("WWW-Authenticate", 'Bearer realm="signoff"'),
                ],
            )
            return [_UNAUTHORIZED]
        return exposition(environ, start_response)

    try:
        httpd = make_server(host, port, app, ThreadingWSGIServer, handler_class=_QuietHandler)
    except OSError as exc:
        raise ValueError(f"cannot serve metrics on {host}:{port}: {exc.strerror}") from None
    threading.Thread(target=httpd.serve_forever, name="signoff-metrics", daemon=True).start()


_UNAUTHORIZED = (
    b'{"type":"urn:signoff:problem:unauthorized","title":"Unauthorized","status":401,'
    b'"detail":"A valid token is required: send Authorization: Bearer <secret>."}'
)
