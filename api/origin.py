"""Host and Origin checks: the defence against DNS rebinding and cross-site writes.

A page on any website can make a browser send requests to 127.0.0.1 (its name rebound to
loopback, or a plain cross-site POST). Such requests carry the attacker's name in `Host` or
their site in `Origin`; a server that answers only its own names and refuses state-changing
requests from foreign origins gives those pages nothing to drive.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import msgspec

from signoff.api.errors import PROBLEM
from signoff.engine import Settings

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
WILDCARD_ADDRESSES = ("0.0.0.0", "::", "")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
UNCHECKED_PATHS = ("/healthz",)  # probes address a process by its IP; it reveals nothing
HOST_NOT_ALLOWED, ORIGIN_NOT_ALLOWED = "host-not-allowed", "origin-not-allowed"
PROBLEM_TYPES = {HOST_NOT_ALLOWED: 400, ORIGIN_NOT_ALLOWED: 403}

ASGIApp = Any


class HostPolicy:
    """Which Host names and Origins a server accepts."""

    def __init__(self, hosts: Iterable[str], origins: Iterable[str]) -> None:
        names = {h.strip().lower().strip("[]") for h in hosts if h.strip()}
        self.any_host = "*" in names
        self.suffixes = tuple(n[1:] for n in names if n.startswith("*."))  # ".example.com"
        self.names = frozenset(n for n in names if not n.startswith("*"))
        listed = {o.strip().rstrip("/").lower() for o in origins if o.strip()}
        self.any_origin = "*" in listed
        self.origins = frozenset(listed)

    @classmethod
    def of(cls, settings: Settings) -> HostPolicy:
        hosts = [*LOOPBACK_NAMES, *settings.allowed_hosts.split(",")]
        if settings.host not in WILDCARD_ADDRESSES:
            hosts.append(settings.host)  # the address it was told to listen on
        return cls(hosts, settings.cors_origins.split(","))

    def host_allowed(self, host: str) -> bool:
        if self.any_host:
            return True
        name = _hostname(host)
        if name is None:
            return False
        return name in self.names or name.endswith(self.suffixes) or _loopback_ip(name)

    def origin_allowed(self, origin: str, host: str) -> bool:
        """An Origin is this server's own (same host and port as the request's Host) or
        listed in SIGNOFF_CORS_ORIGINS."""
        origin = origin.strip().rstrip("/").lower()
        if self.any_origin or origin in self.origins:
            return True
        try:
            netloc = urlsplit(origin).netloc
        except ValueError:
            return False
        return bool(netloc) and netloc == host.strip().lower()


def _hostname(host: str) -> str | None:
    """The name in a Host header, without its port; None if it is not a valid Host."""
    host = host.strip().lower()
    if host.startswith("["):
        name, bracket, rest = host[1:].partition("]")
        if not bracket or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return name
    name, colon, port = host.partition(":")
    if colon and not (port.isascii() and port.isdigit()):
        return None
    return name or None


def _loopback_ip(name: str) -> bool:
    parts = name.split(".")
    return len(parts) == 4 and parts[0] == "127" and all(p.isdigit() for p in parts)


def _refusal(status: int, kind: str, detail: str) -> tuple[dict[str, Any], bytes]:
    body = msgspec.json.encode(
        {
            "type": f"urn:signoff:problem:{kind}",
            "title": "Bad request" if status == 400 else "Forbidden",
            "status": status,
            "detail": detail,
        }
    )
    start = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", PROBLEM.encode()),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    return start, body


def host_guard(app: ASGIApp, policy: HostPolicy) -> ASGIApp:
    """ASGI middleware: 400 for a Host this server is not reached by, 403 for a
    state-changing request from a foreign Origin. Runs before routing, auth and the body."""

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in UNCHECKED_PATHS:
            await app(scope, receive, send)
            return
        host = origin = ""
        for name, value in scope["headers"]:
            if name == b"host":
                host = value.decode("latin-1")
            elif name == b"origin":
                origin = value.decode("latin-1")
        refusal = None
        if host and not policy.host_allowed(host):
            refusal = _refusal(
                400,
                HOST_NOT_ALLOWED,
                "This server is not reached by that name: add it to SIGNOFF_ALLOWED_HOSTS.",
            )
        elif (
            origin and scope["method"] in UNSAFE_METHODS and not policy.origin_allowed(origin, host)
        ):
            refusal = _refusal(
                403,
                ORIGIN_NOT_ALLOWED,
                "Requests that change something are accepted from this server's own pages "
                "and from the origins in SIGNOFF_CORS_ORIGINS only.",
            )
        if refusal is None:
            await app(scope, receive, send)
            return
        start, body = refusal
        await send(start)
        await send({"type": "http.response.body", "body": body})

    return guarded
