"""Stats counters travel with each history entry and are folded into stat_counts afterwards,
on SQLite and PostgreSQL: exactly once, whoever folds and however often, and never for a
transition that was rolled back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from signoff.engine.runtime import Runtime
from signoff.engine.storage.stats_rollup import roll_up

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def counters(rt: Runtime) -> dict[tuple[str, str, str, int], int]:
    async with rt.store.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT kind, key, day, bucket, n FROM stat_counts WHERE n <> 0")
        )
        return {(k, key, d, b): n for k, key, d, b, n in rows}


async def test_folding_counts_each_transition_once(runtime: Runtime) -> None:
    clock = [T0]
    d = runtime.dispatcher
    d.clock = lambda: clock[0]
    runs = [await d.create("approval", actor="alice", input={"output": 0.9}) for _ in range(3)]
    assert await counters(runtime) == {}  # nothing is folded on the write path
    clock[0] = T0 + timedelta(hours=2)
    for made in runs[:2]:
        await d.dispatch(made.run_id, "cancel", actor="ops")
    await d.dry_run(runs[2].run_id, "cancel", actor="ops")  # rolled back: counts nothing
    assert await roll_up(runtime.store) == 5
    assert await roll_up(runtime.store) == 0
    got = await counters(runtime)
    day = "2026-03-02"
    assert got[("entered", "unprocessed", day, -1)] == 3
    assert got[("now", "unprocessed", "", -1)] == 1
    assert got[("finished", "cancelled", day, -1)] == 2
    two_hours = [k for k in got if k[0] == "stay" and k[1] == "unprocessed"]
    assert [got[k] for k in two_hours] == [2]
    assert 2**12.75 <= 7200 < 2**13.25  # the bucket a 2-hour stay falls in: log2(7200) ≈ 12.8
    assert two_hours[0][3] == 4 * 12 + 40 + 1 + 3


async def test_concurrent_folds_never_double(runtime: Runtime) -> None:
    d = runtime.dispatcher
    for _ in range(20):
        made = await d.create("approval", actor="alice", input={"output": 0.9})
        await d.dispatch(made.run_id, "cancel", actor="ops")
    folded = await asyncio.gather(*(roll_up(runtime.store, batch=7) for _ in range(4)))
    assert sum(folded) == 40
    got = await counters(runtime)
    assert sum(n for (kind, *_), n in got.items() if kind == "entered") == 20
    assert sum(n for (kind, *_), n in got.items() if kind == "finished") == 20
