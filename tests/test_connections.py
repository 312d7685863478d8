"""Connections through a real server and raw sockets: clients that stop reading."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

from tests.conftest import LiveServer, eventually, serve

PADDING = {"output": 0.9, "note": "x" * 20_000}  # large entries fill a stalled client fast
STALLERS = 300


def established(port: int) -> int:
    """Server-side sockets in ESTABLISHED (state 01) on local `port`, from /proc/net/tcp*."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                if fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


def port_of(live: LiveServer) -> int:
    return int(live.url.rsplit(":", 1)[1])


async def raw(live: LiveServer, request: bytes = b"", rcvbuf: int | None = None) -> socket.socket:
    """A connected non-blocking socket that has sent `request` (maybe only part of one)."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port_of(live)))
    if request:
        await loop.sock_sendall(sock, request)
    return sock


async def answer(sock: socket.socket, bound_s: float = 10.0) -> bytes:
    """Everything the server sends until it closes the connection (b"" if it just closes);
    fails if it is still open after `bound_s`."""
    loop = asyncio.get_running_loop()
    chunks = []
    async with asyncio.timeout(bound_s):
        while True:
            try:
                chunk = await loop.sock_recv(sock, 65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


@contextlib.asynccontextmanager
async def stalled_followers(live: LiveServer, count: int) -> AsyncIterator[list[socket.socket]]:
    """`count` clients on the global stream with tiny receive buffers that never read."""
    get = b"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            socks.append(await raw(live, get, rcvbuf=4096))
        await eventually(lambda: _subscribers(live, count))
        yield socks
    finally:
        for sock in socks:
            sock.close()


async def back_to(port: int, baseline: int, bound_s: float) -> None:
    """Wait (at most `bound_s`) until the server holds only its `baseline` connections."""

    async def freed() -> bool:
        return established(port) == baseline

    try:
        await eventually(freed, timeout=bound_s)
    except AssertionError:
        raise AssertionError(f"{established(port)} open, {baseline} before") from None


async def _subscribers(live: LiveServer, count: int) -> bool:
    return live.runtime.feed.subscriber_count == count


async def burst(live: LiveServer, entries: int) -> None:
    for _ in range(entries):
        await live.runtime.dispatcher.create("approval", actor="test", input=PADDING)


async def test_clients_that_stop_reading_are_cut_after_the_send_timeout(
    database_url: str,
) -> None:
    # A feed buffer far larger than the burst: only the send timeout can free these sockets.
    async with serve(database_url, sndbuf=4096, send_timeout_s=1, feed_buffer=1024) as live:
        port = port_of(live)
        baseline = established(port)
        async with stalled_followers(live, STALLERS):
            assert established(port) == baseline + STALLERS
            await burst(live, 12)  # ~240 kB per client: far more than its socket buffers hold
            await back_to(port, baseline, bound_s=10)
            await eventually(lambda: _subscribers(live, 0))


async def test_clients_the_feed_drops_are_cut_at_once(database_url: str) -> None:
    # The send timeout is out of reach of the bound: the feed's drop must close them itself.
    async with serve(database_url, sndbuf=4096, send_timeout_s=60, feed_buffer=4) as live:
        port = port_of(live)
        baseline = established(port)
        async with stalled_followers(live, STALLERS):
            await burst(live, 20)  # blocked after ~4 entries, then 4 more fill the mailbox
            await back_to(port, baseline, bound_s=10)
            assert live.runtime.feed.subscriber_count == 0
