"""uvicorn, with the live feed ended first on shutdown so open streams don't hold it up, and
every connection bounded: send timeout (api/send_timeout.py), header and body deadlines and a
connection cap (api/connections.py), from the runtime's settings."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import uvicorn
from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string

from signoff.api.connections import Limits, guarded
from signoff.api.send_timeout import SendTimeout
from signoff.engine import Runtime


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
    settings = runtime.settings
    config.setdefault("timeout_graceful_shutdown", 10)
    http = config.pop("http", "auto")
    protocol: type[asyncio.Protocol] = (
        import_from_string(HTTP_PROTOCOLS.get(http, http)) if isinstance(http, str) else http
    )
    limits = Limits(settings.header_timeout_s, settings.body_timeout_s, settings.max_connections)
    config["http"] = guarded(protocol, limits)
    return SignoffServer(
        uvicorn.Config(SendTimeout(app, settings.send_timeout_s), **config), runtime
    )
