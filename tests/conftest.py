"""Shared fixtures: a fresh database per test on SQLite and PostgreSQL, runtimes, a live server."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
import uvloop
from signoff.api.app import create_app
from signoff.api.metrics import Metrics
from signoff.api.server import server as signoff_server
from signoff.engine.dispatch.dispatcher import utcnow
from signoff.engine.jobs.retry import RetryPolicy
from signoff.engine.jobs.worker import Worker
from signoff.engine.model.definition import JobKind, Registry
from signoff.engine.runtime import Runtime
from signoff.engine.settings import Settings
from signoff.engine.views import RunView
from signoff.machines.registry import build_registry
from sqlalchemy.engine import make_url

from signoff.client import SignoffClient

STRICT = os.environ.get("SIGNOFF_TEST_STRICT") == "1"
PG_ADMIN = os.environ.get("SIGNOFF_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """uvloop, as `signoff serve` runs (with the default loop, aiosqlite round trips here took
    ~50 ms each inside a test server, which made the suite slow, not wrong)."""
    return {"uvloop": uvloop.new_event_loop}


def unavailable(reason: str) -> None:
    """Skip a test whose infrastructure is missing; under SIGNOFF_TEST_STRICT=1, fail it."""
    if STRICT:
        pytest.fail(f"{reason} (SIGNOFF_TEST_STRICT=1 turns this skip into a failure)")
    pytest.skip(reason)


async def _create_pg_database() -> str:
    name = f"signoff_test_{uuid.uuid4().hex[:12]}"
    try:
        conn = await asyncpg.connect(PG_ADMIN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable(f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def _drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def pg_url(name: str) -> str:
    url = make_url(PG_ADMIN).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database: a SQLite file, or a new PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'signoff.db'}"
        return
    name = await _create_pg_database()
    try:
        yield pg_url(name)
    finally:
        await _drop_pg_database(name)


def settings_for(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = dict(
        database_url=database_url,
        failure_rate=0.0,
        workers=0,
        poll_interval_s=0.02,
        retry_base_s=0.005,
        retry_cap_s=0.02,
        lease_s=30.0,
    )
    values.update(overrides)
    return Settings(**values)


async def runtime_with_approval_job(database_url: str, handler: Any) -> Runtime:
    """A started runtime whose `approval` job is `handler` (a fake under the real name)."""
    jobs = {"approval": JobKind("approval", handler, "failed")}
    rt = Runtime(settings_for(database_url), build_registry(0.0, extra_jobs=jobs))
    await rt.start()
    return rt


@pytest.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    """A started runtime with no background workers: tests run jobs with `drain()`."""
    rt = Runtime(settings_for(database_url), build_registry(0.0))
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


async def drain(rt: Runtime, *, rounds: int = 50, later_s: float = 0.0) -> int:
    """Run due jobs (with a throwaway worker) until none is due; returns how many ran.

    `later_s` runs the worker's clock that far ahead, so timers fall due without sleeping.
    """
    worker = Worker(
        rt.dispatcher,
        rt.queue,
        rt.registry,
        concurrency=16,
        lease_s=30.0,
        retry=RetryPolicy(max_attempts=5, base_s=0.0, cap_s=0.0),
        clock=lambda: utcnow() + timedelta(seconds=later_s),
    )
    total = 0
    for _ in range(rounds):
        ran = await worker.run_once()
        total += ran
        if not ran:
            return total
    return total


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    """Wait until `check()` is true; fail after `timeout` seconds (a bound, not an assertion)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def decode_view(body: bytes) -> RunView:
    return msgspec.json.decode(body, type=RunView)


class LiveServer:
    def __init__(self, url: str, runtime: Runtime, client: httpx.AsyncClient) -> None:
        self.url = url
        self.runtime = runtime
        self.client = client


def free_socket(sndbuf: int | None = None, port: int = 0) -> socket.socket:
    """A listening socket on a free loopback port; `sndbuf` caps each connection's send buffer
    (accepted sockets inherit it), so a client that stops reading blocks the server quickly."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if sndbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    sock.bind(("127.0.0.1", port))
    return sock


@asynccontextmanager
async def serve(
    database_url: str,
    sndbuf: int | None = None,
    port: int = 0,
    registry: Registry | None = None,
    **overrides: Any,
) -> AsyncIterator[LiveServer]:
    """The real app under uvicorn on a free loopback port (or `port`), with one embedded
    worker."""
    registry = registry or build_registry(0.0)
    rt = Runtime(settings_for(database_url, workers=1, **overrides), registry, Metrics())
    app = create_app(rt)
    sock = free_socket(sndbuf, port)
    port = sock.getsockname()[1]
    server = signoff_server(
        app, rt, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            yield LiveServer(url, rt, client)
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def live_server(database_url: str) -> AsyncIterator[LiveServer]:
    async with serve(database_url) as live:
        yield live


@pytest.fixture
async def pg_database_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database, for tests of PostgreSQL-only behaviour."""
    name = await _create_pg_database()
    try:
        yield pg_url(name)
    finally:
        await _drop_pg_database(name)


async def waiting_run(client: SignoffClient, **create: Any) -> str:
    """A new approval run (output 0.9) that the job has brought to waiting_for_approval."""
    run = await client.create("approval", input={"output": 0.9}, **create)
    await client.process(run.id)

    async def waiting() -> bool:
        return (await client.get(run.id)).state == "waiting_for_approval"

    await eventually(waiting)
    return run.id
