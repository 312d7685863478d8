"""Webhook delivery latency: from a transition to the receiver's 200, at 200 transitions/s.

    .venv/bin/python -m bench.webhooks [--backend sqlite|pg|both] [--rate 200] [--seconds 15]
                                       [--reps 3] [--save]

`signoff serve` (one embedded worker) with one subscription to every notification, pointing at
a loopback receiver (bench/webhook_sink.py, a separate process that answers 200 at once). An
open-loop driver sends `approve` to prepared waiting runs at `rate` per second, whatever the
answers' pace. Latency = the receiver's arrival time − the message's `timestamp`: the
transition's time, which is also its delivery job's `created_at` (both are the transaction's
`now`, taken just before its commit).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx

from bench.common import percentile
from bench.http import prepare_waiting
from bench.server import signoff_server
from tests.helpers import free_socket


@asynccontextmanager
async def sink() -> AsyncIterator[str]:
    """The URL of a fresh receiver process (bench/webhook_sink.py)."""
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.webhook_sink", str(port), stdout=subprocess.PIPE
    )
    assert proc.stdout is not None
    await proc.stdout.readline()  # "ready"
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        proc.terminate()
        await proc.wait()


async def arrivals(url: str) -> list[tuple[float, str, str, str]]:
    async with httpx.AsyncClient() as client:
        found = (await client.get(url.replace("/hook", "/arrivals"))).json()
    return [tuple(a) for a in found]


async def subscribe(client: httpx.AsyncClient, url: str) -> None:
    """One subscription to every notification of every definition (an open server: admin)."""
    made = await client.post("/api/webhooks", json={"url": url})
    assert made.status_code == 201, made.text


class Approver:
    """An open-loop HTTP client for `POST /api/runs/{id}/approve`: raw HTTP/1.1 on keep-alive
    connections, a new one whenever all are busy (httpx cost ~1 ms of CPU a request, enough to
    hold the driver below 200/s on this 2-CPU machine)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.statuses: Counter[int] = Counter()
        self.took: list[float] = []

    async def approve(self, run_id: str) -> None:
        started = time.perf_counter()
        request = (
            f"POST /api/runs/{run_id}/approve HTTP/1.1\r\nhost: 127.0.0.1:{self.port}\r\n"
            "content-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
        ).encode()
        for _attempt in range(2):  # the server may have closed an idle connection: once more
            if self.idle:
                reader, writer = self.idle.pop()
            else:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                continue
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            self.took.append(time.perf_counter() - started)
            self.statuses[int(head.split(b" ")[1])] += 1
            self.idle.append((reader, writer))
            return
        self.statuses[0] += 1  # no answer

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


async def delivery_latency(
    backend: str, rate: int, seconds: int, concurrency: int = 8
) -> dict[str, Any]:
    """`concurrency`: the embedded worker's job slots (SIGNOFF_CONCURRENCY, default 8)."""
    n = rate * seconds
    ids: list[str] = []
    env = {"SIGNOFF_CONCURRENCY": str(concurrency)}
    async with (
        sink() as hook,
        signoff_server(backend, lambda url: prepare_waiting(url, n, ids), **env) as (base, _),
    ):
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            await subscribe(client, hook)
        driver = Approver(int(base.rsplit(":", 1)[1]))
        began = time.perf_counter()
        sent = []
        for i, run_id in enumerate(ids):  # open loop: the i-th request leaves at i / rate
            await asyncio.sleep(max(0.0, began + i / rate - time.perf_counter()))
            sent.append(asyncio.create_task(driver.approve(run_id)))
        send_s = time.perf_counter() - began
        await asyncio.gather(*sent)
        driver.close()
        statuses, answered = driver.statuses, driver.took
        expected = statuses[200] * 2  # `transition` and `task.decided` for each approve
        for _ in range(600):
            got = await arrivals(hook)
            if len({a[1] for a in got}) >= expected:
                break
            await asyncio.sleep(0.1)
        drained_s = time.perf_counter() - began
    latency = [a[0] - datetime.fromisoformat(a[3]).timestamp() for a in got]
    unique = {a[1] for a in got}
    return {
        "p50_ms": percentile(latency, 50) * 1000,
        "p99_ms": percentile(latency, 99) * 1000,
        "max_ms": max(latency) * 1000,
        "approve_p50_ms": percentile(answered, 50) * 1000,
        "approve_p99_ms": percentile(answered, 99) * 1000,
        "sent_rate": n / send_s,
        "approved": statuses[200],
        "refused": n - statuses[200],
        "delivered": len(unique),
        "expected": expected,
        "duplicates": len(got) - len(unique),
        "types": dict(Counter(a[2] for a in got)),
        "drain_s": drained_s - send_s,
        "load": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("sqlite", "pg", "both"), default="both")
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8, help="SIGNOFF_CONCURRENCY")
    parser.add_argument("--save", action="store_true", help="keep the figures in check15.json")
    args = parser.parse_args()
    backends = ("sqlite", "pg") if args.backend == "both" else (args.backend,)
    figures: dict[str, dict[str, list[Any]]] = {b: {} for b in backends}
    for _ in range(args.reps):  # the databases alternate, so drift touches both alike
        for backend in backends:
            result = asyncio.run(
                delivery_latency(backend, args.rate, args.seconds, args.concurrency)
            )
            print(backend, result, flush=True)
            for key, value in result.items():
                figures[backend].setdefault(key, []).append(value)
    if args.save:
        from bench import check15

        for backend in backends:
            key = f"webhooks-{backend}-{args.rate}-c{args.concurrency}"
            check15.save(key, figures[backend])


if __name__ == "__main__":
    main()
