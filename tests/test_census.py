"""The run census behind /metrics' `signoff_runs`, on SQLite and PostgreSQL: counters carried
in each history entry and folded off the write path agree with counting the runs table, after
every kind of move (a pause or a failure changes only the lifecycle), from a database migrated
with runs already in it, and after runs are deleted and forgotten."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text

from signoff.engine.runtime import Runtime
from signoff.engine.storage import census
from signoff.engine.storage import purge as retention
from signoff.engine.storage.census import UnfoldedError
from signoff.engine.storage.migrate import upgrade
from signoff.engine.storage.statements import sql
from signoff.engine.storage.stats_rollup import roll_up
from signoff.engine.storage.store import Store
from signoff.machines.registry import build_registry
from tests.helpers import downgrade, drain, settings_for

Census = dict[tuple[str, str, str], int]
_TRUTH = text("SELECT definition, state, lifecycle, COUNT(*) FROM runs GROUP BY 1, 2, 3")


async def truth(store: Store) -> Census:
    async with store.engine.connect() as conn:
        return {(d, s, lc): n for d, s, lc, n in await conn.execute(_TRUTH)}


async def kept(store: Store) -> Census:
    """What run_counts holds, without folding."""
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT definition, state, lifecycle, n FROM run_counts WHERE n <> 0")
        )
        return {(d, s, lc): n for d, s, lc, n in rows}


async def test_the_census_follows_every_move(runtime: Runtime) -> None:
    d = runtime.dispatcher
    made = [await d.create("approval", actor="a", input={"output": 0.9}) for _ in range(4)]
    low = await d.create("approval", actor="a", input={"output": 0.25})  # its job fails
    assert await kept(runtime.store) == {}  # nothing is counted on the write path
    assert await census.read(runtime.store) == await truth(runtime.store)
    for m in [*made, low]:
        await d.dispatch(m.run_id, "process", actor="a")
    await d.dispatch(made[0].run_id, "pause", actor="ops")  # same state, lifecycle paused
    await drain(runtime)
    await d.dispatch(made[1].run_id, "approve", actor="boss")
    await d.dispatch(made[2].run_id, "cancel", actor="ops")
    run = await runtime.queries.get(low.run_id)
    assert (run.state, run.lifecycle) == ("error", "errored")
    got = await census.read(runtime.store)
    assert got == await truth(runtime.store)
    assert got[("approval", "sending_to_queue", "paused")] == 1
    await d.dispatch(made[0].run_id, "resume", actor="ops")
    await d.dry_run(made[3].run_id, "cancel", actor="ops")  # rolled back: moves nothing
    assert await census.read(runtime.store) == await truth(runtime.store)
    census_now = (await runtime.queries.census(d.clock())).runs
    assert census_now == await truth(runtime.store)


async def test_0010_counts_the_runs_already_there(database_url: str) -> None:
    """Runs stored before the census are counted by the migration, once, and move after it."""
    rt = Runtime(settings_for(database_url), build_registry(0.0))
    await rt.start()
    try:
        made = [await rt.dispatcher.create("approval", actor="a") for _ in range(3)]
        await rt.dispatcher.dispatch(made[0].run_id, "cancel", actor="ops")
    finally:
        await rt.stop()
    db = Store.open(database_url)
    try:
        await downgrade(db, "0009")
        await upgrade(db)
        await upgrade(db)  # a second run is a no-op
        await roll_up(db)  # their entries were not all folded: none counts twice
        assert (
            await kept(db)
            == await truth(db)
            == {
                ("approval", "unprocessed", "queued"): 2,
                ("approval", "unprocessed", "cancelled"): 1,
            }
        )
    finally:
        await db.dispose()
    rt = Runtime(settings_for(database_url), build_registry(0.0))
    await rt.start()
    try:
        await rt.dispatcher.dispatch(made[1].run_id, "cancel", actor="ops")
        assert await census.read(rt.store) == await truth(rt.store)
    finally:
        await rt.stop()


_SEQ = sql("SELECT max(seq) AS seq FROM history WHERE run_id = $1")
_DROP = [
    sql(f"DELETE FROM {table} WHERE {column} = $1")
    for table, column in (("history", "run_id"), ("jobs", "run_id"), ("runs", "id"))
]


async def purge(store: Store, run_id: str) -> None:
    """What `signoff purge` does to one finished run, as far as the census is concerned."""
    view = await _view(store, run_id)
    async with store.write() as tx:
        last = await tx.fetchrow(_SEQ, run_id)
        assert last is not None
        for statement in _DROP:
            await tx.execute(statement, run_id)
        await census.forget(store, tx, [view], int(last["seq"]))


async def _view(store: Store, run_id: str) -> tuple[str, str, str]:
    async with store.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT definition, state, lifecycle FROM runs WHERE id = :id"),
                {"id": run_id},
            )
        ).one()
    return (row[0], row[1], row[2])


async def test_deleted_runs_are_forgotten_once_folded(runtime: Runtime) -> None:
    d = runtime.dispatcher
    made = [await d.create("approval", actor="a") for _ in range(3)]
    for m in made[:2]:
        await d.dispatch(m.run_id, "cancel", actor="ops")
    with pytest.raises(UnfoldedError):  # its last entries are not counted yet
        await purge(runtime.store, made[0].run_id)
    assert await census.read(runtime.store) == await truth(runtime.store)  # nothing was deleted
    await roll_up(runtime.store)
    await purge(runtime.store, made[0].run_id)
    await d.dispatch(made[2].run_id, "cancel", actor="ops")  # folded after the purge
    got = await census.read(runtime.store)
    assert got == await truth(runtime.store) == {("approval", "unprocessed", "cancelled"): 2}


async def test_signoff_purge_takes_the_runs_it_deletes_out_of_the_census(
    runtime: Runtime,
) -> None:
    d = runtime.dispatcher
    made = [await d.create("approval", actor="a") for _ in range(4)]
    for m in made[:3]:
        await d.dispatch(m.run_id, "cancel", actor="ops")
    await d.create("approval", actor="a")  # the newest entry stays
    later = d.clock() + timedelta(seconds=1)
    found = await retention.plan(runtime.store, later, later)
    done = await retention.purge(runtime.store, found, later, batch=2)
    assert done.rows["runs"] == 3
    got = await census.read(runtime.store)
    assert got == await truth(runtime.store) == {("approval", "unprocessed", "queued"): 2}
