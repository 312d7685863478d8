"""A payment service on loopback for the expense example: it pays each run once (by its
Idempotency-Key) and fails now and then, as real ones do."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from tests.helpers import free_socket

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class PaymentService:
    """Answers 503 to the first request and every `fail_every`-th after it (0: never); a
    repeated Idempotency-Key gets the payment made the first time, never a second one."""

    fail_every: int = 0
    answer: bytes | None = None  # answer every request with these bytes (200), as they are
    delay_s: float = 0.0  # wait this long before answering
    url: str = ""
    requests: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    bodies: list[bytes] = field(default_factory=list)
    payments: dict[str, str] = field(default_factory=dict)  # key -> payment id
    _count: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        key = headers.get("idempotency-key", "")
        self.headers.append(headers)
        self.bodies.append(body)
        self.requests.append((key, json.loads(body or b"{}")))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.answer is not None:
            await _raw(send, 200, self.answer)
            return
        if self.fail_every and (next(self._count) - 1) % self.fail_every == 0:
            await _answer(send, 503, {"error": "try again"})
            return
        payment = self.payments.setdefault(key, f"pay-{len(self.payments) + 1}")
        await _answer(send, 200, {"payment_id": payment})


async def _answer(send: Send, status: int, body: dict[str, Any]) -> None:
    await _raw(send, status, json.dumps(body).encode())


async def _raw(send: Send, status: int, data: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


@asynccontextmanager
async def payment_service(
    fail_every: int = 0, answer: bytes | None = None, delay_s: float = 0.0
) -> AsyncIterator[PaymentService]:
    """The service under uvicorn on a free loopback port; its `url` takes the POSTs."""
    service = PaymentService(fail_every, answer, delay_s)
    sock = free_socket()
    service.url = f"http://127.0.0.1:{sock.getsockname()[1]}/payments"
    server = uvicorn.Server(uvicorn.Config(service, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield service
    finally:
        server.should_exit = True
        await task
        sock.close()
