"""Idempotency records: a repeated POST with the same key returns the first response."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from engine.errors import IdempotencyMismatchError
from engine.tables import IDEMPOTENCY


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


async def lookup(conn: AsyncConnection, idem: IdempotencyKey) -> Response | None:
    """The stored response for this key, if any; first waits out a concurrent first use."""
    if conn.dialect.name == "postgresql":
        # Requests repeating one key serialize here until the first commits (or rolls back),
        # so a repeat sees the stored response instead of racing the original.
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 5160))"),
            {"k": f"{idem.key}\x1f{idem.actor}\x1f{idem.route}"},
        )
    row = (
        await conn.execute(
            select(IDEMPOTENCY).where(
                IDEMPOTENCY.c.key == idem.key,
                IDEMPOTENCY.c.actor == idem.actor,
                IDEMPOTENCY.c.route == idem.route,
            )
        )
    ).one_or_none()
    if row is None:
        return None
    if row.request_hash != idem.request_hash:
        raise IdempotencyMismatchError()
    return Response(row.status_code, row.body.encode(), replayed=True)


async def record(
    conn: AsyncConnection, idem: IdempotencyKey, response: Response, now: datetime
) -> None:
    """Store the response in the same transaction as the effect it describes."""
    await conn.execute(
        IDEMPOTENCY.insert().values(
            key=idem.key,
            actor=idem.actor,
            route=idem.route,
            request_hash=idem.request_hash,
            status_code=response.status_code,
            body=response.body.decode(),
            created_at=now,
        )
    )
