"""kill -9 of `signoff serve` mid-load loses no committed transition and doubles nothing."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.helpers import free_socket

pytestmark = pytest.mark.slow  # servers killed with SIGKILL under load, then restarted

RUNS = 40


@contextmanager
def serve(database_url: str, port: int) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "SIGNOFF_DATABASE_URL": database_url,
        "SIGNOFF_PORT": str(port),
        "SIGNOFF_FAILURE_RATE": "0.25",
        "SIGNOFF_RETRY_BASE_S": "0.01",
        "SIGNOFF_RETRY_CAP_S": "0.05",
        "SIGNOFF_POLL_INTERVAL_S": "0.05",
        "SIGNOFF_LEASE_S": "1.5",  # jobs leased by the killed process come back quickly
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "signoff", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


async def wait_healthy(client: httpx.AsyncClient) -> None:
    for _ in range(600):
        try:
            if (await client.get("/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("server did not start")


async def drive(client: httpx.AsyncClient, run_id: str) -> str:
    """Push a run one step toward `finished`; returns its state."""
    run = (await client.get(f"/api/runs/{run_id}")).json()
    action = {"unprocessed": "process", "waiting_for_approval": "approve", "error": "retry"}
    if run["state"] in action:
        await client.post(f"/api/runs/{run_id}/{action[run['state']]}")
    return str(run["state"])


async def load(client: httpx.AsyncClient, created: list[str]) -> None:
    """Create runs and push each through the chart until the server dies."""
    try:
        while len(created) < RUNS:
            response = await client.post(
                "/api/runs", json={"definition": "approval", "input": {"output": 0.9}}
            )
            created.append(response.json()["id"])
            for _ in range(3):
                await drive(client, created[-1])
    except httpx.TransportError:
        return


async def all_runs(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/runs", params=params)).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def test_sigkill_mid_load_then_restart_finishes_every_run(database_url: str) -> None:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    created: list[str] = []
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        with serve(database_url, port) as proc:
            await wait_healthy(client)
            workers = [asyncio.create_task(load(client, created)) for _ in range(8)]
            while len(created) < RUNS // 2:
                await asyncio.sleep(0.01)
            os.kill(proc.pid, signal.SIGKILL)  # mid-load: requests and jobs are in flight
            await asyncio.gather(*workers)
        with serve(database_url, port):
            await wait_healthy(client)
            runs = await all_runs(client)
            assert set(created) <= {r["id"] for r in runs}
            for _ in range(600):
                states = [await drive(client, r["id"]) for r in runs]
                if all(s == "finished" for s in states):
                    break
                await asyncio.sleep(0.05)
            for run in runs:
                await assert_clean_history(client, run["id"])


async def assert_clean_history(client: httpx.AsyncClient, run_id: str) -> None:
    run = (await client.get(f"/api/runs/{run_id}")).json()
    assert (run["state"], run["lifecycle"]) == ("finished", "completed")
    items = (await client.get(f"/api/runs/{run_id}/history")).json()["items"]
    # No gap and no duplicate: versions 1..n, one entry each, each starting where the last ended.
    assert [e["run"]["version"] for e in items] == list(range(1, run["version"] + 1))
    for before, after in itertools.pairwise(items):
        assert after["seq"] > before["seq"]
        assert after["business"]["from"] == before["business"]["to"]
    events = [e["event"] for e in items]
    assert events.count("approve") == 1
    # Every entry into sending_to_queue got exactly one job outcome: none lost, none doubled.
    entered = sum(events.count(e) for e in ("process", "reject", "retry"))
    assert events.count("processed") + events.count("failed") == entered
