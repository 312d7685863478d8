"""Configuration, read once from SIGNOFF_* environment variables."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from signoff.engine.storage.urls import async_url

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///signoff.db"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str = DEFAULT_DATABASE_URL
    # Your definitions: MODULE:ATTR naming a Registry, a Pack, or a factory taking these
    # Settings and returning one (signoff.apps). Unset: every installed pack.
    app: str = ""
    # The installed packs (entry-point group `signoff.definitions`) to load, by name,
    # comma-separated; unset: all of them. `signoff` is Signoff's own approval and purchase_order.
    packs: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    failure_rate: float = 0.25
    tokens: str = ""
    separation_of_duties: bool = False
    allow_open: bool = False  # serve without tokens on a non-loopback address
    cors_origins: str = ""  # comma-separated origins allowed to call the API from a browser
    # Worker tuning: embedded workers in `serve`, job slots, claim polling, leases, retries.
    workers: int = 1
    # `serve` processes sharing the port (each with its own runtime and `workers` workers).
    processes: int = 1
    # PostgreSQL connections: reads take up to twice this (a pool plus as many on overflow),
    # writes this many, and one more LISTENs: 31 per process at the default.
    pool_size: int = 10
    concurrency: int = 8
    poll_interval_s: float = 0.5
    lease_s: float = 30.0
    max_attempts: int = 5
    retry_base_s: float = 0.5
    retry_cap_s: float = 60.0
    # How often a process with workers folds new history entries' counters into the stats
    # (signoff.engine.storage.stats_rollup), and job moves into the job counts
    # (signoff.engine.storage.job_counts); reading the stats folds what is left first.
    stats_rollup_s: float = 5.0
    max_body_bytes: int = 64 * 1024
    max_input_bytes: int = 32 * 1024  # a run's input, or an event's data, as JSON
    max_document_bytes: int = 64 * 1024  # a chart document deployed at run time
    # The hosts chart documents' http jobs may call (comma-separated; `*.example.com`); unset:
    # any host the server can reach.
    http_allowed_hosts: str = ""
    # Webhook deliveries: one attempt's time limit, and the backoff between attempts (a
    # subscription's max_attempts bounds how many).
    # Approval links in task notifications: their origin (default http://HOST:PORT) and life.
    public_url: str = ""
    link_ttl_s: float = 7 * 86400.0
    webhook_timeout_s: float = 10.0
    webhook_retry_base_s: float = 5.0
    webhook_retry_cap_s: float = 3600.0
    # Live feed: SSE comment heartbeat period, and how many entries a client may lag behind
    # before it is dropped (it then reconnects with Last-Event-ID and replays).
    heartbeat_s: float = 15.0
    feed_buffer: int = 1024
    # A write to a client that makes no progress for this long closes its connection.
    send_timeout_s: float = 30.0
    # Slow clients: time to receive a request's headers, then its body; open connections.
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    max_connections: int = 10_000
    # Host names the server answers to besides the loopback names (comma-separated).
    allowed_hosts: str = ""
    metrics_public: bool = False  # serve /metrics without a token even when tokens are set
    # The inbox's counts are exact up to this many tasks; beyond, they say "at least this many"
    # (signoff.engine.storage.inbox), so a request reads no more of the index than that.
    task_count_limit: int = 1000

    def __post_init__(self) -> None:
        for name, (ok, phrase) in _RULES.items():
            if not ok(getattr(self, name)):
                raise ValueError(f"{variable(name)} must be {phrase}, not {getattr(self, name)!r}")
        if self.retry_cap_s < self.retry_base_s:
            raise ValueError("SIGNOFF_RETRY_CAP_S must be at least SIGNOFF_RETRY_BASE_S")
        if self.webhook_retry_cap_s < self.webhook_retry_base_s:
            raise ValueError(
                "SIGNOFF_WEBHOOK_RETRY_CAP_S must be at least SIGNOFF_WEBHOOK_RETRY_BASE_S"
            )
        if self.public_url and not _ORIGIN.match(self.public_url.rstrip("/")):
            raise ValueError(
                f"SIGNOFF_PUBLIC_URL is {self.public_url!r}; give the origin people reach this "
                "server at, like https://signoff.example.com"
            )
        for origin in _items(self.cors_origins):
            if origin != "*" and not _ORIGIN.match(origin):
                raise ValueError(
                    f"SIGNOFF_CORS_ORIGINS holds {origin!r}; an origin looks like "
                    "https://app.example.com (scheme, host and optional port, no path)"
                )
        # The forms people copy (postgresql://…, postgres://…, sqlite:///…) get the async driver.
        msgspec.structs.force_setattr(self, "database_url", async_url(self.database_url))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from SIGNOFF_<FIELD> variables; explicit overrides win. A bad value raises
        ValueError naming its variable."""
        env = os.environ if env is None else env
        raw: dict[str, object] = {}
        for name in cls.__struct_fields__:
            value = env.get(variable(name))
            if value is not None and value != "":
                raw[name] = value
        raw.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as exc:
            found = _FIELD.search(str(exc))
            if found is None:  # raised by __post_init__: it already names the variable
                raise ValueError(str(exc)) from None
            name = found.group(1)
            phrase = _RULES[name][1] if name in _RULES else _KINDS.get(_kind(name), "valid")
            raise ValueError(f"{variable(name)} must be {phrase}, not {raw[name]!r}") from None


