"""Storage failures through the real server: a full disk (SQLite on a small tmpfs), a
PostgreSQL restart and PostgreSQL refusing connections answer 503 storage-unavailable with
Retry-After, /healthz says so, nothing is half-written, and service resumes by itself once the
cause goes away."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from signoff.engine.errors import StorageUnavailableError
from signoff.engine.storage.migrate import upgrade
from signoff.engine.storage.schema import IDEMPOTENCY
from signoff.engine.storage.statements import sql
from signoff.engine.storage.store import Store
from tests.helpers import PG_ADMIN, LiveServer, eventually, serve, unavailable

Json = dict[str, Any]
_INSERT = sql(
    "INSERT INTO idempotency (key, actor, route, request_hash, created, body, created_at)"
    " VALUES ($1, 't', 'r', 'h', false, $2, $3)"
)

pytestmark = pytest.mark.slow  # full disks, and a PostgreSQL restart


# Infrastructure -------------------------------------------------------------------------


@contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `path` (root only), unmounted afterwards."""
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        unavailable(f"cannot mount a tmpfs (root needed): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(filler: Path, *, leave: int = 0) -> None:
    """Grow `filler` until the disk has at most `leave` bytes free (0: until ENOSPC)."""
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        if leave:
            stat = os.statvfs(filler)
            os.write(fd, bytes(max(0, stat.f_bavail * stat.f_frsize - leave)))
            return
        for chunk in (65536, 4096, 1):
            try:
                while True:
                    os.write(fd, bytes(chunk))
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
    finally:
        os.close(fd)


@contextmanager
def private_cluster() -> Iterator[tuple[str, Any]]:
    """A PostgreSQL cluster of this test's own (pg_createcluster, trust auth, a free port), so
    stopping and starting it disturbs nothing else running on the machine's server; yields its
    URL and `control(action)` (`stop`, `start`: start waits until it accepts)."""
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions or shutil.which("pg_createcluster") is None:
        unavailable("pg_createcluster is needed for a PostgreSQL cluster to restart")
    version, name = versions[-1], f"signoff_{uuid.uuid4().hex[:8]}"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    made = subprocess.run(
        ["pg_createcluster", version, name, "-p", str(port), "--start", "--", "-A", "trust"],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        unavailable(f"pg_createcluster failed: {made.stderr.strip()}")

    def control(action: str) -> None:
        args = ["-m", "fast"] if action == "stop" else []
        subprocess.run(["pg_ctlcluster", version, name, action, *args], check=True)
        if action == "start":
            ready = ["pg_isready", "-h", "127.0.0.1", "-p", str(port), "-t", "60"]
            subprocess.run(ready, check=True)

    try:
        subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", str(port), "-t", "60"], check=True)
        yield f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres", control
    finally:
        subprocess.run(["pg_dropcluster", "--stop", version, name], capture_output=True)


class LimitedRole:
    """A non-superuser role that owns a fresh database and may hold at most `limit`
    connections (superusers ignore connection limits)."""

    def __init__(self, name: str, limit: int) -> None:
        self.name = name
        self.limit = limit
        self.held: list[asyncpg.Connection] = []

    def url(self, drivername: str) -> str:
        url = make_url(PG_ADMIN).set(
            drivername=drivername, username=self.name, password=None, database=self.name
        )
        return url.render_as_string(hide_password=False)

    async def take_every_slot(self, admin: asyncpg.Connection) -> None:
        """Hold every connection the role may open: connect until PostgreSQL refuses one,
        then end the role's other backends (the server's) and keep their slots closed.

        Reconnecting, the server would race the test for each freed slot (and its refused
        attempts make the test's own attempts fail spuriously), so the limit is lowered to
        the connections held first: no slot is free at any moment, and none frees up."""
        while True:
            try:
                self.held.append(await asyncpg.connect(self.url("postgresql"), timeout=5))
            except asyncpg.TooManyConnectionsError:
                break
        assert self.held, "the server held every slot"
        await admin.execute(f'ALTER ROLE "{self.name}" CONNECTION LIMIT {len(self.held)}')
        # The timeout makes each call wait until the backend has exited.
        await admin.execute(
            "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
            " WHERE usename = $1 AND NOT pid = ANY($2::int[])",
            self.name,
            [conn.get_server_pid() for conn in self.held],
        )
        backends = await admin.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", self.name
        )
        assert backends == len(self.held), f"{backends} backends, {len(self.held)} ours"

    async def release(self, admin: asyncpg.Connection) -> None:
        """Give the slots back, at the limit the role was created with."""
        await admin.execute(f'ALTER ROLE "{self.name}" CONNECTION LIMIT {self.limit}')
        while self.held:
            await self.held.pop().close()


@asynccontextmanager
async def limited_role(limit: int) -> AsyncIterator[tuple[LimitedRole, asyncpg.Connection]]:
    """A LimitedRole and a superuser connection; the role and its database dropped afterwards."""
    name = f"signoff_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = await asyncpg.connect(PG_ADMIN, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        unavailable(f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}")
    role = LimitedRole(name, limit)
    try:
        await admin.execute(f'CREATE ROLE "{name}" LOGIN NOSUPERUSER CONNECTION LIMIT {limit}')
        try:
            await admin.execute(f'CREATE DATABASE "{name}" OWNER "{name}"')
            yield role, admin
        finally:
            await role.release(admin)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'DROP ROLE "{name}"')
    finally:
        await admin.close()


