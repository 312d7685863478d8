"""The audit chain as the engine writes it, on SQLite and PostgreSQL: every history entry's hash
links to the one before, even when transitions commit concurrently."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from signoff.engine.audit.verify import verify
from signoff.engine.runtime import Runtime
from signoff.engine.storage.audit import chain_start, entries


async def test_concurrent_transitions_chain_in_seq_order(runtime: Runtime) -> None:
    d = runtime.dispatcher

    async def one(i: int) -> None:
        made = await d.create("approval", actor="alice", input={"output": 0.9}, ref_id=f"r{i}")
        run_id = made.run_id
        await d.dispatch(run_id, "pause", actor="ops")
        await d.dispatch(run_id, "resume", actor="ops")
        await d.dispatch(run_id, "cancel", actor="ops")

    await asyncio.gather(*(one(i) for i in range(12)))
    got = [e async for e in entries(runtime.store)]
    assert len(got) == 48
    assert all(e["hash"] for e in got)
    verdict = verify(got)
    assert verdict.ok, verdict
    assert verdict.checked == 48
    # Paged: the second page links to the first.
    first = [e async for e in entries(runtime.store, limit=20)]
    rest = [e async for e in entries(runtime.store, since_seq=first[-1]["seq"])]
    assert rest[0]["prev_hash"] == first[-1]["hash"]
    assert verify(first + rest).ok
    assert (await chain_start(runtime.store)).seq == 0


async def test_an_entry_changed_behind_signoffs_back_is_named(runtime: Runtime) -> None:
    d = runtime.dispatcher
    made = await d.create("approval", actor="alice", input={"output": 0.9})
    for event in ("pause", "resume", "cancel"):
        await d.dispatch(made.run_id, event, actor="ops")
    seqs = [e["seq"] async for e in entries(runtime.store)]
    async with runtime.store.engine.begin() as conn:
        await conn.execute(
            text("UPDATE history SET actor = 'mallory' WHERE seq = :s"), {"s": seqs[2]}
        )
    verdict = verify([e async for e in entries(runtime.store)])
    assert not verdict.ok
    assert verdict.first_bad == seqs[2]
    assert verdict.checked == 2


async def test_numbers_hash_by_value_so_jsonb_keeps_the_chain(runtime: Runtime) -> None:
    # PostgreSQL's jsonb gives 1e16 back as the integer 10000000000000000 and keeps 1.0 as
    # 1.0: a hash over the spelling would break on the first read back.
    d = runtime.dispatcher
    made = await d.create("approval", actor="alice", input={"output": 0.9})
    for data in ({"n": 1e16}, {"n": 1.0, "m": [2e22, -0.0]}, {"n": 1.5e300}, {"n": 1e-7}):
        await d.dispatch(made.run_id, "pause", actor="ops", data=data)
        await d.dispatch(made.run_id, "resume", actor="ops")
    verdict = verify([e async for e in entries(runtime.store)])
    assert verdict.ok, verdict
    assert verdict.checked == 9