def variable(name: str) -> str:
    """The environment variable of a settings field."""
    return f"SIGNOFF_{name.upper()}"


def _items(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _kind(name: str) -> type:
    return type(getattr(Settings(), name))


def _positive(value: float) -> bool:
    return value > 0


def _at_least(low: int) -> Callable[[int], bool]:
    return lambda value: value >= low


_FIELD = re.compile(r"at `\$\.(\w+)`")
_ORIGIN = re.compile(r"^https?://[^/\s:]+(:\d{1,5})?$")
_KINDS = {bool: "1 or 0 (true or false)", int: "a whole number", float: "a number", str: "text"}
_SECONDS = "a number of seconds above 0"
_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "host": (bool, "a host name or address"),
    "port": (lambda p: 1 <= p <= 65535, "a port number (1 to 65535)"),
    "failure_rate": (lambda r: 0 <= r <= 1, "between 0 and 1"),
    "workers": (_at_least(0), "a whole number of 0 or more"),
    "processes": (_at_least(1), "a whole number of 1 or more"),
    "pool_size": (_at_least(1), "a whole number of 1 or more"),
    "concurrency": (_at_least(1), "a whole number of 1 or more"),
    "poll_interval_s": (_positive, _SECONDS),
    "lease_s": (_positive, _SECONDS),
    "max_attempts": (_at_least(1), "a whole number of 1 or more"),
    "retry_base_s": (lambda v: v >= 0, "a number of seconds, 0 or more"),
    "retry_cap_s": (lambda v: v >= 0, "a number of seconds, 0 or more"),
    "webhook_timeout_s": (_positive, _SECONDS),
    "link_ttl_s": (_positive, _SECONDS),
    "webhook_retry_base_s": (lambda v: v >= 0, "a number of seconds, 0 or more"),
    "webhook_retry_cap_s": (lambda v: v >= 0, "a number of seconds, 0 or more"),
    "max_body_bytes": (_at_least(1), "a number of bytes above 0"),
    "max_input_bytes": (_at_least(1), "a number of bytes above 0"),
    "max_document_bytes": (lambda v: 1 <= v <= 512 * 1024, "a number of bytes, 1 to 524288"),
    "heartbeat_s": (_positive, _SECONDS),
    "feed_buffer": (_at_least(1), "a whole number of 1 or more"),
    "send_timeout_s": (_positive, _SECONDS),
    "header_timeout_s": (_positive, _SECONDS),
    "body_timeout_s": (_positive, _SECONDS),
    "max_connections": (_at_least(1), "a whole number of 1 or more"),
    "task_count_limit": (_at_least(1), "a whole number of 1 or more"),
}
