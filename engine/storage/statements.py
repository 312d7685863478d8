"""Hot-path SQL: each statement written once, rendered for PostgreSQL and SQLite at import.

Transitions, claims and settlements run these through the raw driver (asyncpg, or sqlite3 on
the writer thread), skipping SQLAlchemy's statement building and per-statement greenlet hop:
that was most of a transition's cost. SQLAlchemy still owns the schema, migrations and reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

_PLACEHOLDER = re.compile(r"\$(\d+)")
_ENCODER = msgspec.json.Encoder()
_decode = msgspec.json.decode


@dataclass(frozen=True)
class Sql:
    """One statement: `$n` placeholders; `json`/`times` name the result columns to decode."""

    pg: str
    sqlite: str
    json: frozenset[str] = frozenset()
    times: frozenset[str] = frozenset()


def sql(
    text: str,
    *,
    sqlite: str | None = None,
    json: tuple[str, ...] = (),
    times: tuple[str, ...] = (),
) -> Sql:
    """A statement for both dialects; SQLite gets `?n` placeholders (or its own text)."""
    lite = _PLACEHOLDER.sub(r"?\1", sqlite if sqlite is not None else text)
    return Sql(" ".join(text.split()), " ".join(lite.split()), frozenset(json), frozenset(times))


Row = dict[str, Any]


class Tx(Protocol):
    """A write transaction on the raw driver (see engine/database.py for the two kinds)."""

    is_sqlite: bool

    async def fetch(self, stmt: Sql, *args: Any) -> list[Row]: ...

    async def fetchrow(self, stmt: Sql, *args: Any) -> Row | None: ...

    async def execute(self, stmt: Sql, *args: Any) -> int:
        """Run a statement; the number of rows it changed."""
        ...


# SQLite keeps JSON as text and timestamps as naive-UTC text in SQLAlchemy's format, so the
# engine's raw writes and SQLAlchemy's reads see one representation.
def sqlite_param(value: Any) -> Any:
    if isinstance(value, dict | list):
        return _ENCODER.encode(value).decode()
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def sqlite_row(stmt: Sql, names: list[str], values: tuple[Any, ...]) -> Row:
    row = dict(zip(names, values, strict=True))
    for name in stmt.json:
        if row.get(name) is not None:
            row[name] = _decode(row[name])
    for name in stmt.times:
        if row.get(name) is not None:
            row[name] = datetime.fromisoformat(row[name]).replace(tzinfo=UTC)
    return row


def pg_row(record: Mapping[str, Any]) -> Row:
    return dict(record.items())
