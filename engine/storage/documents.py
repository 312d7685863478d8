"""The `definitions` table: chart documents as append-only versions, retired, never changed.

A version is added, retired (it starts no new runs) or deleted (only once retired and no run
uses it), each in a write transaction that also tells the other processes (NOTIFY on
PostgreSQL; SQLite processes look for changes, signoff.engine.documents.catalog).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from signoff.engine.errors import DefinitionInUseError, NotFoundError
from signoff.engine.storage.schema import DEFINITIONS
from signoff.engine.storage.statements import sql
from signoff.engine.storage.store import Store

_NEWEST = sql("SELECT version, hash FROM definitions WHERE name = $1 ORDER BY version DESC LIMIT 1")
_INSERT = sql(
    """INSERT INTO definitions (name, version, format, document, hash, created_by, created_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7)"""
)
_RETIRE = sql(
    "UPDATE definitions SET retired_at = $3 WHERE name = $1 AND version = $2 AND retired_at IS NULL"
)
_EXISTS = sql("SELECT retired_at FROM definitions WHERE name = $1 AND version = $2", of=DEFINITIONS)
_USED = sql("SELECT id FROM runs WHERE definition = $1 AND definition_version = $2 LIMIT 1")
_DELETE = sql("DELETE FROM definitions WHERE name = $1 AND version = $2")


@dataclass(frozen=True)
class StoredDocument:
    id: int
    name: str
    version: int
    format: str
    document: str
    hash: str
    created_by: str
    created_at: datetime
    retired_at: datetime | None


async def stored(store: Store) -> list[StoredDocument]:
    """Every stored version, oldest first."""
    async with store.read() as conn:
        rows = (await conn.execute(select(DEFINITIONS).order_by(DEFINITIONS.c.id))).all()
    return [StoredDocument(**row._mapping) for row in rows]


async def signature(store: Store) -> tuple[int, int, int]:
    """Changes whenever a version is added, retired or deleted: (count, newest id, retired)."""
    query = select(
        func.count(),
        func.coalesce(func.max(DEFINITIONS.c.id), 0),
        func.count(DEFINITIONS.c.retired_at),
    )
    async with store.read() as conn:
        count, newest, retired = (await conn.execute(query)).one()
    return int(count), int(newest), int(retired)


async def add(
    store: Store, name: str, fmt: str, document: str, digest: str, actor: str, now: datetime
) -> tuple[int, bool]:
    """Store `document` as the next version of `name`: (its version, whether it is new). The
    same document as the newest version is not stored again."""
    async with store.write() as tx:
        await store.lock_definitions(tx)
        newest = await tx.fetchrow(_NEWEST, name)
        if newest is not None and newest["hash"] == digest:
            return int(newest["version"]), False
        version = 1 if newest is None else int(newest["version"]) + 1
        await tx.execute(_INSERT, name, version, fmt, document, digest, actor, now)
        await store.announce_definitions(tx)
    return version, True


async def retire(store: Store, name: str, version: int, now: datetime) -> bool:
    """Retire a version (it starts no new runs); False if it already was."""
    async with store.write() as tx:
        if await tx.fetchrow(_EXISTS, name, version) is None:
            raise NotFoundError(f"No stored version {version} of {name!r}.")
        changed = await tx.execute(_RETIRE, name, version, now) == 1
        if changed:
            await store.announce_definitions(tx)
    return changed


async def delete(store: Store, name: str, version: int) -> None:
    """Delete a retired version that no run uses."""
    async with store.write() as tx:
        await store.lock_definitions(tx)
        row = await tx.fetchrow(_EXISTS, name, version)
        if row is None:
            raise NotFoundError(f"No stored version {version} of {name!r}.")
        if row["retired_at"] is None:
            raise DefinitionInUseError(
                f"{name} v{version} is not retired: retire it first, so no new run starts on it."
            )
        if await tx.fetchrow(_USED, name, version) is not None:
            raise DefinitionInUseError(
                f"Runs use {name} v{version}: it is kept while any run is on it (migrate them "
                "to a newer version with signoff migrate-runs)."
            )
        await tx.execute(_DELETE, name, version)
        await store.announce_definitions(tx)
