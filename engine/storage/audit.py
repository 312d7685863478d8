"""Reading the chain back out: history entries in seq order with their hashes, page by page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from signoff.engine.audit.chain import GENESIS, timestamp
from signoff.engine.audit.formats import ChainLine, EndLine, Line
from signoff.engine.storage.schema import AUDIT_CHAIN, HISTORY
from signoff.engine.storage.store import Store

PAGE = 1000


@dataclass(frozen=True)
class ChainStart:
    """Where the chain begins: entries up to `seq` predate it (stored before migration 0007)."""

    seq: int
    at: datetime


async def chain_start(store: Store) -> ChainStart:
    async with store.read() as conn:
        row = (await conn.execute(select(AUDIT_CHAIN).where(AUDIT_CHAIN.c.id == 1))).one()
    return ChainStart(int(row.started_seq), row.started_at)


async def export(
    store: Store, start: ChainStart, *, since_seq: int = 0, limit: int | None = None
) -> AsyncIterator[Line]:
    """An export's lines (signoff.engine.audit.formats): where the chain starts, the entries
    after `since_seq` (at most `limit`), and the end line that says the export is whole."""
    yield ChainLine(started_seq=start.seq, started_at=timestamp(start.at), since_seq=since_seq)
    count, last, head = 0, None, None
    async for entry in entries(store, since_seq=since_seq, limit=limit):
        yield entry
        count, last, head = count + 1, entry["seq"], entry["hash"]
    full = limit is not None and count == limit
    yield EndLine(entries=count, last_seq=last, head=head, more=full)


async def entries(
    store: Store, *, since_seq: int = 0, limit: int | None = None
) -> AsyncIterator[dict[str, Any]]:
    """History entries with seq > `since_seq`, oldest first (at most `limit`), as exported:
    each with its `hash` and the `prev_hash` it links to (None before the chain began)."""
    prev: str | None = None
    async with store.read() as conn:
        before = await conn.execute(
            select(HISTORY.c.hash)
            .where(HISTORY.c.seq <= since_seq)
            .order_by(HISTORY.c.seq.desc())
            .limit(1)
        )
        found = before.scalar_one_or_none()
        start = await conn.execute(select(AUDIT_CHAIN.c.started_seq))
        started = int(start.one().started_seq)
    prev = found if found is not None else (GENESIS if since_seq >= started else None)
    cursor, left = since_seq, limit
    while left is None or left > 0:
        size = PAGE if left is None else min(PAGE, left)
        async with store.read() as conn:
            query = (
                select(HISTORY.c).where(HISTORY.c.seq > cursor).order_by(HISTORY.c.seq).limit(size)
            )
            rows = (await conn.execute(query)).all()
        for row in rows:
            if row.hash is not None and prev is None and row.seq > started:
                prev = GENESIS
            yield exported(row, prev if row.hash is not None else None)
            prev = row.hash
        if len(rows) < size:
            return
        cursor = rows[-1].seq
        if left is not None:
            left -= len(rows)


def exported(row: Any, prev_hash: str | None) -> dict[str, Any]:
    """One entry as exported (and as `signoff audit verify` reads it back)."""
    return {
        "seq": row.seq,
        "run_id": row.run_id,
        "version": row.version,
        "at": timestamp(row.at),
        "actor": row.actor,
        "event": row.event,
        "data": row.data,
        "reason": row.reason,
        "business": {"from": row.business_from, "to": row.business_to},
        "lifecycle": {"from": row.lifecycle_from, "to": row.lifecycle_to},
        "prev_hash": prev_hash,
        "hash": row.hash,
    }
