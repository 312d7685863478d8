"""Idempotency records: a repeated POST with the same key returns the first response."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from signoff.engine.errors import IdempotencyMismatchError
from signoff.engine.storage.statements import Tx, sql

# Requests repeating one key serialize here until the first commits (or rolls back), so a
# repeat sees the stored response instead of racing the original (PostgreSQL; SQLite has one
# writer at a time anyway).
_LOCK = sql("SELECT pg_advisory_xact_lock(hashtextextended($1, 5160))")
_LOOKUP = sql(
    "SELECT request_hash, status_code, body FROM idempotency"
    " WHERE key = $1 AND actor = $2 AND route = $3"
)
_RECORD = sql(
    "INSERT INTO idempotency (key, actor, route, request_hash, status_code, body, created_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
)


@dataclass(frozen=True)
class IdempotencyKey:
    """A client's key, scoped to the actor and the route, with a hash of the request body."""

    key: str
    actor: str
    route: str
    request_hash: str


@dataclass(frozen=True)
class Response:
    """What an engine write answers: the HTTP status and the encoded run view."""

    status_code: int
    body: bytes
    replayed: bool = False


async def lookup(tx: Tx, idem: IdempotencyKey) -> Response | None:
    """The stored response for this key, if any; first waits out a concurrent first use."""
    if not tx.is_sqlite:
        await tx.execute(_LOCK, f"{idem.key}\x1f{idem.actor}\x1f{idem.route}")
    row = await tx.fetchrow(_LOOKUP, idem.key, idem.actor, idem.route)
    if row is None:
        return None
    if row["request_hash"] != idem.request_hash:
        raise IdempotencyMismatchError()
    return Response(row["status_code"], row["body"].encode(), replayed=True)


async def record(tx: Tx, idem: IdempotencyKey, response: Response, now: datetime) -> None:
    """Store the response in the same transaction as the effect it describes."""
    await tx.execute(
        _RECORD,
        idem.key,
        idem.actor,
        idem.route,
        idem.request_hash,
        response.status_code,
        response.body.decode(),
        now,
    )
