"""Over HTTP: approval round trips through `signoff serve`, and approve requests/s with wrk."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import gather_limited, percentile
from bench.roundtrip import start_waiting
from bench.server import signoff_server
from signoff.engine.runtime import Runtime
from signoff.engine.settings import Settings
from signoff.machines.registry import build_registry

WRK_SCRIPT = """
local ids = {}
for line in io.lines("IDS_FILE") do ids[#ids + 1] = line end
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", "/api/runs/" .. ids[((i - 1) % #ids) + 1] .. "/approve",
                    {["Content-Type"] = "application/json"}, "{}")
end
"""


async def waiting_run(client: httpx.AsyncClient) -> str:
    run = (
        await client.post("/api/runs", json={"definition": "approval", "input": {"output": 0.9}})
    ).json()
    await client.post(f"/api/runs/{run['id']}/process")
    for _ in range(2000):
        if (await client.get(f"/api/runs/{run['id']}")).json()["state"] == "waiting_for_approval":
            return str(run["id"])
        await asyncio.sleep(0.005)
    raise RuntimeError("run never reached waiting_for_approval")


async def http_roundtrips(backend: str, n: int, concurrency: int) -> dict[str, float]:
    """Round trips/s and approve request latency with an asyncio httpx client (loopback)."""
    async with signoff_server(backend) as (base, _pid):
        latency: list[float] = []
        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

            async def one(_: int) -> None:
                run_id = await waiting_run(client)
                started = time.perf_counter()
                response = await client.post(f"/api/runs/{run_id}/approve")
                latency.append(time.perf_counter() - started)
                assert response.json()["state"] == "finished"

            started = time.perf_counter()
            await gather_limited(n, concurrency, one)
            elapsed = time.perf_counter() - started
    return {
        "rps": n / elapsed,
        "p50_ms": percentile(latency, 50) * 1000,
        "p99_ms": percentile(latency, 99) * 1000,
    }


async def prepare_waiting(url: str, runs: int, ids: list[str]) -> None:
    """`runs` approval runs waiting for approval, made through the engine's own API."""
    rt = Runtime(
        Settings(database_url=url, failure_rate=0.0, workers=1, concurrency=64), build_registry(0.0)
    )
    await rt.start()
    ids += await start_waiting(rt, runs, 32)
    await rt.stop()


async def approve_rate(
    backend: str, runs: int, seconds: int = 5, webhook: str | None = None, processes: int = 1
) -> dict[str, float]:
    """wrk on loopback, 32 connections, one approve per waiting run (each accepted once);
    `webhook`: a URL subscribed to every notification once the runs are prepared;
    `processes`: `serve --processes N`.

    `runs` must exceed what the server can approve in `seconds`: once every run is approved,
    further approves are refused (409) and not counted; `exhausted` says if that happened.
    """
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    ids: list[str] = []
    env = {"SIGNOFF_PROCESSES": str(processes)} if processes > 1 else {}
    prepare = lambda url: prepare_waiting(url, runs, ids)  # noqa: E731
    async with signoff_server(backend, prepare, **env) as (base, _pid):
        if webhook is not None:
            async with httpx.AsyncClient(base_url=base) as client:
                made = await client.post("/api/webhooks", json={"url": webhook})
                assert made.status_code == 201, made.text
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "ids.txt").write_text("\n".join(ids) + "\n")
            script = Path(tmp) / "approve.lua"
            script.write_text(WRK_SCRIPT.replace("IDS_FILE", str(Path(tmp) / "ids.txt")))
            done = subprocess.run(
                ["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", "-s", str(script), base],
                capture_output=True,
                text=True,
                timeout=seconds + 60,
            )
    out = done.stdout
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    secs = float(re.search(r"requests in ([\d.]+)s", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    ok = total - (int(bad.group(1)) if bad else 0)
    p50 = _wrk_ms(out, "50%")
    p99 = _wrk_ms(out, "99%")
    return {
        "rps": ok / secs,
        "p50_ms": p50,
        "p99_ms": p99,
        "accepted": ok,
        "sent": total,
        "exhausted": float(ok >= runs),
    }


def _wrk_ms(out: str, label: str) -> float:
    match = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out)
    if match is None:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
