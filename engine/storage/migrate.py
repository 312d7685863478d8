"""Schema migrations with alembic, run programmatically on the store's own connection."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection

from signoff.engine.storage.store import Store

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


async def upgrade(store: Store, revision: str = "head") -> None:
    """Bring the schema to `revision` (idempotent; safe to run from several processes)."""
    async with store.migrating() as conn:
        await conn.run_sync(_run, "upgrade", revision)
        await conn.commit()


async def current(store: Store) -> str | None:
    async with store.engine.connect() as conn:
        return await conn.run_sync(lambda c: MigrationContext.configure(c).get_current_revision())


def head() -> str | None:
    """The newest revision this code knows."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _run(connection: Connection, action: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    getattr(command, action)(config, revision)
