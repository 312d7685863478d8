"""A webhook receiver on loopback: it verifies each request as the README tells receivers to
(the Standard Webhooks reference library), records what it got, and fails now and then."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import uvicorn
from standardwebhooks import WebhookVerificationError

from tests.helpers import free_socket

README = Path(__file__).parents[1] / "README.md"
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Received:
    """One request whose signature verified."""

    id: str  # webhook-id
    type: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Receiver:
    """Answers 204 to a verified request; 401 to one that does not verify (with `secret`
    unset, nothing verifies). Request n (1-based, over all requests) answers 500 when
    `fail_every` divides n, and hangs for `hang_s` when `hang_every` does (past the sender's
    timeout); `redirect` answers every request with a 307 to it."""

    secret: str = ""
    fail_every: int = 0
    hang_every: int = 0
    hang_s: float = 30.0
    redirect: str = ""
    url: str = ""
    received: list[Received] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)  # headers of unverified ones
    requests: int = 0
    hanging: int = 0  # requests held now that will verify and be recorded when they end
    _count: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def ids(self) -> set[str]:
        return {r.id for r in self.received}

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
        n = next(self._count)
        self.requests = n
        if self.redirect:
            await _answer(send, 307, [(b"location", self.redirect.encode())])
            return
        if self.hang_every and n % self.hang_every == 0:
            fails = bool(self.fail_every and n % self.fail_every == 0)
            self.hanging += not fails
            try:
                await asyncio.sleep(self.hang_s)  # past the sender's timeout, or its death
            finally:
                self.hanging -= not fails
        if self.fail_every and n % self.fail_every == 0:
            await _answer(send, 500)
            return
        try:
            message = verify(self.secret, body, headers)
        except (WebhookVerificationError, ValueError):
            self.refused.append(headers)
            await _answer(send, 401)
            return
        self.received.append(Received(headers["webhook-id"], message["type"], message, headers))
        await _answer(send, 204)


def readme_verify() -> Callable[[str, bytes, dict[str, str]], dict[str, Any]]:
    """The `verify` of the README's receiver snippet (its Webhooks section), run as written:
    the receiver checks every request with it, so the snippet is tested."""
    section = (
        README.read_text().split("<!-- webhooks:begin -->")[1].split("<!-- webhooks:end -->")[0]
    )
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md (webhooks)", "exec"), namespace)
    return cast(Callable[[str, bytes, dict[str, str]], dict[str, Any]], namespace["verify"])


verify = readme_verify()


async def _answer(send: Send, status: int, extra: list[tuple[bytes, bytes]] = []) -> None:  # noqa: B006
    headers = [(b"content-length", b"0"), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


@asynccontextmanager
async def webhook_receiver(**options: Any) -> AsyncIterator[Receiver]:
    """A receiver under uvicorn on a free loopback port; its `url` takes the deliveries."""
    receiver = Receiver(**options)
    sock = free_socket()
    receiver.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hooks"
    config = uvicorn.Config(
        receiver, log_level="warning", lifespan="off", timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield receiver
    finally:
        server.should_exit = True
        await task
        sock.close()
