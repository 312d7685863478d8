"""Retention (signoff.engine.storage.purge) on SQLite and PostgreSQL: what a purge deletes and
keeps, and that the export of what it deletes and the history it keeps both still verify."""

from __future__ import annotations

from datetime import timedelta

import msgspec
import pytest
from sqlalchemy import text

from signoff.engine.audit.formats import EndLine, PurgedLine
from signoff.engine.dispatch.dispatcher import utcnow
from signoff.engine.runtime import Runtime
from signoff.engine.storage.purge import Purged, PurgeError, plan, purge
from tests.purge_support import check, counts, exported, history_of, seed, toggle


async def test_a_purge_exports_its_range_deletes_the_old_runs_and_the_rest_verifies(
    runtime: Runtime,
) -> None:
    store = runtime.store
    s = await seed(runtime)
    live_before = await history_of(store, s.live)
    quiet_before = await history_of(store, s.quiet)
    assert quiet_before[-1][0] < live_before[0][0]  # all its entries among the oldest
    found = await plan(store, s.before, utcnow())
    was = await counts(store)  # after the fold the plan ran first
    assert (found.runs, found.entries, found.held) == (5, 5 * 3, 0)
    assert found.first_seq is not None and found.last_seq is not None
    # The export of the range: every purged entry and the live run's between them.
    window = await exported(store, since_seq=found.first_seq - 1, until_seq=found.last_seq)
    entries = [line for line in window if isinstance(line, dict)]
    assert {e["run_id"] for e in entries} == {*s.old, s.live}
    assert sum(e["run_id"] in s.old for e in entries) == found.entries
    verdict = check(window)
    assert verdict.ok, verdict
    head = verdict.last_hash

    done = await purge(store, found, utcnow(), batch=2)
    assert done.batches == 3
    assert (done.rows["runs"], done.rows["history"], done.rows["jobs"]) == (5, 15, 5)
    now = await counts(store)
    assert now["runs"] == was["runs"] - 5
    assert now["history"] == was["history"] - 15
    assert now["jobs"] == was["jobs"] - 5
    assert now["stat_counts"] == was["stat_counts"]  # the stats keep what they counted
    for run_id in s.old:
        assert await history_of(store, run_id) == []
    assert await history_of(store, s.live) == live_before  # every entry of the live run
    assert await history_of(store, s.quiet) == quiet_before  # live, if idle since long before
    assert len(await history_of(store, s.late)) == 2

    # The history left verifies across the purged ranges, and the last range ends at the
    # export's head: the hash the kept entry after it links to.
    rest = await exported(store)
    verdict = check(rest)
    assert verdict.ok, verdict
    gaps = [line for line in rest if isinstance(line, PurgedLine)]
    assert gaps and verdict.purged == len(gaps)
    assert (gaps[-1].last_seq, gaps[-1].last_hash) == (found.last_seq, head)
    end = rest[-1]
    assert isinstance(end, EndLine) and end.entries == was["history"] - 15


async def test_a_purged_line_that_does_not_name_the_next_entry_is_refused(
    runtime: Runtime,
) -> None:
    store = runtime.store
    s = await seed(runtime)
    await purge(store, await plan(store, s.before, utcnow()), utcnow())
    lines = await exported(store)
    at = next(i for i, line in enumerate(lines) if isinstance(line, PurgedLine))
    gap = lines[at]
    assert isinstance(gap, PurgedLine)
    lines[at] = msgspec.structs.replace(gap, next_seq=gap.next_seq + 1)
    verdict = check(lines)
    assert not verdict.ok and verdict.first_bad == gap.next_seq
    assert "comes next" in verdict.problem


async def test_a_changed_entry_kept_after_a_purged_range_is_named(runtime: Runtime) -> None:
    store = runtime.store
    s = await seed(runtime)
    await purge(store, await plan(store, s.before, utcnow()), utcnow())
    gap = next(line for line in await exported(store) if isinstance(line, PurgedLine))
    async with store.engine.begin() as conn:
        await conn.execute(
            text("UPDATE history SET actor = 'mallory' WHERE seq = :s"), {"s": gap.next_seq}
        )
    verdict = check(await exported(store))
    assert not verdict.ok
    assert verdict.first_bad == gap.next_seq


