"""Slow and surplus connections: deadlines for a request's headers and body, and a cap.

uvicorn (0.54) times out only idle keep-alive connections (`timeout_keep_alive`, armed when a
response completes): a connection that sends nothing, or its headers a byte at a time, or
half of its body, is kept forever; and it accepts connections without limit
(`limit_concurrency` answers 503 only once a request's headers have arrived, so idle
connections are never refused, and it counts running tasks too). This subclass of uvicorn's
HTTP protocol adds the three bounds:

- headers: from the connection's first byte (or its opening, for the first request) to the end
  of the headers, `header_timeout_s`; then 408 if part of a request came, else a plain close;
- body: from the headers to the end of the body, `body_timeout_s`; then 408 and close;
- `max_connections` open per process: one more is answered 503 and closed at once.

A response takes as long as it takes (an SSE stream is a long response, not a slow request),
and between requests uvicorn's keep-alive timeout applies. It relies on `self.cycle` (the
current request: `more_body`, `response_started`, `response_complete`, `disconnected`,
`message_event`) and `self.connections` of uvicorn's h11 and httptools protocols; any other
protocol class is served unguarded, with a warning.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("signoff.connections")


def _problem(status: int, reason: bytes, kind: str, detail: str) -> bytes:
    """A whole HTTP response, written before (or instead of) the app: problem+json."""
    body = b'{"type":"urn:signoff:problem:%s","title":"%s","status":%d,"detail":"%s"}' % (
        kind.encode(),
        reason,
        status,
        detail.encode(),
    )
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/problem+json\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (status, reason, len(body), body)
    )


PROBLEM_TYPES = {"request-timeout": 408, "too-many-connections": 503}
TIMEOUT = _problem(
    408, b"Request Timeout", "request-timeout", "The request did not arrive in time."
)
REFUSED = _problem(
    503,
    b"Service Unavailable",
    "too-many-connections",
    "This server process holds as many connections as it may; retry, or use another.",
)


@dataclass(frozen=True)
class Limits:
    header_timeout_s: float
    body_timeout_s: float
    max_connections: int


class _Guard(asyncio.Protocol):
    """The bounds, as a mixin over uvicorn's protocol (`super()` is that protocol)."""

    limits: ClassVar[Limits]
    # uvicorn's per-connection state (see the module docstring).
    transport: asyncio.Transport
    connections: set[Any]
    cycle: Any
    loop: asyncio.AbstractEventLoop

    # Slots, not instance attributes: uvicorn's protocol already has about 30, the most an
    # instance dict shares keys for, and three more cost ~2 KiB per connection (measured with
    # 10,000 idle SSE clients).
    __slots__ = ("_body", "_partial", "_timer")
    _timer: asyncio.TimerHandle | None
    _body: Any  # the request whose body the timer waits for
    _partial: bool  # bytes of a request arrived since the last one's headers

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._timer, self._body, self._partial = None, None, False
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            log.warning("refusing a connection: %d open", len(self.connections) - 1)
            self.transport.write(REFUSED)
            self.transport.close()
            return
        self._timer = self.loop.call_later(self.limits.header_timeout_s, self._headers_late)

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        between = cycle is None or cycle.response_complete  # these bytes begin a request
        super().data_received(data)
        if self.cycle is not cycle:  # a new request's headers are complete
            self._partial = False
            self._disarm()
            if self.cycle.more_body:
                self._body = self.cycle
                self._timer = self.loop.call_later(self.limits.body_timeout_s, self._body_late)
        elif between:
            # Part of a request: armed only now, so a request that comes whole costs no timer.
            self._partial = True
            if self._timer is None:
                self._timer = self.loop.call_later(self.limits.header_timeout_s, self._headers_late)
        elif self._body is not None and not self._body.more_body:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._body = None

    def _headers_late(self) -> None:
        self._timer = None
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            return  # a request is being answered (its headers came after all)
        self._close(TIMEOUT if self._partial else b"")

    def _body_late(self) -> None:
        self._timer = None
        cycle, self._body = self._body, None
        if cycle is None or not cycle.more_body or cycle.response_complete:
            return
        # As uvicorn does when a connection is lost: the app's receive() then returns
        # http.disconnect and its sends are dropped, so nothing follows the 408.
        cycle.disconnected = True
        cycle.message_event.set()
        self._close(b"" if cycle.response_started else TIMEOUT)

    def _close(self, answer: bytes) -> None:
        transport = self.transport
        if transport.is_closing() or transport.get_protocol() is not self:
            return  # closed already, or upgraded to another protocol
        if answer:
            transport.write(answer)
        transport.close()


def guarded(base: type[asyncio.Protocol], limits: Limits) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol `base`, with `limits` applied to every connection."""
    if not issubclass(base, (H11Protocol, HttpToolsProtocol)):
        log.warning(
            "%s is not uvicorn's h11 or httptools protocol: header and body timeouts and the "
            "connection limit are off",
            base.__name__,
        )
        return base
    return type(f"Guarded{base.__name__}", (_Guard, base), {"limits": limits})
