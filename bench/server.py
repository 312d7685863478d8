"""A `signoff serve` process for the HTTP and SSE benchmarks, on a fresh database."""

from __future__ import annotations

import asyncio
import os
import resource
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from bench.common import fresh_database
from tests.helpers import free_socket


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))


@asynccontextmanager
async def signoff_server(
    backend: str, prepare: Callable[[str], Awaitable[None]] | None = None, **env: str
) -> AsyncIterator[tuple[str, int]]:
    """(base URL, server pid) of `signoff serve` with one embedded worker; `prepare(url)`
    fills the fresh database first."""
    async with fresh_database(backend) as url:
        if prepare is not None:
            await prepare(url)
        async with serve_on(url, env) as served:
            yield served


@asynccontextmanager
async def serve_on(
    url: str, env: Mapping[str, str], checkout: Path | None = None
) -> AsyncIterator[tuple[str, int]]:
    """(base URL, server pid) of `signoff serve` on the database at `url` with `env` added to
    its environment: this code, or with `checkout` that checkout's (its own virtualenv, run in
    it), e.g. the commit before a change for an A/B on the same data."""
    _raise_fd_limit()
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    environment = {
        **os.environ,
        "SIGNOFF_DATABASE_URL": url,
        "SIGNOFF_PORT": str(port),
        "SIGNOFF_FAILURE_RATE": "0",
        **env,
    }
    python = sys.executable if checkout is None else str(checkout / ".venv/bin/python")
    if checkout is not None:
        environment["PYTHONPATH"] = str(checkout)
    proc = subprocess.Popen(
        [python, "-m", "signoff", "serve"],
        env=environment,
        cwd=checkout,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_raise_fd_limit,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            for _ in range(600):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
        yield base, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")
