"""Two API processes and two worker processes on one PostgreSQL database, with kill -9 of one
of each mid-way: every run finishes, no transition is lost or doubled, and every SSE client
sees every seq exactly once, in order."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
from itertools import pairwise
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse
from sqlalchemy import select

from signoff.engine.storage.schema import HISTORY
from signoff.engine.storage.store import Store
from tests.helpers import free_socket

pytestmark = pytest.mark.slow  # four processes, kill -9 and restarts

RUNS = 300


def port() -> int:
    sock = free_socket()
    number = int(sock.getsockname()[1])
    sock.close()
    return number


class Fleet:
    """The processes of one deployment, restartable by name."""

    def __init__(self, database_url: str) -> None:
        self.env = {
            **os.environ,
            "SIGNOFF_DATABASE_URL": database_url,
            "SIGNOFF_FAILURE_RATE": "0.25",
            "SIGNOFF_RETRY_BASE_S": "0.01",
            "SIGNOFF_RETRY_CAP_S": "0.05",
            "SIGNOFF_POLL_INTERVAL_S": "0.2",
            "SIGNOFF_LEASE_S": "2",
            "SIGNOFF_POOL_SIZE": "5",
        }
        self.apis = {"a1": port(), "a2": port()}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.clients = {n: httpx.AsyncClient(base_url=self.url(n), timeout=10) for n in self.apis}

    def start(self, name: str) -> None:
        if name in self.apis:
            args = ["serve", "--workers", "0", "--port", str(self.apis[name])]
        else:
            args = ["worker", "--concurrency", "8"]
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "signoff", *args],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def kill(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs[name].wait()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=15)
            if proc.poll() is None:
                proc.kill()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.apis[name]}"


async def healthy(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as client:
        for _ in range(600):
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise AssertionError(f"{url} did not come up")


class Follower:
    """An SSE client of one API that resumes with Last-Event-ID whenever its stream drops."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seqs: list[int] = []
        self.reconnects = 0

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=httpx.Timeout(10, read=60)) as c:
            while True:
                last = self.seqs[-1] if self.seqs else 0
                try:
                    async with aconnect_sse(
                        c, "GET", "/api/stream", headers={"Last-Event-ID": str(last)}
                    ) as source:
                        async for message in source.aiter_sse():
                            if message.event == "transition":
                                self.seqs.append(json.loads(message.data)["seq"])
                except (httpx.TransportError, httpx.HTTPStatusError):
                    pass
                self.reconnects += 1
                await asyncio.sleep(0.1)


async def call(fleet: Fleet, method: str, path: str, **kw: Any) -> httpx.Response | None:
    """One request to either API (whichever is up); None if both refused it."""
    names = list(fleet.apis)
    random.shuffle(names)
    for name in names:
        try:
            return await fleet.clients[name].request(method, path, **kw)
        except httpx.TransportError:
            continue
    return None


async def create_runs(fleet: Fleet, ids: list[str]) -> None:
    while len(ids) < RUNS:
        # One key per run, kept across retries: a create whose answer was lost with its API
        # process is replayed by the other API, not made twice.
        key = {"Idempotency-Key": os.urandom(8).hex()}
        body = {"definition": "approval", "input": {"output": 0.9}}
        response = await call(fleet, "POST", "/api/runs", json=body, headers=key)
        while response is None or response.status_code != 201:
            await asyncio.sleep(0.05)
            response = await call(fleet, "POST", "/api/runs", json=body, headers=key)
        ids.append(response.json()["id"])
        await call(fleet, "POST", f"/api/runs/{ids[-1]}/process")


async def drive(fleet: Fleet, run_id: str) -> str:
    response = await call(fleet, "GET", f"/api/runs/{run_id}")
    if response is None or response.status_code != 200:
        return "unknown"
    run = response.json()
    state = str(run["state"])
    if state == "waiting_for_approval":
        reject = random.random() < 0.2 and run["context"].get("decisions") is None
        action, body = ("reject", {"reason": "try again"}) if reject else ("approve", {})
        await call(fleet, "POST", f"/api/runs/{run_id}/{action}", json=body)
    elif state in ("unprocessed", "error"):
        action = "process" if state == "unprocessed" else "retry"
        await call(fleet, "POST", f"/api/runs/{run_id}/{action}")
    return state


async def test_two_apis_two_workers_kill_nine_and_restart(pg_database_url: str) -> None:
    fleet = Fleet(pg_database_url)
    subprocess.run(
        [sys.executable, "-m", "signoff", "migrate"],
        env=fleet.env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    for name in ("a1", "a2", "w1", "w2"):
        fleet.start(name)
    followers: list[Follower] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        await asyncio.gather(healthy(fleet.url("a1")), healthy(fleet.url("a2")))
        followers = [Follower(fleet.url(n)) for n in ("a1", "a1", "a2", "a2")]
        tasks = [asyncio.create_task(f.run()) for f in followers]
        ids: list[str] = []
        creators = [asyncio.create_task(create_runs(fleet, ids)) for _ in range(8)]
        while len(ids) < RUNS // 2:
            await asyncio.sleep(0.05)
        fleet.kill("w1")
        fleet.kill("a1")  # its SSE clients lose their streams mid-flight
        await asyncio.sleep(1.0)
        fleet.start("w1")
        fleet.start("a1")
        await asyncio.gather(*creators)
        for _ in range(400):
            states = await asyncio.gather(*(drive(fleet, i) for i in ids))
            if all(s == "finished" for s in states):
                break
            await asyncio.sleep(0.2)
        assert all(s == "finished" for s in states), {s: states.count(s) for s in set(states)}

        db = Store.open(pg_database_url)
        try:
            async with db.read() as conn:
                rows = (await conn.execute(select(HISTORY).order_by(HISTORY.c.seq))).all()
        finally:
            await db.dispose()
        by_run: dict[str, list[Any]] = {}
        for row in rows:
            by_run.setdefault(row.run_id, []).append(row)
        assert set(by_run) == set(ids)  # no orphan run from a lost answer
        for run_id, items in by_run.items():
            assert [r.version for r in items] == list(range(1, len(items) + 1)), run_id
            for before, after in pairwise(items):
                assert after.business_from == before.business_to, run_id
            events = [r.event for r in items]
            entered = sum(events.count(e) for e in ("process", "reject", "retry"))
            assert events.count("processed") + events.count("failed") == entered, run_id
            assert events.count("approve") == 1, run_id

        all_seqs = [r.seq for r in rows]
        for follower in followers:
            for _ in range(200):
                if follower.seqs[-1:] == all_seqs[-1:]:
                    break
                await asyncio.sleep(0.05)
            assert follower.seqs == all_seqs, (follower.url, len(follower.seqs), len(all_seqs))
        assert sum(f.reconnects for f in followers[:2]) >= 2  # a1's clients did reconnect
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in fleet.clients.values():
            await client.aclose()
        fleet.stop_all()