async def test_a_second_purge_finds_nothing_and_changes_nothing(runtime: Runtime) -> None:
    store = runtime.store
    s = await seed(runtime)
    await purge(store, await plan(store, s.before, utcnow()), utcnow())
    was = await counts(store)
    again = await plan(store, s.before, utcnow())
    assert (again.runs, again.entries, again.first_seq) == (0, 0, None)
    done = await purge(store, again, utcnow())
    assert (done.rows, done.batches) == ({}, 0)
    assert await counts(store) == was


async def test_two_purges_whose_ranges_join_still_verify(runtime: Runtime) -> None:
    # The second purge deletes the kept entry before the first one's range: the ranges join,
    # and the entry after them still links to the last entry the first purge deleted.
    store, d = runtime.store, runtime.dispatcher
    live = (await d.create("approval", actor="alice", input={"output": 0.9})).run_id
    straddler = (await d.create("approval", actor="alice", input={"output": 0.9})).run_id
    early = (await d.create("approval", actor="alice", input={"output": 0.9})).run_id
    await d.dispatch(early, "cancel", actor="ops")
    await toggle(runtime, live)  # ends the first purge's range
    first = utcnow()
    await d.dispatch(straddler, "cancel", actor="ops")
    second = utcnow()
    await toggle(runtime, live)
    await purge(store, await plan(store, first, utcnow()), utcnow())
    gap = next(line for line in await exported(store) if isinstance(line, PurgedLine))
    found = await plan(store, second, utcnow())
    assert found.runs == 1 and found.first_seq is not None and found.last_seq is not None
    window = await exported(store, since_seq=found.first_seq - 1, until_seq=found.last_seq)
    assert check(window).ok, check(window)  # the second export holds the first range's end
    await purge(store, found, utcnow())
    rest = await exported(store)
    verdict = check(rest)
    assert verdict.ok, verdict
    joined = next(line for line in rest if isinstance(line, PurgedLine))
    assert (joined.next_seq, joined.last_hash) == (gap.next_seq, gap.last_hash)
    assert joined.after_seq is not None and joined.after_seq < (gap.after_seq or 0)
    assert verdict.purged == 2


async def test_the_fold_runs_first_and_the_newest_entry_stays(runtime: Runtime) -> None:
    store = runtime.store
    s = await seed(runtime)
    d = runtime.dispatcher
    last = (await d.create("approval", actor="alice", input={"output": 0.9})).run_id
    await d.dispatch(last, "cancel", actor="ops")  # the newest entry: a finished run's
    found = await plan(store, utcnow(), utcnow())
    assert found.held == 1  # `last`: the next entry links to its hash
    mark = (await counts(store))["mark"]
    assert found.upto <= mark  # nothing the stats have not folded
    await purge(store, found, utcnow())
    assert len(await history_of(store, last)) == 2
    await toggle(runtime, s.live)  # the next entry takes the next seq, and links to `last`'s
    assert check(await exported(store)).ok


async def test_a_transition_on_a_live_run_goes_through_between_batches(runtime: Runtime) -> None:
    store = runtime.store
    s = await seed(runtime)
    seen: list[int] = []

    async def between(done: Purged) -> None:
        if done.batches == 1:
            await toggle(runtime, s.live)  # commits while the purge is under way
            seen.append(len(await history_of(store, s.live)))

    done = await purge(
        store, await plan(store, s.before, utcnow()), utcnow(), batch=1, progress=between
    )
    assert done.batches == 5 and done.rows["runs"] == 5
    assert seen == [len(await history_of(store, s.live))]
    assert check(await exported(store)).ok


async def test_a_dry_run_plans_without_writing(runtime: Runtime) -> None:
    store = runtime.store
    s = await seed(runtime)
    was = await counts(store)
    found = await plan(store, s.before, utcnow(), fold=False)
    assert found.runs == 5
    assert await counts(store) == was  # the fold's mark included


@pytest.mark.parametrize("days", [1, 365])
async def test_a_time_in_the_future_is_refused_and_changes_nothing(
    runtime: Runtime, days: int
) -> None:
    await seed(runtime)
    was = await counts(runtime.store)
    with pytest.raises(PurgeError, match="in the future"):
        await plan(runtime.store, utcnow() + timedelta(days=days), utcnow())
    assert await counts(runtime.store) == was
