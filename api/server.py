"""uvicorn, with the live feed ended first on shutdown so open streams don't hold it up, and
a send timeout on every connection (api/send_timeout.py), from the runtime's settings."""

from __future__ import annotations

import socket
from typing import Any

import uvicorn

from api.send_timeout import SendTimeout
from engine.runtime import Runtime


class SignoffServer(uvicorn.Server):
    """On shutdown, ends every SSE stream before uvicorn waits for open connections: a
    browser following the feed would otherwise keep the server up until the grace period ends.
    Clients reconnect (to another process, or to this one after a restart) with Last-Event-ID.
    """

    def __init__(self, config: uvicorn.Config, runtime: Runtime) -> None:
        super().__init__(config)
        self.runtime = runtime

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.runtime.feed.disconnect_all()
        await super().shutdown(sockets)


def server(app: Any, runtime: Runtime, **config: Any) -> SignoffServer:
    config.setdefault("timeout_graceful_shutdown", 10)
    app = SendTimeout(app, runtime.settings.send_timeout_s)
    return SignoffServer(uvicorn.Config(app, **config), runtime)
