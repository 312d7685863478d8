"""What the tests share: databases, settings and runtimes, a live server, and HTTP helpers.

Fixtures and hooks live in conftest.py; everything a test module imports lives here, so no test
module imports from conftest.py or from another test module.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

import asyncpg
import httpx
import msgspec
import pytest
from httpx_sse import aconnect_sse
from playwright.async_api import Browser, Page, expect
from sqlalchemy.engine import make_url

from signoff.api.app import create_app
from signoff.api.metrics import Metrics
from signoff.api.server import server as signoff_server
from signoff.client import SignoffClient
from signoff.engine import Store, upgrade
from signoff.engine.dispatch.dispatcher import utcnow
from signoff.engine.jobs.worker import Worker
from signoff.engine.model.jobs import JobHandler, JobKind
from signoff.engine.model.registry import Registry
from signoff.engine.model.retry import RetryPolicy
from signoff.engine.runtime import Runtime
from signoff.engine.settings import Settings
from signoff.engine.storage import migrate
from signoff.engine.views import RunView
from signoff.machines.registry import build_registry

Json = dict[str, Any]

STRICT = os.environ.get("SIGNOFF_TEST_STRICT") == "1"
PG_ADMIN = os.environ.get("SIGNOFF_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def unavailable(reason: str) -> NoReturn:
    """Skip a test whose infrastructure is missing; under SIGNOFF_TEST_STRICT=1, fail it."""
    if STRICT:
        pytest.fail(f"{reason} (SIGNOFF_TEST_STRICT=1 turns this skip into a failure)")
    pytest.skip(reason)


# --- PostgreSQL databases ------------------------------------------------------------------------


def pg_url(name: str) -> str:
    """The URL of database `name` on the test server, with the async driver."""
    url = make_url(PG_ADMIN).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


async def _admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(PG_ADMIN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable(f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}")


async def create_pg_database(template: str | None = None, prefix: str = "signoff_test") -> str:
    """A new PostgreSQL database, empty or a copy of `template`; returns its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = await _admin()
    try:
        if template is None:
            await conn.execute(f'CREATE DATABASE "{name}"')
        else:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await conn.close()
    return name


async def drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def create_pg_template() -> str:
    """A PostgreSQL database migrated to the current schema, for tests to clone.

    Copying it (CREATE DATABASE … TEMPLATE) is faster than running the migrations in every
    test. Connections to it are then refused: a copy fails while anyone is connected to the
    template."""
    name = await create_pg_database(prefix="signoff_template")
    try:
        store = Store.open(pg_url(name))
        try:
            await upgrade(store)
        finally:
            await store.dispose()
        conn = await _admin()
        try:
            await conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        finally:
            await conn.close()
    except BaseException:
        await drop_pg_database(name)
        raise
    return name


# The example package that lives outside Signoff (examples/expense_report): the tests import it
# from its folder (fixture `example_on_path`); test_example installs it from a built wheel.
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "expense_report"


