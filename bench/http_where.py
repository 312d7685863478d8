"""Where the time of bench/http.py's wrk run goes: the server's CPU (/proc), wrk's (rusage), the
machine's (/proc/stat), and the server's fdatasyncs (`perf trace`, if installed).

    .venv/bin/python -m bench.http_where     # then py-spy the same load for the split by code
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from bench import http
from bench.server import signoff_server


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine() -> list[int]:
    return [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]


async def main(runs: int = 10000, seconds: int = 5) -> None:
    ids: list[str] = []
    prepare = lambda url: http.prepare_waiting(url, runs, ids)  # noqa: E731
    async with signoff_server("sqlite", prepare) as (base, pid):
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "ids.txt").write_text("\n".join(ids) + "\n")
            script = Path(tmp) / "approve.lua"
            script.write_text(http.WRK_SCRIPT.replace("IDS_FILE", str(Path(tmp) / "ids.txt")))
            trace = None
            if shutil.which("perf"):
                trace = subprocess.Popen(
                    ["perf", "trace", "-s", "-e", "fdatasync,fsync", "-p", str(pid)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                await asyncio.sleep(0.5)
            server0, wrk0 = _cpu_s(pid), resource.getrusage(resource.RUSAGE_CHILDREN)
            machine0, started = _machine(), time.perf_counter()
            done = subprocess.run(
                ["wrk", "-t1", "-c32", f"-d{seconds}s", "--latency", "-s", str(script), base],
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - started
            server1, wrk1 = _cpu_s(pid), resource.getrusage(resource.RUSAGE_CHILDREN)
            machine = [b - a for a, b in zip(machine0, _machine(), strict=True)]
            traced = ""
            if trace is not None:
                trace.send_signal(signal.SIGINT)
                traced = trace.communicate(timeout=20)[0]
    wrk_s = (wrk1.ru_utime + wrk1.ru_stime) - (wrk0.ru_utime + wrk0.ru_stime)
    total = sum(machine)
    print(done.stdout)
    print(
        f"server CPU {100 * (server1 - server0) / wall:.0f} % of one core; "
        f"wrk {100 * wrk_s / wall:.0f} %; machine (2 cores): idle {100 * machine[3] / total:.0f} %"
        f", iowait {100 * machine[4] / total:.0f} %"
    )
    print(traced[-900:])


if __name__ == "__main__":
    asyncio.run(main())
