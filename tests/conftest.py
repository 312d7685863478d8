"""Fixtures and hooks: a fresh database per test on SQLite and PostgreSQL, runtimes, a live server.

What test modules import (helpers, constants, `serve`, …) lives in tests/helpers.py.

On PostgreSQL, the session migrates one template database, the first time a test needs one, and
each test gets a copy of it (CREATE DATABASE … TEMPLATE), dropped afterwards; the template is
dropped when the session ends. Tests of the migrations themselves ask for an empty database:
`empty_database_url`, `empty_pg_database_url`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import uvloop
from playwright.async_api import Browser, async_playwright

from signoff.engine.runtime import Runtime
from signoff.machines.registry import build_registry
from tests.helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    EXAMPLE,
    LiveServer,
    create_pg_database,
    create_pg_template,
    drop_pg_database,
    pg_url,
    run_ok,
    serve,
    settings_for,
    unavailable,
)


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """uvloop, as `signoff serve` runs (with the default loop, aiosqlite round trips here took
    ~50 ms each inside a test server, which made the suite slow, not wrong)."""
    return {"uvloop": _new_loop}


def _new_loop() -> asyncio.AbstractEventLoop:
    loop = uvloop.new_event_loop()
    loop.set_exception_handler(_on_loop_error)
    return loop


def _on_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """pytest-timeout fails a hung test by raising from its SIGALRM handler. uvloop runs that
    handler inside a callback of its own and hands what it raises here (the test would hang on),
    so end the loop's tasks instead: the test fails with a traceback where it was waiting."""
    exc = context.get("exception")
    if isinstance(exc, pytest.fail.Exception) and "pytest-timeout" in str(exc):
        for task in asyncio.all_tasks(loop):
            task.cancel(str(exc))
        return
    loop.default_exception_handler(context)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """The name of a PostgreSQL database at the current schema, migrated once per session.

    Set up outside any test's event loop, on a loop of its own (a session-scoped async fixture
    would need a session-scoped loop)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        name = runner.run(create_pg_template())
    try:
        yield name
    finally:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(drop_pg_database(name))


@pytest.fixture
async def pg_database_url(pg_template: str) -> AsyncIterator[str]:
    """A fresh PostgreSQL database at the current schema (a copy of the session's template)."""
    name = await create_pg_database(template=pg_template)
    try:
        yield pg_url(name)
    finally:
        await drop_pg_database(name)


@pytest.fixture
async def empty_pg_database_url() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database (no schema), for tests of migrating from nothing."""
    name = await create_pg_database()
    try:
        yield pg_url(name)
    finally:
        await drop_pg_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database: a new SQLite file (which the runtime's start migrates), or a new
    PostgreSQL database at the current schema, dropped afterwards."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'signoff.db'}"
    return cast(str, request.getfixturevalue("pg_database_url"))


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database with no schema: a new SQLite file, or a new PostgreSQL
    database dropped afterwards."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'signoff.db'}"
    return cast(str, request.getfixturevalue("empty_pg_database_url"))


@pytest.fixture
async def runtime(database_url: str) -> AsyncIterator[Runtime]:
    """A started runtime with no background workers: tests run jobs with `drain()`."""
    rt = Runtime(settings_for(database_url), build_registry(0.0))
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


@pytest.fixture
async def live_server(database_url: str) -> AsyncIterator[LiveServer]:
    async with serve(database_url) as live:
        yield live


@pytest.fixture
def example_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example package `expense_report` importable from its folder."""
    monkeypatch.syspath_prepend(str(EXAMPLE))


@pytest.fixture(scope="session")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with Signoff's built wheel and the example package's wheel installed
    from them (their dependencies from the package index), as a user installs them."""
    root = tmp_path_factory.mktemp("wheels")
    dist = root / "dist"
    for project in (EXAMPLE.parents[1], EXAMPLE):
        run_ok(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, project)
    venv = root / "venv"
    run_ok(sys.executable, "-m", "venv", venv)
    run_ok(venv / "bin" / "pip", "install", "-q", *sorted(dist.glob("*.whl")))
    return venv


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian Chromium under Playwright."""
    if not Path(CHROMIUM).exists():
        unavailable(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()
