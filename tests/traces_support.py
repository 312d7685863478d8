"""For the trace tests: a payout chart whose approval enqueues a job, a server in this process
traced into an in-memory exporter, and reading its spans back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from statemachine import State, StateChart

from signoff import Definition, JobContext, JobKind, JobOutcome, Registry, RunModel, StateKind
from signoff.api.app import create_app
from signoff.api.server import server as signoff_server
from signoff.engine.runtime import Runtime
from signoff.engine.tracing import Tracer
from signoff.engine.tracing.otel import OtelTracer
from signoff.machines.lifecycle import Lifecycle
from tests.helpers import free_socket, settings_for


class Payout(StateChart[RunModel]):
    """Waiting → (approve) → Paying, where the `pay` job runs → Paid."""

    allow_event_without_transition = False
    catch_errors_as_events = False

    waiting = State(initial=True)
    paying = State()
    paid = State(final=True)
    declined = State()

    approve = waiting.to(paying)
    settled = paying.to(paid)
    failed = paying.to(declined)
    retry = declined.to(paying)

    def on_enter_paying(self, state: State) -> None:
        self.model.request_job("pay", state=state.id, amount=12)


@dataclass
class PayJob:
    """The `pay` handler: records the payload each attempt saw."""

    seen: list[dict[str, Any]] = field(default_factory=list)

    async def __call__(self, ctx: JobContext) -> JobOutcome:
        self.seen.append(dict(ctx.payload))
        return JobOutcome("settled")


def payout_registry(job: PayJob) -> Registry:
    definition = Definition(
        name="payout",
        version=1,
        chart=Payout,
        kinds={
            "waiting": StateKind.WAIT,
            "paying": StateKind.WORK,
            "paid": StateKind.SUCCESS,
            "declined": StateKind.FAILURE,
        },
        internal_events=frozenset({"settled", "failed"}),
    )
    return Registry.of([definition], Lifecycle, {"pay": JobKind("pay", job, "failed")})


@dataclass
class Traced:
    """Spans as the in-memory exporter holds them."""

    exporter: InMemorySpanExporter

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.name == name]


def memory_tracer() -> tuple[OtelTracer, Traced]:
    """A tracer whose spans are exported, as each ends, to memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return OtelTracer(provider, owned=True), Traced(exporter)


@dataclass
class Served:
    url: str
    runtime: Runtime
    client: httpx.AsyncClient


@asynccontextmanager
async def traced_server(
    database_url: str, registry: Registry, tracer: Tracer | None, **overrides: Any
) -> AsyncIterator[Served]:
    """The real app under uvicorn in this process (so the exporter sees its spans), with one
    embedded worker; `tracer` None: as OTEL_* say."""
    settings = settings_for(database_url, workers=1, **overrides)
    rt = Runtime(settings, registry, tracer=tracer)
    sock = free_socket()
    server = signoff_server(
        create_app(rt), rt, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield Served(url, rt, client)
    finally:
        server.should_exit = True
        await task
        sock.close()
