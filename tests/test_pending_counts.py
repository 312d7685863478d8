"""A transition's counters wait in `pending_counts`, not in its history entry, on SQLite and
PostgreSQL: the fold adds them and deletes what it added, a purge waits for them, and
migration 0011 moves the counters the fold had not reached out of history."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import text

from signoff.engine.runtime import Runtime
from signoff.engine.storage import census
from signoff.engine.storage import purge as retention
from signoff.engine.storage.migrate import upgrade
from signoff.engine.storage.stats_rollup import behind, roll_up
from signoff.engine.storage.store import Store
from signoff.machines.registry import build_registry
from tests.helpers import downgrade, settings_for
from tests.test_census import truth


async def _rows(store: Store, query: str) -> list[Any]:
    async with store.engine.connect() as conn:
        return [tuple(r) for r in await conn.execute(text(query))]


async def _stats(store: Store) -> dict[tuple[Any, ...], int]:
    rows = await _rows(store, "SELECT definition, kind, key, day, bucket, n FROM stat_counts")
    return {tuple(r[:5]): int(r[5]) for r in rows if r[5]}


async def test_counters_wait_beside_history_until_folded(runtime: Runtime) -> None:
    d = runtime.dispatcher
    made = [await d.create("approval", actor="a", input={"output": 0.9}) for _ in range(3)]
    await d.dispatch(made[0].run_id, "cancel", actor="ops")
    entries = await _rows(runtime.store, "SELECT seq, counts FROM history ORDER BY seq")
    assert [counts for _, counts in entries] == [None] * 4  # history keeps none of them
    pending = await _rows(runtime.store, "SELECT seq FROM pending_counts ORDER BY seq")
    assert [seq for (seq,) in pending] == [seq for seq, _ in entries]
    async with runtime.store.engine.connect() as conn:
        assert await behind(conn)
    assert await roll_up(runtime.store) == 4
    assert await _rows(runtime.store, "SELECT seq FROM pending_counts") == []
    async with runtime.store.engine.connect() as conn:
        assert not await behind(conn)
    assert await _rows(runtime.store, "SELECT seq FROM stats_rollup") == [(entries[-1][0],)]
    stats = await _stats(runtime.store)
    assert sum(n for (_, kind, *_), n in stats.items() if kind == "entered") == 3
    assert sum(n for (_, kind, *_), n in stats.items() if kind == "finished") == 1
    assert await census.read(runtime.store) == await truth(runtime.store)


async def test_a_purge_leaves_runs_whose_counters_are_pending(runtime: Runtime) -> None:
    """A plan made without folding (a dry run) counts the runs as if folded; one that folds
    purges them, and none whose counters a fold has not added."""
    d = runtime.dispatcher
    made = [await d.create("approval", actor="a") for _ in range(3)]
    for m in made:
        await d.dispatch(m.run_id, "cancel", actor="ops")
    await d.create("approval", actor="a")  # the newest entry stays
    later = d.clock() + timedelta(seconds=1)
    dry = await retention.plan(runtime.store, later, later, fold=False)
    assert dry.runs == 3
    assert len(await _rows(runtime.store, "SELECT seq FROM pending_counts")) == 7
    found = await retention.plan(runtime.store, later, later)
    assert await _rows(runtime.store, "SELECT seq FROM pending_counts") == []
    done = await retention.purge(runtime.store, found, later)
    assert done.rows["runs"] == 3
    assert await census.read(runtime.store) == await truth(runtime.store)


async def test_0011_moves_the_counters_not_folded_yet(database_url: str) -> None:
    """Down to 0010 the pending counters go back into their history entries (as 0010 kept
    them), and up again they come out: each is folded once."""
    rt = Runtime(settings_for(database_url), build_registry(0.0))
    await rt.start()
    try:
        made = [await rt.dispatcher.create("approval", actor="a") for _ in range(3)]
        await roll_up(rt.store)
        for m in made[:2]:
            await rt.dispatcher.dispatch(m.run_id, "cancel", actor="ops")
    finally:
        await rt.stop()
    db = Store.open(database_url)
    try:
        await downgrade(db, "0010")
        held = await _rows(db, "SELECT seq FROM history WHERE counts IS NOT NULL ORDER BY seq")
        assert len(held) == 2  # the two cancels, which the fold had not reached
        await upgrade(db)
        assert await _rows(db, "SELECT seq FROM pending_counts ORDER BY seq") == held
        assert await roll_up(db) == 2
        stats = await _stats(db)
        assert sum(n for (_, kind, *_), n in stats.items() if kind == "entered") == 3
        assert sum(n for (_, kind, *_), n in stats.items() if kind == "finished") == 2
        assert await census.read(db) == await truth(db)
        assert await roll_up(db) == 0  # the entries' own `counts`, left in history, stay unread
    finally:
        await db.dispose()
