"""LISTEN on PostgreSQL: wakes this process's feed when any process commits a transition, its
definitions catalog when any process deploys, retires or deletes a chart document, and its
workers when any process commits a transition that enqueued jobs.

The notification carries only the seq (NOTIFY is delivered at commit, and payloads must stay
under 8,000 bytes); the feed then reads the new rows from the history table, unless the entry
was this process's own and has been published already. A lost listener
connection is detected (termination callback, plus a periodic ping for silent TCP loss),
reconnected with backoff, and followed by a catch-up read, so nothing is missed meanwhile:
the feed reads by seq, never from the notifications themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from signoff.engine.storage.store import Listener

log = logging.getLogger("signoff.listener")
CHANNEL = "signoff_history"
DEFINITIONS_CHANNEL = "signoff_definitions"  # a chart document was added, retired or deleted
JOBS_CHANNEL = "signoff_jobs"  # a committed transition enqueued jobs


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgListener(Listener):
    def __init__(
        self,
        url: str,
        on_notify: Callable[[int | None], None],
        on_definitions: Callable[[], None] | None = None,
        on_jobs: Callable[[int], None] | None = None,
        *,
        ping_s: float = 5.0,
    ) -> None:
        self.dsn = asyncpg_dsn(url)
        self.on_notify = on_notify
        self.on_definitions = on_definitions
        self.on_jobs = on_jobs
        self.ping_s = ping_s
        self.connects = 0  # how many times a LISTEN connection was (re)established
        self.backend_pid: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="signoff-listener")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await self._ready.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        delay = 0.1
        while True:
            try:
                await self._listen()
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("LISTEN connection lost (%s); reconnecting in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _listen(self) -> None:
        conn: Any = await asyncpg.connect(self.dsn, timeout=10)
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _c: lost.set())
            await conn.add_listener(CHANNEL, lambda *args: self.on_notify(_seq(args[-1])))
            on_definitions = self.on_definitions
            if on_definitions is not None:
                await conn.add_listener(DEFINITIONS_CHANNEL, lambda *args: on_definitions())
            on_jobs = self.on_jobs
            if on_jobs is not None:
                # Called with the notifying server process's pid.
                await conn.add_listener(JOBS_CHANNEL, lambda _c, pid, *_: on_jobs(pid))
            self.backend_pid = conn.get_server_pid()
            self.connects += 1
            self._ready.set()
            self.on_notify(None)  # catch up on whatever committed while we were not listening
            if on_definitions is not None:
                on_definitions()
            if on_jobs is not None:
                on_jobs(0)
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.ping_s):
                        await lost.wait()
                if not lost.is_set():
                    async with asyncio.timeout(self.ping_s):
                        await conn.execute("SELECT 1")
            raise ConnectionError("the server closed the LISTEN connection")
        finally:
            with contextlib.suppress(Exception):
                await conn.close(timeout=2)


def _seq(payload: object) -> int | None:
    return int(payload) if isinstance(payload, str) and payload.isdigit() else None
