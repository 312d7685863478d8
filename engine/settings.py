"""Configuration, read once from SIGNOFF_* environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///signoff.db"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8000
    failure_rate: float = 0.25
    tokens: str = ""
    separation_of_duties: bool = False
    allow_open: bool = False  # serve without tokens on a non-loopback address
    cors_origins: str = ""  # comma-separated origins allowed to call the API from a browser
    # Worker tuning: embedded workers in `serve`, job slots, claim polling, leases, retries.
    workers: int = 1
    pool_size: int = 10  # PostgreSQL connections per process (and as many again on overflow)
    concurrency: int = 8
    poll_interval_s: float = 0.5
    lease_s: float = 30.0
    max_attempts: int = 5
    retry_base_s: float = 0.5
    retry_cap_s: float = 60.0
    max_body_bytes: int = 64 * 1024
    max_input_bytes: int = 32 * 1024  # a run's input, or an event's data, as JSON
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

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from SIGNOFF_<FIELD> variables; explicit overrides win."""
        env = os.environ if env is None else env
        raw: dict[str, object] = {}
        for name in cls.__struct_fields__:
            value = env.get(f"SIGNOFF_{name.upper()}")
            if value is not None and value != "":
                raw[name] = value
        raw.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise ValueError(f"Invalid SIGNOFF_* setting: {exc}") from exc

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
