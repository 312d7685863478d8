"""A write to a client that makes no progress for `send_timeout_s` aborts its connection.

When a client stops reading, uvicorn's `send()` waits for the transport to drain, forever:
the response (an SSE stream, typically) never runs again, and closing the transport would
wait to flush too. This ASGI wrapper bounds that wait and then *aborts* the transport, so the
kernel discards the unsent data at once. It also hands the app the connection's abort (see
`abort_of`), so the feed can cut a client it drops without waiting for the timeout, and a
direct write (see `direct_of`): the feed writes a live frame to the connection itself, with no
task to wake per client, while the connection takes it without waiting; otherwise the frame
goes through the response's own send, bounded as above.

It relies on two uvicorn internals, both in its h11 and httptools protocols: `send` is a
bound method of the request's cycle, which has `.transport` and `.flow` (`write_paused`,
`drain()`). Without them it degrades to a timeout on every send that raises, so uvicorn
closes the connection (gracefully: the unsent data then stays until the kernel gives up).
Direct writes rely on the httptools cycle's state (`response_started`, `chunked_encoding`,
`response_complete`, `disconnected`) and are offered only on that protocol.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

# The server-side ASGI types (lifespan scopes too, which Litestar's types leave out).
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("signoff.connections")
ABORT = "signoff.abort"  # scope["extensions"][ABORT]: aborts the request's connection
DIRECT = "signoff.direct"  # scope["extensions"][DIRECT]: writes a body chunk now, if it can


class SendTimeoutError(Exception):
    """A write to the client made no progress within the send timeout."""


def abort_of(scope: Mapping[str, Any]) -> Callable[[], None] | None:
    """The abort of this request's connection, when the server provides one."""
    extensions: Mapping[str, Any] = scope.get("extensions") or {}
    abort: Callable[[], None] | None = extensions.get(ABORT)
    return abort


def direct_of(scope: Mapping[str, Any]) -> Callable[[bytes], bool] | None:
    """Writes one chunk of this request's streamed response body on the connection at once,
    when the server allows it; False when it cannot without waiting (paused, closing, not
    yet started or already complete), and the chunk must go through the response's send."""
    extensions: Mapping[str, Any] = scope.get("extensions") or {}
    direct: Callable[[bytes], bool] | None = extensions.get(DIRECT)
    return direct


@functools.lru_cache(maxsize=8)
def _chunk(data: bytes) -> bytes:
    # HTTP/1.1 chunked framing, made once per frame for every client it goes to (a bytes
    # object caches its hash, and the cache finds the same object by identity first).
    return b"%x\r\n%b\r\n" % (len(data), data)


class SendTimeout:
    """ASGI middleware: sends bounded by `timeout_s` of no progress, then an abort."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cycle = getattr(send, "__self__", None)
        transport = getattr(cycle, "transport", None)
        flow = getattr(cycle, "flow", None)
        # Duck-typed: uvloop's transports are not asyncio.WriteTransport subclasses.
        abort = getattr(transport, "abort", None)
        if abort is None or not hasattr(flow, "write_paused"):
            await self.app(scope, receive, _Deadline(send, self.timeout_s))
            return
        guarded = _Guarded(send, transport, flow, self.timeout_s)
        extra: dict[str, Any] = {ABORT: abort}
        if hasattr(cycle, "chunked_encoding"):  # uvicorn's httptools protocol
            extra[DIRECT] = guarded.write_now
        # A new dict: the server's own extensions (if any) may be shared between requests.
        scope["extensions"] = {**(scope.get("extensions") or {}), **extra}
        await self.app(scope, receive, guarded)


class _Guarded:
    """uvicorn's send, with its wait for the transport to drain bounded.

    Costs one attribute read per message while the client keeps up: uvicorn's send only
    waits when the transport paused writing; otherwise it writes without yielding."""

    __slots__ = ("flow", "send", "timeout_s", "transport")

    def __init__(self, send: Send, transport: Any, flow: Any, timeout_s: float) -> None:
        self.send = send
        self.transport = transport
        self.flow = flow
        self.timeout_s = timeout_s

    async def __call__(self, message: Message) -> None:
        if self.flow.write_paused and not await self._drained():
            return  # aborted: uvicorn reports the disconnect to the app through receive()
        await self.send(message)

    def write_now(self, data: bytes) -> bool:
        """Write a body chunk of a started, chunked, streamed response, if the transport takes
        it without waiting; what uvicorn's send would write for `more_body`, minus the wait."""
        cycle = self.send.__self__  # type: ignore[attr-defined]
        if (
            self.flow.write_paused
            or cycle.chunked_encoding is not True
            or not cycle.response_started
            or cycle.response_complete
            or cycle.disconnected
            or self.transport.is_closing()
        ):
            return False
        self.transport.write(_chunk(data))
        return True

    async def _drained(self) -> bool:
        transport = self.transport
        if transport.is_closing():
            return False
        # "No progress", not "not drained": a slow reader that keeps reading may take longer
        # than the timeout to drain a full buffer, and is not cut while its buffer shrinks.
        left = transport.get_write_buffer_size()
        while True:
            try:
                async with asyncio.timeout(self.timeout_s):
                    await self.flow.drain()
                return True
            except TimeoutError:
                now = transport.get_write_buffer_size()
                if now < left and not transport.is_closing():
                    left = now
                    continue
                log.info("aborting a connection: no write progress for %.0f s", self.timeout_s)
                transport.abort()
                return False


class _Deadline:
    """The fallback when the server's internals are not there: every send bounded."""

    __slots__ = ("send", "timeout_s")

    def __init__(self, send: Send, timeout_s: float) -> None:
        self.send = send
        self.timeout_s = timeout_s

    async def __call__(self, message: Message) -> None:
        try:
            async with asyncio.timeout(self.timeout_s):
                await self.send(message)
        except TimeoutError as exc:
            raise SendTimeoutError from exc
