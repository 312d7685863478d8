"""Alembic migrations build exactly the schema the code declares, on both databases."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlmodel import SQLModel

import signoff.engine.storage.schema  # noqa: F401
from signoff.engine.audit.chain import GENESIS
from signoff.engine.audit.verify import verify
from signoff.engine.runtime import Runtime
from signoff.engine.storage.audit import entries
from signoff.engine.storage.migrate import current, upgrade
from signoff.engine.storage.store import Store
from signoff.machines.registry import build_registry
from tests.helpers import downgrade, settings_for

HEAD = "0013"  # the newest migration: `signoff migrate` ends there


def _diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_upgrade_from_empty_matches_the_models(empty_database_url: str) -> None:
    db = Store.open(empty_database_url)
    try:
        assert await current(db) is None
        await upgrade(db, "0001")  # a database of the first release, then upgraded
        assert await current(db) == "0001"
        await upgrade(db, "0002")
        async with db.engine.begin() as conn:  # a key whose first use created a run, one not
            for key, status in (("made", 201), ("sent", 200)):
                await conn.execute(
                    text(
                        "INSERT INTO idempotency (key, actor, route, request_hash, status_code,"
                        " body, created_at) VALUES (:k, 'a', 'r', 'h', :s, '{}', :t)"
                    ),
                    {"k": key, "s": status, "t": datetime.now(UTC)},
                )
        await upgrade(db)
        await upgrade(db)  # a second run (another process starting) is a no-op
        assert await current(db) == HEAD
        async with db.engine.connect() as conn:
            rows = await conn.execute(text("SELECT key, created FROM idempotency ORDER BY key"))
            assert [(k, bool(c)) for k, c in rows] == [("made", True), ("sent", False)]
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            assert {"runs", "history", "jobs", "idempotency"} <= tables
            assert await conn.run_sync(_diff) == []
    finally:
        await db.dispose()


async def test_migrate_command(empty_database_url: str) -> None:
    env = {**os.environ, "SIGNOFF_DATABASE_URL": empty_database_url}
    done = subprocess.run(
        [sys.executable, "-m", "signoff", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "schema is up to date" in done.stderr
    db = Store.open(empty_database_url)
    try:
        assert await current(db) == HEAD
    finally:
        await db.dispose()


async def test_0007_counts_runs_already_there_and_starts_the_chain_after_them(
    database_url: str,
) -> None:
    """A database with runs and history from before 0007 (made here by downgrading one):
    upgrading counts the runs where they are and starts the audit chain after their entries."""
    rt = Runtime(settings_for(database_url), build_registry(0.0))
    await rt.start()
    try:
        for i in range(3):
            made = await rt.dispatcher.create("approval", actor="a", input={"output": 0.9})
            if i == 0:
                await rt.dispatcher.dispatch(made.run_id, "cancel", actor="ops")
    finally:
        await rt.stop()
    db = Store.open(database_url)
    try:
        await downgrade(db, "0006")
        await upgrade(db)
        async with db.engine.connect() as conn:
            now = await conn.execute(
                text("SELECT key, n FROM stat_counts WHERE kind = 'now' AND n <> 0")
            )
            assert dict(now.all()) == {"unprocessed": 2}
            started = (await conn.execute(text("SELECT started_seq FROM audit_chain"))).scalar()
            assert started == 4
    finally:
        await db.dispose()
    rt = Runtime(settings_for(database_url), build_registry(0.0))
    await rt.start()
    try:
        later = await rt.dispatcher.create("approval", actor="a", input={"output": 0.9})
        await rt.dispatcher.dispatch(later.run_id, "cancel", actor="ops")
        got = [e async for e in entries(rt.store)]
        verdict = verify(got)
        assert verdict.ok, verdict
        assert (verdict.unchained, verdict.checked) == (4, 2)
        assert got[4]["prev_hash"] == GENESIS
    finally:
        await rt.stop()