def run_ok(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a command to completion; its stdout. Fails the test with its output if it fails."""
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


# --- runtimes ------------------------------------------------------------------------------------


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


async def runtime_with_approval_job(database_url: str, handler: JobHandler) -> Runtime:
    """A started runtime whose `approval` job is `handler` (a fake under the real name)."""
    jobs = {"approval": JobKind("approval", handler, "failed")}
    rt = Runtime(settings_for(database_url), build_registry(0.0, extra_jobs=jobs))
    await rt.start()
    return rt


async def drain(rt: Runtime, *, rounds: int = 50, later_s: float = 0.0) -> int:
    """Run due jobs (with a throwaway worker) until none is due; returns how many ran.

    `later_s` runs the worker's clock that far ahead, so timers fall due without sleeping.
    """
    worker = Worker(
        rt.dispatcher,
        rt.store,
        rt.registry,
        concurrency=16,
        lease_s=30.0,
        retry=RetryPolicy(max_attempts=5, base_s=0.0, cap_s=0.0),
        clock=lambda: utcnow() + timedelta(seconds=later_s),
    )
    total = 0
    for _ in range(rounds):
        claimed = await worker.claim(worker.concurrency)
        await asyncio.gather(*(worker.process(job) for job in claimed))
        ran = len(claimed)
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


# --- a live server -------------------------------------------------------------------------------


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


async def waiting_run(client: SignoffClient, **create: Any) -> str:
    """A new approval run (output 0.9) that the job has brought to waiting_for_approval."""
    run = await client.create("approval", input={"output": 0.9}, **create)
    await client.process(run.id)

    async def waiting() -> bool:
        return (await client.get(run.id)).state == "waiting_for_approval"

    await eventually(waiting)
    return run.id


async def cli_serve(env: dict[str, str], *args: str) -> tuple[int | None, str]:
    """Run `signoff serve` until it answers /healthz (or exits); returns (exit code, output)."""
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "signoff",
        "serve",
        "--port",
        str(port),
        *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for _ in range(300):
            if proc.returncode is not None:
                break
            try:
                await client.get("/healthz")
                stream = await client.post(
                    "/api/stream-tokens", headers={"Authorization": "Bearer s3cret-value"}
                )
                token = stream.json()["token"] if stream.status_code == 201 else ""
                async with client.stream("GET", f"/api/stream?token={token}"):
                    pass
                await client.get("/api/runs", headers={"Authorization": "Bearer s3cret-value"})
                await client.get("/api/runs", headers={"Authorization": "Bearer wrong-guess"})
                break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
    if proc.returncode is None:
        proc.terminate()
    output = (await proc.communicate())[0].decode()
    return proc.returncode, output


@asynccontextmanager
async def signoff_serve(
    command: list[str | Path], cwd: Path, env: dict[str, str], *args: str
) -> AsyncIterator[tuple[str, list[str]]]:
    """`signoff serve` (run as `command`) as a process until the block ends, with only `env`'s
    SIGNOFF_* variables and PYTHONPATH; its URL and its log lines so far."""
    async with serve_process(command, cwd, env, *args) as (_proc, url, lines):
        yield url, lines


@asynccontextmanager
async def serve_process(
    command: list[str | Path], cwd: Path, env: dict[str, str], *args: str
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str, list[str]]]:
    """`signoff_serve`, with the process itself too (its pid, to signal it)."""
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNOFF_", "PYTHONPATH"))}
    proc = await asyncio.create_subprocess_exec(
        *command,
        "serve",
        "--port",
        str(port),
        *args,
        cwd=cwd,
        env={**clean, **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    lines: list[str] = []

    async def read() -> None:
        assert proc.stderr is not None
        async for line in proc.stderr:
            lines.append(line.decode())

    reader = asyncio.create_task(read())
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            for _ in range(600):
                assert proc.returncode is None, "".join(lines)
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        yield proc, url, lines
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
        await reader


# --- the HTTP API --------------------------------------------------------------------------------

PROBLEM_TYPE = re.compile(r"urn:signoff:problem:[a-z]+(-[a-z]+)*")


async def create(live: LiveServer, **body: Any) -> Json:
    """POST /api/runs for an approval run (output 0.9 unless `body` says otherwise): 201."""
    response = await live.client.post(
        "/api/runs", json={"definition": "approval", "input": {"output": 0.9}, **body}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def get_run(live: LiveServer, run_id: str) -> Json:
    response = await live.client.get(f"/api/runs/{run_id}")
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == f'"{response.json()["version"]}"'
    return dict(response.json())


async def history(live: LiveServer, run_id: str) -> list[Json]:
    response = await live.client.get(f"/api/runs/{run_id}/history")
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


async def all_runs(live: LiveServer) -> list[Json]:
    return list((await live.client.get("/api/runs", params={"limit": 200})).json()["items"])


def assert_problem(response: httpx.Response, *statuses: int) -> Json:
    """An RFC 9457 problem with one of `statuses`; returns its body."""
    assert response.status_code in statuses, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: Json = response.json()
    assert body["status"] == response.status_code
    assert isinstance(body["detail"], str) and body["detail"]
    assert PROBLEM_TYPE.fullmatch(body["type"]), body["type"]  # named, never a bare status
    return body


@asynccontextmanager
async def unchanged(live: LiveServer, run_id: str) -> AsyncIterator[None]:
    """The run (full view), its history and the list of runs are the same after the block."""
    before = (await get_run(live, run_id), await history(live, run_id), await all_runs(live))
    yield
    after = (await get_run(live, run_id), await history(live, run_id), await all_runs(live))
    assert after == before


# --- access control ------------------------------------------------------------------------------

TOKENS = "vera:viewer:v-secret,otto:operator:o-secret,anna:approver:a-secret,root:admin:r-secret"
BEARER = {
    "viewer": "v-secret",
    "operator": "o-secret",
    "approver": "a-secret",
    "admin": "r-secret",
}


def auth(role: str | None) -> dict[str, str]:
    """The Authorization header of a TOKENS role (none for None, a wrong secret for "bad")."""
    if role is None:
        return {}
    if role == "bad":
        return {"Authorization": "Bearer not-a-secret"}
    return {"Authorization": f"Bearer {BEARER[role]}"}


async def new_run(live: LiveServer, role: str = "operator", **body: Any) -> Json:
    response = await live.client.post(
        "/api/runs",
        json={"definition": "approval", "input": {"output": 0.9}, **body},
        headers=auth(role),
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def snapshot(live: LiveServer, run_id: str) -> Any:
    """The run, its history and the list of runs, as an admin sees them."""
    admin = auth("admin")
    run = (await live.client.get(f"/api/runs/{run_id}", headers=admin)).json()
    history = (await live.client.get(f"/api/runs/{run_id}/history", headers=admin)).json()
    runs = (await live.client.get("/api/runs", headers=admin)).json()
    return run, history, runs


# --- the live feed -------------------------------------------------------------------------------


async def entries(
    client: httpx.AsyncClient, url: str, count: int, last_event_id: int | None = None
) -> list[Json]:
    """Read `count` transition messages from an SSE feed, checking each message's framing."""
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    got: list[Json] = []
    async with aconnect_sse(client, "GET", url, headers=headers) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        async for message in source.aiter_sse():
            if message.event != "transition":
                continue
            entry = json.loads(message.data)
            assert message.id == str(entry["seq"])
            got.append(entry)
            if len(got) == count:
                return got
    raise AssertionError(f"stream ended after {len(got)} of {count} entries")


# --- the browser ---------------------------------------------------------------------------------

CHROMIUM = os.environ.get("SIGNOFF_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


async def signed_in(browser: Browser, url: str, secret: str) -> Page:
    """The monitor at `url`, signed in with a token's secret and following the feed."""
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("pageerror", lambda exc: pytest.fail(f"page error: {exc}"))
    await page.goto(url + "/")
    await page.fill("#token", secret)
    await page.click("#login-button")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live")
    return page


async def downgrade(store: Store, revision: str) -> None:
    """Take the schema down to `revision` (alembic's downgrade, as a migration test starts)."""
    async with store.migrating() as conn:
        await conn.run_sync(migrate._run, "downgrade", revision)
        await conn.commit()
