"""Hot-path SQL: each statement written once with `$n` placeholders, run on the raw driver.

Transitions, claims and settlements run through the driver itself (asyncpg, or sqlite3 inline
on the write connection), skipping SQLAlchemy's statement building and per-statement greenlet
hop: that was most of a transition's cost. SQLAlchemy still owns the schema, migrations and
reads. Result columns named in `json` and `times` are decoded the same way on both dialects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec
from sqlalchemy import JSON, Table

from signoff.engine.storage.schema import UTCDateTime

_PLACEHOLDER = re.compile(r"\$(\d+)")

Row = dict[str, Any]


@dataclass(frozen=True)
class Sql:
    """One statement: `pg` with `$n` placeholders, `sqlite` with `?n`; `json`/`times` name the
    result columns that hold JSON and timestamps."""

    pg: str
    sqlite: str
    json: frozenset[str] = frozenset()
    times: frozenset[str] = frozenset()


def sql(text: str, *, of: Table | None = None) -> Sql:
    """A statement for both dialects; its results decode like the columns of `of`."""
    flat = " ".join(text.split())
    cols = list(of.columns) if of is not None else []
    json = frozenset(c.name for c in cols if isinstance(c.type, JSON))
    times = frozenset(c.name for c in cols if isinstance(c.type, UTCDateTime))
    return Sql(flat, _PLACEHOLDER.sub(r"?\1", flat), json, times)


def columns(table: Table, *, skip: tuple[str, ...] = ()) -> list[str]:
    """The table's column names in declaration order (so statements follow the schema)."""
    return [c.name for c in table.columns if c.name not in skip]


class Tx(Protocol):
    """A write transaction on the raw driver (one per dialect, see the store subclasses)."""

    async def fetch(self, stmt: Sql, *args: Any) -> list[Row]: ...

    async def fetchrow(self, stmt: Sql, *args: Any) -> Row | None: ...

    async def execute(self, stmt: Sql, *args: Any) -> int:
        """Run a statement; the number of rows it changed."""
        ...


def decode_row(stmt: Sql, row: Row) -> Row:
    """Decode the JSON text and timestamp text a SQLite row holds for `stmt`'s columns."""
    for name in stmt.json:
        if isinstance(row.get(name), str):
            row[name] = msgspec.json.decode(row[name])
    for name in stmt.times:
        if isinstance(row.get(name), str):
            row[name] = datetime.fromisoformat(row[name]).replace(tzinfo=UTC)
    return row
