"""`signoff serve --processes N`: N server processes on one port, one database, one feed, and
stopped together."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from tests.helpers import entries, serve_process


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(p) for p in text.split()]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie the test's own child (the parent server) has not reaped yet counts as gone.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


@asynccontextmanager
async def served(
    database_url: str, processes: int, cwd: Path
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    env = {"SIGNOFF_DATABASE_URL": database_url, "SIGNOFF_FAILURE_RATE": "0"}
    command: list[str | Path] = [sys.executable, "-m", "signoff"]
    async with serve_process(command, cwd, env, "--processes", str(processes)) as (proc, url, _):
        yield proc, url


async def test_two_processes_serve_one_port_and_one_feed(database_url: str, tmp_path: Path) -> None:
    async with served(database_url, 2, tmp_path) as (proc, base):
        pids = children(proc.pid)
        assert len(pids) == 2
        async with httpx.AsyncClient(base_url=base, timeout=30) as follower:
            reader = asyncio.create_task(entries(follower, "/api/stream", 12))
            await asyncio.sleep(0.5)  # the follower is subscribed
            for _ in range(12):  # each on a new connection: the kernel picks the process
                async with httpx.AsyncClient(base_url=base) as client:
                    made = await client.post("/api/runs", json={"definition": "approval"})
                    assert made.status_code == 201
            got = await asyncio.wait_for(reader, 30)
        # Every create, from either process, reached the one follower once and in seq order.
        assert [e["event"] for e in got] == ["create"] * 12
        seqs = [e["seq"] for e in got]
        assert seqs == sorted(seqs) and len(set(seqs)) == 12
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        assert all(gone(pid) for pid in pids)


async def test_one_process_dying_stops_the_set(tmp_path: Path) -> None:
    async with served(f"sqlite:///{tmp_path / 'db.sqlite'}", 2, tmp_path) as (proc, _base):
        first, second = children(proc.pid)
        os.kill(first, signal.SIGKILL)
        assert await asyncio.wait_for(proc.wait(), 30) == 1  # a supervisor restarts the set
        assert gone(second)


async def test_processes_must_be_at_least_one(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signoff", "serve", "--processes", "0",
        env={**os.environ, "SIGNOFF_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output = (await asyncio.wait_for(proc.communicate(), 60))[0].decode()
    assert proc.returncode == 2
    assert "SIGNOFF_PROCESSES must be a whole number of 1 or more" in output
    assert not (tmp_path / "db.sqlite").exists()  # refused before anything was created
