"""Traces with OpenTelemetry, through a real server in this process on SQLite and PostgreSQL:
one approve is one connected trace, from its HTTP request through the job it enqueued to the
webhooks both transitions sent; with tracing off, nothing of OpenTelemetry is loaded and jobs
carry no trace context."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from signoff.engine.tracing import TRACE_KEY, Tracer
from signoff.engine.tracing.env import exporter_names
from tests.helpers import Json, assert_problem, eventually
from tests.traces_support import (
    PayJob,
    Served,
    Traced,
    memory_tracer,
    payout_registry,
    traced_server,
)
from tests.webhook_receiver import Receiver, webhook_receiver

OTEL_VARIABLES = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_SDK_DISABLED",
)


@asynccontextmanager
async def payout_server(
    database_url: str, tracer: Tracer | None, job: PayJob
) -> AsyncIterator[tuple[Served, Receiver]]:
    """A server with a webhook subscription to a receiver on loopback."""
    fast = {"webhook_retry_base_s": 0.005, "webhook_retry_cap_s": 0.02}
    async with (
        traced_server(database_url, payout_registry(job), tracer, **fast) as served,
        webhook_receiver() as receiver,
    ):
        answer = await served.client.post("/api/webhooks", json={"url": receiver.url})
        assert answer.status_code == 201, answer.text
        receiver.secret = answer.json()["secret"]
        yield served, receiver


async def waiting_payout(served: Served) -> str:
    answer = await served.client.post("/api/runs", json={"definition": "payout"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def approved(served: Served, receiver: Receiver, run_id: str) -> Json:
    """Approve `run_id` over HTTP; once the job has paid it and the receiver has heard of every
    transition, the run."""
    answer = await served.client.post(f"/api/runs/{run_id}/approve")
    assert answer.status_code == 200, answer.text

    async def settled() -> bool:
        run = (await served.client.get(f"/api/runs/{run_id}")).json()
        events = {r.body["data"].get("event") for r in receiver.received}
        return bool(run["state"] == "paid" and {"approve", "settled"} <= events)

    await eventually(settled)
    return dict((await served.client.get(f"/api/runs/{run_id}")).json())


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def trace_of(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.trace_id)


def parent_id(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def child_of(span: ReadableSpan, parent: ReadableSpan) -> bool:
    return parent_id(span) == span_id(parent)


def one(spans: list[ReadableSpan], **attributes: Any) -> ReadableSpan:
    found = [s for s in spans if all(attrs(s).get(k) == v for k, v in attributes.items())]
    assert len(found) == 1, [(s.name, s.attributes) for s in spans]
    return found[0]


async def test_one_approve_is_one_connected_trace(database_url: str) -> None:
    tracer, traced = memory_tracer()
    job = PayJob()
    async with payout_server(database_url, tracer, job) as (served, receiver):
        run_id = await waiting_payout(served)
        run = await approved(served, receiver, run_id)
        assert run["state"] == "paid"

        approve_route = "POST /api/runs/{run_id}/approve"
        await eventually(_has(traced, approve_route))
        request = traced.named(approve_route)[0]
        assert request.parent is None and request.kind == SpanKind.SERVER  # the root
        trace_id = trace_of(request)

        def in_trace(name: str) -> list[ReadableSpan]:
            return [s for s in traced.named(name) if trace_of(s) == trace_id]

        # The deliveries of both transitions' notifications are the last spans to end.
        heard = [r for r in receiver.received if r.body["data"]["event"] != "create"]
        await eventually(_count(in_trace, "POST", len(heard)))
        await eventually(_count(in_trace, "signoff.job webhook", len(heard)))
        approve = one(in_trace("signoff.transition approve"))
        assert child_of(approve, request)
        assert attrs(approve) == {
            "signoff.event": "approve",
            "signoff.run_id": run_id,
            "signoff.definition": "payout",
            "signoff.seq": attrs(approve)["signoff.seq"],
            "signoff.from": ("waiting",),
            "signoff.to": ("paying",),
            "signoff.lifecycle.from": ("active", "waiting"),
            "signoff.lifecycle.to": ("active", "running"),
        }
        # The job's attempt continues the trace of the transition that enqueued it, and the
        # transition that applies its outcome happens inside the attempt.
        attempt = one(in_trace("signoff.job pay"))
        assert child_of(attempt, approve) and attempt.kind == SpanKind.CONSUMER
        assert attrs(attempt)["signoff.run_id"] == run_id
        settled = one(in_trace("signoff.transition settled"))
        assert child_of(settled, attempt)
        assert attrs(settled)["signoff.to"] == ("paid",)
        # Each transition's webhook delivery is a job of its own in the same trace, whose
        # request span the receiver was told of in `traceparent`.
        deliveries = in_trace("signoff.job webhook")
        assert len(deliveries) == len(heard)
        assert {parent_id(d) for d in deliveries} == {span_id(approve), span_id(settled)}
        posts = in_trace("POST")
        assert {parent_id(p) for p in posts} == {span_id(d) for d in deliveries}
        assert all(p.kind == SpanKind.CLIENT for p in posts)
        told = {int(r.headers["traceparent"].split("-")[2], 16) for r in heard}
        assert told == {span_id(p) for p in posts}
        for r in heard:
            version, trace, _, flags = r.headers["traceparent"].split("-")
            assert (version, int(trace, 16)) == ("00", trace_id) and int(flags, 16) & 1  # sampled
        # The handler never sees the trace context its job carried.
        assert job.seen == [{"amount": 12}]


async def test_a_refused_event_is_an_error_span_and_the_run_is_unchanged(
    database_url: str,
) -> None:
    tracer, traced = memory_tracer()
    async with payout_server(database_url, tracer, PayJob()) as (served, _):
        run_id = await waiting_payout(served)
        before = (await served.client.get(f"/api/runs/{run_id}")).json()
        # A client's own trace context is continued.
        caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        answer = await served.client.post(
            f"/api/runs/{run_id}/events", json={"event": "retry"}, headers={"traceparent": caller}
        )
        assert_problem(answer, 409)
        assert (await served.client.get(f"/api/runs/{run_id}")).json() == before
        await eventually(_has(traced, "signoff.transition retry"))
        refused = one(traced.named("signoff.transition retry"))
        assert refused.status.status_code == StatusCode.ERROR
        assert trace_of(refused) == int("0af7651916cd43dd8448eb211c80319c", 16)
        request = one(traced.named("POST /api/runs/{run_id}/events"))
        assert request.parent is not None and request.parent.span_id == int("b7ad6b7169203331", 16)
        assert child_of(refused, request)


async def test_off_makes_no_spans_and_jobs_carry_no_context(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    job = PayJob()
    async with payout_server(database_url, None, job) as (served, receiver):
        assert not served.runtime.tracer.on
        run_id = await waiting_payout(served)
        await approved(served, receiver, run_id)
        async with served.runtime.store.read() as conn:
            payloads = (await conn.exec_driver_sql("SELECT payload FROM jobs")).all()
        assert payloads and all(TRACE_KEY not in _json(p[0]) for p in payloads)
        assert all("traceparent" not in r.headers for r in receiver.received)
        assert job.seen == [{"amount": 12}]


def test_off_the_engine_never_imports_opentelemetry(tmp_path: Any) -> None:
    # Another process: this one has the SDK loaded by the other tests. Transitions, a job and
    # its outcome load nothing of OpenTelemetry; the app has no tracing plugin. (Litestar
    # itself imports OpenTelemetry's API when it is installed, to look for that plugin.)
    url = f"sqlite+aiosqlite:///{tmp_path}/off.db"
    script = (
        "import asyncio, sys\n"
        "from signoff.engine.runtime import Runtime\n"
        "from tests.helpers import drain, settings_for\n"
        "from signoff.machines.registry import build_registry\n"
        "async def main():\n"
        f"    rt = Runtime(settings_for({url!r}), build_registry(0.0))\n"
        "    await rt.start()\n"
        "    run = await rt.dispatcher.create('approval', actor='t', input={'output': 0.9})\n"
        "    await rt.dispatcher.dispatch(run.run_id, 'process', actor='t')\n"
        "    assert await drain(rt) == 1\n"
        "    print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
        "    from signoff.api.app import create_app\n"
        "    print(sorted(type(p).__name__ for p in create_app(rt).plugins))\n"
        "    await rt.stop()\n"
        "asyncio.run(main())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in OTEL_VARIABLES}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    modules, plugins = out.stdout.strip().splitlines()[-2:]
    assert modules == "[]"
    assert "OpenTelemetryPlugin" not in plugins and "Plugin" in plugins


def test_the_otel_variables_switch_it_on_and_choose_the_exporter(tmp_path: Any) -> None:
    assert exporter_names({}) == []
    assert exporter_names({"OTEL_TRACES_EXPORTER": "none"}) == []
    assert exporter_names({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}) == [
        "otlp_proto_grpc"
    ]
    assert exporter_names(
        {"OTEL_TRACES_EXPORTER": "otlp,console", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}
    ) == ["otlp_proto_http", "console"]
    on = {"OTEL_TRACES_EXPORTER": "console"}
    assert exporter_names({**on, "OTEL_SDK_DISABLED": "true"}) == []
    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        exporter_names({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "udp"})
    # From the environment alone, as `signoff serve` and `signoff worker` start: the console
    # exporter prints each span, named by the service.
    url = f"sqlite+aiosqlite:///{tmp_path}/on.db"
    script = (
        "import asyncio\n"
        "from signoff.engine.runtime import Runtime\n"
        "from tests.helpers import settings_for\n"
        "from signoff.machines.registry import build_registry\n"
        "async def main():\n"
        f"    rt = Runtime(settings_for({url!r}), build_registry(0.0))\n"
        "    await rt.start()\n"
        "    await rt.dispatcher.create('approval', actor='t', input={'output': 0.9})\n"
        "    await rt.stop()\n"
        "asyncio.run(main())\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in OTEL_VARIABLES}
    env |= {**on, "OTEL_SERVICE_NAME": "approvals"}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert '"name": "signoff.transition create"' in out
    assert '"service.name": "approvals"' in out


def _has(traced: Traced, name: str) -> Any:
    async def check() -> bool:
        return bool(traced.named(name))

    return check


def _count(in_trace: Any, name: str, n: int) -> Any:
    async def check() -> bool:
        return len(in_trace(name)) >= n

    return check


def _json(value: Any) -> dict[str, Any]:
    return dict(json.loads(value) if isinstance(value, str) else value)
