"""Reading the chain back out: history entries in seq order with their hashes, page by page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from signoff.engine.audit.chain import GENESIS, timestamp
from signoff.engine.audit.formats import ChainLine, EndLine, Line, PurgedLine
from signoff.engine.storage.schema import AUDIT_CHAIN, AUDIT_PURGED, HISTORY
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
    store: Store,
    start: ChainStart,
    *,
    since_seq: int = 0,
    limit: int | None = None,
    until_seq: int | None = None,
) -> AsyncIterator[Line]:
    """An export's lines (signoff.engine.audit.formats): where the chain starts, the entries
    after `since_seq` (at most `limit`, none after `until_seq`), a `purged` line before each
    entry whose predecessors were purged, and the end line that says the export is whole."""
    yield ChainLine(started_seq=start.seq, started_at=timestamp(start.at), since_seq=since_seq)
    count, last, head = 0, None, None
    async for entry in lines(store, since_seq=since_seq, limit=limit, until_seq=until_seq):
        yield entry
        if isinstance(entry, PurgedLine):
            continue
        count, last, head = count + 1, entry["seq"], entry["hash"]
    full = limit is not None and count == limit
    yield EndLine(entries=count, last_seq=last, head=head, more=full)


async def entries(
    store: Store, *, since_seq: int = 0, limit: int | None = None
) -> AsyncIterator[dict[str, Any]]:
    """History entries with seq > `since_seq`, oldest first (at most `limit`), as exported."""
    async for line in lines(store, since_seq=since_seq, limit=limit):
        if not isinstance(line, PurgedLine):
            yield line


async def lines(
    store: Store, *, since_seq: int = 0, limit: int | None = None, until_seq: int | None = None
) -> AsyncIterator[dict[str, Any] | PurgedLine]:
    """History entries with seq > `since_seq` (and at most `until_seq`), oldest first (at most
    `limit`), as exported: each with its `hash` and the `prev_hash` it links to (None before the
    chain began), after a PurgedLine where the entries before it were purged."""
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
            if until_seq is not None:
                query = query.where(HISTORY.c.seq <= until_seq)
            rows = (await conn.execute(query)).all()
            gaps = await purged_ranges(conn, cursor, rows[-1].seq) if rows else {}
        for row in rows:
            gap = gaps.get(row.seq)
            if gap is not None:
                yield gap
                prev = gap.last_hash
            if row.hash is not None and prev is None and row.seq > started:
                prev = GENESIS
            yield exported(row, prev if row.hash is not None else None)
            prev = row.hash
        if len(rows) < size:
            return
        cursor = rows[-1].seq
        if left is not None:
            left -= len(rows)


async def purged_ranges(
    conn: AsyncConnection, after: int, upto: int | None
) -> dict[int, PurgedLine]:
    """The purged ranges that end right before an entry in (`after`, `upto`], by that entry."""
    query = select(AUDIT_PURGED).where(AUDIT_PURGED.c.seq > after)
    if upto is not None:
        query = query.where(AUDIT_PURGED.c.seq <= upto)
    return {
        row.seq: PurgedLine(
            after_seq=row.after_seq,
            last_seq=row.last_seq,
            last_hash=row.last_hash,
            next_seq=row.seq,
        )
        for row in await conn.execute(query)
    }


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
