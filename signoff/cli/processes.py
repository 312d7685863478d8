"""`signoff serve --processes N`: N copies of the server sharing one listening socket.

The caller binds the port and checks the database once; then `run_forked` forks N children, each
running the whole server (its own runtime, embedded workers and live feed) on the inherited
socket, and the kernel hands each new connection to one of them. The parent forwards SIGTERM and
SIGINT to the children (as SIGTERM: a graceful stop) and waits. If one child exits, the parent
stops the others and exits with that child's status, so whatever supervises it (systemd, a
container runtime) restarts the whole set rather than running one process short.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("signoff")
STOPPED = {-signal.SIGTERM, -signal.SIGINT}


def run_forked(count: int, child: Callable[[], int]) -> int:
    """Run `child()` in `count` forked processes; the first one's exit status, once all ended."""
    pids: list[int] = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:  # the child: never returns into the parent's code
            code = 1
            try:
                code = child()
            finally:
                os._exit(code)
        pids.append(pid)
    log.info("serving from %d processes: %s", count, ", ".join(map(str, pids)))
    alive = set(pids)

    def stop(_signum: int = signal.SIGTERM, _frame: FrameType | None = None) -> None:
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    status: int | None = None
    try:
        while alive:
            pid, raw = os.wait()
            alive.discard(pid)
            code = os.waitstatus_to_exitcode(raw)
            if code in STOPPED:
                code = 0  # uvicorn ends by re-raising the signal that stopped it gracefully
            if status is None:
                status = code if code >= 0 else 1  # killed by another signal: a failure
                if alive:
                    if code != 0:
                        log.error("server process %d exited (%d): stopping the others", pid, code)
                    stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status or 0
