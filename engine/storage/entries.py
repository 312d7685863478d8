"""History entries after a seq, as the JSON the feed sends: one query per batch, the run's
creation columns joined in, the JSON columns read as text and never decoded (see
signoff.engine.storage.stored_view.Framer)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Select, Text, cast, select

from signoff.engine.storage.schema import HISTORY, RUNS
from signoff.engine.storage.store import Store
from signoff.engine.storage.stored_view import Framer

log = logging.getLogger("signoff.feed")
_TEXT = ("data", "business_from", "business_to", "lifecycle_from", "lifecycle_to", "run")
_COLUMNS = (
    *(HISTORY.c[c] for c in ("seq", "run_id", "version", "at", "actor", "event", "reason")),
    *(cast(HISTORY.c[c], Text).label(c) for c in _TEXT),
    *(RUNS.c[c] for c in ("definition", "ref_id", "ref_type", "created_at", "replay_of")),
    cast(RUNS.c.input, Text).label("input"),
)


@dataclass(frozen=True)
class Entry:
    seq: int
    run_id: str
    definition: str
    json: bytes


@dataclass(frozen=True)
class Batch:
    """Entries read, the last seq read (entries whose run's row is gone are read past), and
    whether the batch was full (more may follow)."""

    entries: list[Entry]
    last: int
    full: bool


def query(
    after: int, limit: int, *, run_id: str | None = None, definition: str | None = None
) -> Select[tuple[object, ...]]:
    """Entries with seq > `after`, oldest first (at most `limit`), of one run or definition."""
    stmt = (
        select(*_COLUMNS)
        .select_from(HISTORY.outerjoin(RUNS, RUNS.c.id == HISTORY.c.run_id))
        .where(HISTORY.c.seq > after)
        .order_by(HISTORY.c.seq)
        .limit(limit)
    )
    if run_id is not None:
        stmt = stmt.where(HISTORY.c.run_id == run_id)
    if definition is not None:
        stmt = stmt.where(RUNS.c.definition == definition)
    return stmt


async def read_after(
    store: Store,
    after: int,
    limit: int,
    *,
    run_id: str | None = None,
    definition: str | None = None,
) -> Batch:
    """Up to `limit` entries after `after`: an entry whose run's row is gone (its view cannot
    be rebuilt; purging deletes both together) is read past, not sent."""
    framer = Framer(postgres=store.engine.dialect.name == "postgresql")
    async with store.read() as conn:
        rows = (await conn.execute(query(after, limit, run_id=run_id, definition=definition))).all()
    found = []
    for row in rows:
        m = row._mapping
        if m["definition"] is None:
            log.warning("history entry %d: run %s has no row; not sent", m["seq"], m["run_id"])
            continue
        found.append(Entry(m["seq"], m["run_id"], m["definition"], framer.entry(m)))
    return Batch(found, rows[-1].seq if rows else after, len(rows) == limit)