# The API --------------------------------------------------------------------------------


def assert_storage_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "urn:signoff:problem:storage-unavailable"
    assert int(response.headers["retry-after"]) > 0


async def create(live: LiveServer, ref_id: str | None = None) -> httpx.Response:
    body: Json = {"definition": "approval", "input": {"output": 0.9}}
    if ref_id is not None:
        body["ref_id"] = ref_id
    return await live.client.post("/api/runs", json=body)


async def snapshot(live: LiveServer, run_id: str) -> tuple[Json, list[Json]]:
    """The run and its history, as a client sees them."""
    run = await live.client.get(f"/api/runs/{run_id}")
    history = await live.client.get(f"/api/runs/{run_id}/history")
    assert run.status_code == history.status_code == 200, run.text
    return run.json(), history.json()["items"]


async def waiting_run(live: LiveServer) -> str:
    """A run the embedded worker brought to waiting_for_approval."""
    response = await create(live)
    assert response.status_code == 201, response.text
    run_id: str = response.json()["id"]
    assert (await live.client.post(f"/api/runs/{run_id}/process")).status_code == 200

    async def waiting() -> bool:
        state: str = (await snapshot(live, run_id))[0]["state"]
        return state == "waiting_for_approval"

    await eventually(waiting)
    return run_id


async def refs(live: LiveServer, prefix: str) -> set[str]:
    response = await live.client.get("/api/runs", params={"ref_id_prefix": prefix, "limit": 200})
    assert response.status_code == 200, response.text
    return {run["ref_id"] for run in response.json()["items"]}


async def healthy(live: LiveServer) -> bool:
    return (await live.client.get("/healthz")).status_code == 200


# Full disk ------------------------------------------------------------------------------


async def test_a_full_disk_refuses_every_write_with_503_until_space_is_freed(
    tmp_path: Path,
) -> None:
    with small_disk(tmp_path / "disk", "4m") as disk:
        async with serve(f"sqlite+aiosqlite:///{disk / 'signoff.db'}") as live:
            run_id = await waiting_run(live)
            before = await snapshot(live, run_id)
            fill(disk / "filler")  # nothing left: every commit needs a new WAL frame

            burst = await asyncio.gather(*(create(live, f"full-{i}") for i in range(8)))
            for response in burst:  # one group commit failed: all its members fail
                assert_storage_unavailable(response)
            assert_storage_unavailable(await live.client.post(f"/api/runs/{run_id}/approve"))
            assert_storage_unavailable(await live.client.get("/healthz"))
            assert await snapshot(live, run_id) == before
            assert await refs(live, "full-") == set()

            (disk / "filler").unlink()
            await eventually(lambda: healthy(live))
            approved = await live.client.post(f"/api/runs/{run_id}/approve")
            assert approved.status_code == 200, approved.text
            assert (await create(live, "full-after")).status_code == 201
            assert await refs(live, "full-") == {"full-after"}


