"""kill -9 of `signoff serve` while it delivers webhooks: another server on the same database
delivers every notification, and a delivery that landed twice carries one id both times."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.helpers import BEARER, TOKENS, eventually, free_socket
from tests.webhook_receiver import webhook_receiver

pytestmark = pytest.mark.slow  # servers killed with SIGKILL mid-delivery, then restarted

RUNS = 6
ADMIN = {"Authorization": f"Bearer {BEARER['admin']}"}


@contextmanager
def server(database_url: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = {
        **os.environ,
        "SIGNOFF_DATABASE_URL": database_url,
        "SIGNOFF_PORT": str(port),
        "SIGNOFF_TOKENS": TOKENS,
        "SIGNOFF_FAILURE_RATE": "0",
        "SIGNOFF_POLL_INTERVAL_S": "0.05",
        "SIGNOFF_LEASE_S": "1.5",  # deliveries leased by the killed process come back quickly
        "SIGNOFF_WEBHOOK_TIMEOUT_S": "5",  # longer than the receiver's hang: it is in flight
        "SIGNOFF_WEBHOOK_RETRY_BASE_S": "0.01",
        "SIGNOFF_WEBHOOK_RETRY_CAP_S": "0.05",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "signoff", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


async def healthy(client: httpx.AsyncClient) -> None:
    async def up() -> bool:
        try:
            return (await client.get("/healthz")).status_code == 200
        except httpx.TransportError:
            return False

    await eventually(up, timeout=60)


async def drive(client: httpx.AsyncClient, run_ids: list[str]) -> None:
    """Take each run one step toward its end, creating them first."""
    while len(run_ids) < RUNS:
        body = {"definition": "approval", "input": {"output": 0.9}}
        created = await client.post("/api/runs", json=body, headers=ADMIN)
        run_ids.append(created.json()["id"])
    for run_id in run_ids:
        run = (await client.get(f"/api/runs/{run_id}", headers=ADMIN)).json()
        step = {"unprocessed": "process", "waiting_for_approval": "approve"}.get(run["state"])
        if step:
            await client.post(f"/api/runs/{run_id}/{step}", headers=ADMIN)


@pytest.mark.timeout(240)
async def test_kill_nine_mid_delivery_loses_no_notification(database_url: str) -> None:
    # Every 2nd request is held for a second (then lands), every 5th fails.
    async with webhook_receiver(hang_every=2, hang_s=1.0, fail_every=5) as receiver:
        run_ids: list[str] = []
        with server(database_url) as (first, url):
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                await healthy(client)
                response = await client.post(
                    "/api/webhooks",
                    json={"url": receiver.url, "events": ["transition"]},
                    headers=ADMIN,
                )
                hook: dict[str, Any] = response.json()
                receiver.secret = hook["secret"]
                await drive(client, run_ids)

                async def in_flight() -> bool:
                    return receiver.hanging > 0

                await eventually(in_flight, timeout=30)
                first.send_signal(signal.SIGKILL)  # mid-delivery: a request is held open
                first.wait(timeout=30)
        with server(database_url) as (_, url):
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                await healthy(client)
                expected: set[str] = set()

                async def finished() -> bool:
                    await drive(client, run_ids)
                    states = [
                        (await client.get(f"/api/runs/{r}", headers=ADMIN)).json()["state"]
                        for r in run_ids
                    ]
                    return all(s == "finished" for s in states)

                await eventually(finished, timeout=60)
                transitions = 0
                for run_id in run_ids:
                    history = await client.get(f"/api/runs/{run_id}/history", headers=ADMIN)
                    transitions += len(history.json()["items"])

                async def delivered() -> bool:
                    nonlocal expected
                    page = await client.get(
                        f"/api/webhooks/{hook['id']}/deliveries",
                        params={"limit": 200},
                        headers=ADMIN,
                    )
                    items = page.json()["items"]
                    last[:] = items
                    expected = {d["message_id"] for d in items}
                    done = all(d["status"] == "done" for d in items)
                    return len(items) == transitions and done and receiver.ids() >= expected

                last: list[dict[str, Any]] = []
                try:
                    await eventually(delivered, timeout=60)
                except AssertionError:
                    raise AssertionError(
                        f"{transitions} transitions; deliveries: "
                        f"{[(d['id'], d['status'], d['attempts'], d['last_error']) for d in last]}"
                    ) from None
    assert receiver.ids() == expected and receiver.refused == []
    times = Counter(r.id for r in receiver.received)
    twice = [msg_id for msg_id, n in times.items() if n > 1]
    assert twice, "the request held when the server died landed, and was delivered again"
    for msg_id in twice:
        bodies = [r.body for r in receiver.received if r.id == msg_id]
        assert all(b == bodies[0] for b in bodies)  # a duplicate is the same notification
