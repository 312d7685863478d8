"""Live feed: approve → SSE delivery latency across 1,000 clients (or 10,000 over several
server processes, which on PostgreSQL learn of each other's commits by LISTEN/NOTIFY); idle
clients and memory."""

from __future__ import annotations

import asyncio
import time

import httpx

from bench.common import percentile
from bench.http import waiting_run
from bench.server import rss_kib, signoff_server

MARK = b'"event":"approve"'


class Client:
    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self, host: str, port: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        self.writer = writer
        writer.write(
            b"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
        )
        await writer.drain()
        await reader.readuntil(b"retry: 3000")
        self._task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while chunk := await reader.read(65536):
            if MARK in chunk:
                self.arrivals.append(time.perf_counter())

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self._task.cancel()


async def connect_all(base: str, count: int) -> list[Client]:
    host, port = base.removeprefix("http://").split(":")
    clients = [Client() for _ in range(count)]
    for start in range(0, count, 200):  # 200 at a time, as a burst of browsers would
        await asyncio.gather(*(c.connect(host, int(port)) for c in clients[start : start + 200]))
    return clients


async def sse_latency(
    backend: str, clients: int = 1000, events: int = 20, processes: int = 1
) -> dict[str, float]:
    """`processes` > 1: `serve --processes N`, the clients spread over them by the kernel."""
    env = {"SIGNOFF_MAX_CONNECTIONS": str(clients + 100)} if clients > 9000 else {}
    if processes > 1:
        env["SIGNOFF_PROCESSES"] = str(processes)
    gap = max(0.3, clients / 10_000)  # time for every client to read one event
    async with signoff_server(backend, **env) as (base, _pid):
        followers = await connect_all(base, clients)
        sent: list[float] = []
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            for _ in range(events):
                run_id = await waiting_run(client)
                await asyncio.sleep(0.2)  # let the frames of create/process settle
                sent.append(time.perf_counter())
                await client.post(f"/api/runs/{run_id}/approve")
                await asyncio.sleep(gap)
        await asyncio.sleep(1.0)
        latencies = []
        for follower in followers:
            for at, arrival in zip(sent, follower.arrivals, strict=False):
                latencies.append(arrival - at)
            follower.close()
        delivered = sum(len(f.arrivals) for f in followers)
    return {
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "first_ms": min(latencies, default=0.0) * 1000,  # the first client to read an event
        "delivered": delivered,
        "expected": clients * events,
    }


async def idle_clients(backend: str, count: int) -> dict[str, float]:
    # Room for the followers and the bench's own requests: 10,000 is also the default cap.
    async with signoff_server(backend, SIGNOFF_MAX_CONNECTIONS=str(count + 100)) as (base, pid):
        before = rss_kib(pid)
        started = time.perf_counter()
        followers = await connect_all(base, count)
        took = time.perf_counter() - started
        await asyncio.sleep(1.0)
        after = rss_kib(pid)
        async with httpx.AsyncClient(base_url=base) as client:
            metrics = (await client.get("/metrics")).text
        held = next(
            int(float(line.split()[1]))
            for line in metrics.splitlines()
            if line.startswith("signoff_sse_clients ")
        )
        for follower in followers:
            follower.close()
    return {
        "held": held,
        "kib_per_client": (after - before) / count,
        "connect_s": took,
        "rss_mib": after / 1024,
    }