async def test_a_disk_filling_up_loses_no_acknowledged_write(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", "4m") as disk:
        async with serve(f"sqlite+aiosqlite:///{disk / 'signoff.db'}") as live:
            fill(disk / "filler", leave=160 * 1024)  # a burst of creates fits at first
            acknowledged: set[str] = set()
            refused = False
            for n in range(40):  # bursts of concurrent creates, until the disk refuses one
                names = [f"burst-{n}-{i}" for i in range(8)]
                responses = await asyncio.gather(*(create(live, name) for name in names))
                for name, response in zip(names, responses, strict=True):
                    if response.status_code == 201:
                        acknowledged.add(name)
                    else:
                        assert_storage_unavailable(response)
                        refused = True
                if refused:
                    break
            assert refused, "the disk never filled up"
            assert acknowledged, "no write fitted at all"

            (disk / "filler").unlink()
            await eventually(lambda: healthy(live))
            assert await refs(live, "burst-") == acknowledged
            assert (await create(live, "burst-after")).status_code == 201


async def test_a_group_sqlite_rolls_back_on_a_full_disk_fails_every_member(
    tmp_path: Path,
) -> None:
    """A statement that spills the page cache on a full disk makes SQLite roll back the whole
    transaction, with the savepoints of the group's other members in it."""
    with small_disk(tmp_path / "disk", "4m") as disk:
        db = Store.open(f"sqlite+aiosqlite:///{disk / 'signoff.db'}")
        try:
            await upgrade(db)
            now = datetime.now(UTC)
            fill(disk / "filler")

            async def small() -> None:
                async with db.write() as tx:
                    await tx.execute(_INSERT, "small", "{}", now)
                    await asyncio.sleep(0)  # the big one queues up: this one hands on to it

            async def big() -> None:
                async with db.write() as tx:
                    for i in range(2000):  # 4 MB, more than the 2 MB page cache holds
                        await tx.execute(_INSERT, f"big-{i}", "x" * 2000, now)

            async with asyncio.timeout(30):
                results = await asyncio.gather(small(), big(), return_exceptions=True)
            assert [type(r) for r in results] == [StorageUnavailableError] * 2

            (disk / "filler").unlink()
            await small()
            async with db.read() as conn:
                keys = set((await conn.execute(select(IDEMPOTENCY.c.key))).scalars())
            assert keys == {"small"}
        finally:
            await db.dispose()


# PostgreSQL -----------------------------------------------------------------------------


async def test_a_postgresql_restart_answers_503_and_service_resumes() -> None:
    with private_cluster() as (url, control):
        db = Store.open(url)
        try:
            await upgrade(db)
        finally:
            await db.dispose()
        await restart_mid_service(url, control)


async def restart_mid_service(url: str, pg_cluster: Any) -> None:
    async with serve(url) as live:
        run_id = await waiting_run(live)
        before = await snapshot(live, run_id)
        try:
            await asyncio.to_thread(pg_cluster, "stop")
            assert_storage_unavailable(await create(live, "outage"))
            assert_storage_unavailable(await live.client.get(f"/api/runs/{run_id}"))
            assert_storage_unavailable(await live.client.post(f"/api/runs/{run_id}/approve"))
            assert_storage_unavailable(await live.client.get("/healthz"))
        finally:
            await asyncio.to_thread(pg_cluster, "start")

        await eventually(lambda: healthy(live), timeout=30)

        async def created() -> bool:
            return (await create(live, "after")).status_code == 201

        await eventually(created, timeout=30)
        await assert_intact_and_serving(live, run_id, before, refused="outage")


async def test_too_many_connections_answers_503_and_service_resumes() -> None:
    # At most 2 + 2 read, 2 write and 1 LISTEN connections: the server fits in the limit.
    async with (
        limited_role(8) as (role, admin),
        serve(role.url("postgresql+asyncpg"), pool_size=2) as live,
    ):
        run_id = await waiting_run(live)
        before = await snapshot(live, run_id)
        try:
            await role.take_every_slot(admin)
            assert_storage_unavailable(await create(live, "crowded"))
            assert_storage_unavailable(await live.client.post(f"/api/runs/{run_id}/approve"))
            read = await live.client.get(f"/api/runs/{run_id}")
            if read.status_code != 200:  # 200 only if a read connection survived
                assert_storage_unavailable(read)
            assert_storage_unavailable(await live.client.get("/healthz"))
        finally:
            await role.release(admin)

        await eventually(lambda: healthy(live))
        assert (await create(live, "after")).status_code == 201
        await assert_intact_and_serving(live, run_id, before, refused="crowded")


async def assert_intact_and_serving(
    live: LiveServer, run_id: str, before: tuple[Json, list[Json]], *, refused: str
) -> None:
    """After an outage: the run is as it was, no refused create left a run, and it decides."""
    assert await snapshot(live, run_id) == before
    run, history = before
    assert run["version"] == len(history)
    assert await refs(live, refused) == set()
    approved = await live.client.post(f"/api/runs/{run_id}/approve")
    assert approved.status_code == 200, approved.text
