"""Connections through a real server and raw sockets: stalled readers, slow senders, the cap."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from httpx_sse import aconnect_sse

from tests.helpers import LiveServer, eventually, serve

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


@pytest.mark.slow
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


@pytest.mark.slow
async def test_clients_the_feed_drops_are_cut_at_once(database_url: str) -> None:
    # The send timeout is out of reach of the bound: the feed's drop must close them itself.
    async with serve(database_url, sndbuf=4096, send_timeout_s=60, feed_buffer=4) as live:
        port = port_of(live)
        baseline = established(port)
        async with stalled_followers(live, STALLERS):
            await burst(live, 20)  # blocked after ~4 entries, then 4 more fill the mailbox
            await back_to(port, baseline, bound_s=10)
            assert live.runtime.feed.subscriber_count == 0


# The slow-client tests below never reach the database (the server answers before the app
# reads or writes anything), so SQLite alone says all there is to say.


async def test_a_connection_without_complete_headers_is_closed(tmp_path: Path) -> None:
    async with serve(f"sqlite+aiosqlite:///{tmp_path}/s.db", header_timeout_s=1) as live:
        silent = await raw(live)
        half = await raw(live, b"GET /api/st")
        again = await raw(live, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        loop = asyncio.get_running_loop()
        assert (await loop.sock_recv(again, 65536)).startswith(b"HTTP/1.1 200 ")
        await loop.sock_sendall(again, b"GET /heal")  # the next request, half of it
        assert await answer(silent) == b""  # nothing came, so nothing to answer
        assert (await answer(half)).startswith(b"HTTP/1.1 408 ")
        assert (await answer(again)).startswith(b"HTTP/1.1 408 ")  # before keep-alive's 5 s
        for sock in (silent, half, again):
            sock.close()


async def test_headers_sent_a_byte_at_a_time_do_not_extend_the_deadline(tmp_path: Path) -> None:
    async with serve(f"sqlite+aiosqlite:///{tmp_path}/s.db", header_timeout_s=1) as live:
        drip = await raw(live)
        loop = asyncio.get_running_loop()
        request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: " + b"y" * 200
        sent = 0

        async def dribble() -> None:
            nonlocal sent
            with contextlib.suppress(OSError):  # the server hangs up part way
                for byte in request + b"\r\n\r\n":
                    await loop.sock_sendall(drip, bytes([byte]))
                    sent += 1
                    await asyncio.sleep(0.1)

        sender = asyncio.create_task(dribble())
        assert (await answer(drip)).startswith(b"HTTP/1.1 408 ")
        assert sent < len(request)  # closed while the headers were still coming
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        drip.close()


async def test_a_stalled_body_gets_408(tmp_path: Path) -> None:
    async with serve(f"sqlite+aiosqlite:///{tmp_path}/s.db", body_timeout_s=1) as live:
        head = (
            b"POST /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n"
        )
        stalled = await raw(live, head + b'{"definit')
        response = await answer(stalled)
        assert response.startswith(b"HTTP/1.1 408 ")
        assert b"application/problem+json" in response and b"request-timeout" in response
        stalled.close()
        # A body that arrives in time is served as usual.
        created = await live.client.post("/api/runs", json={"definition": "approval"})
        assert created.status_code == 201


async def test_an_idle_keep_alive_connection_still_times_out(tmp_path: Path) -> None:
    async with serve(f"sqlite+aiosqlite:///{tmp_path}/s.db") as live:
        sock = await raw(live, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        loop = asyncio.get_running_loop()
        assert (await loop.sock_recv(sock, 65536)).startswith(b"HTTP/1.1 200 ")
        assert await answer(sock, bound_s=15) == b""  # uvicorn's timeout_keep_alive (5 s)
        sock.close()


async def test_connections_beyond_the_limit_are_refused(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/s.db"
    async with serve(url, max_connections=20, header_timeout_s=60) as live:
        loop = asyncio.get_running_loop()
        healthz = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        working = await raw(live, healthz)
        assert (await loop.sock_recv(working, 65536)).startswith(b"HTTP/1.1 200 ")
        idle = [await raw(live) for _ in range(19)]
        await eventually(lambda: _open(live, 20))
        extra = [await raw(live) for _ in range(5)]
        for sock in extra:
            refused = await answer(sock)
            assert refused == b"" or refused.startswith(b"HTTP/1.1 503 "), refused
            sock.close()
        # The connections inside the limit are served as before.
        await loop.sock_sendall(working, healthz)
        assert (await loop.sock_recv(working, 65536)).startswith(b"HTTP/1.1 200 ")
        for sock in idle:
            sock.close()
        await eventually(lambda: _open(live, 1))
        assert (await live.client.get("/healthz")).status_code == 200
        working.close()


async def _open(live: LiveServer, count: int) -> bool:
    return established(port_of(live)) == count


async def test_an_sse_stream_outlives_the_header_and_body_timeouts(database_url: str) -> None:
    async with (
        serve(database_url, header_timeout_s=1, body_timeout_s=1) as live,
        aconnect_sse(live.client, "GET", "/api/stream") as source,
    ):
        await eventually(lambda: _subscribers(live, 1))
        await asyncio.sleep(2.5)  # past both timeouts, with a margin
        created = await live.client.post("/api/runs", json={"definition": "approval"})
        async for message in source.aiter_sse():
            if message.event == "transition":
                assert created.json()["id"] in message.data
                break
