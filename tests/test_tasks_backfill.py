"""A database from before tasks were kept: its waiting runs get their open tasks (and inbox rows)
when a process that loads their definition starts, without a history entry; on SQLite and
PostgreSQL."""

from __future__ import annotations

from sqlalchemy import text

from signoff.engine import Inbox, Runtime, TaskFilter, tasks_page, utcnow
from signoff.machines.registry import build_registry
from tests.helpers import drain, settings_for


async def inbox_total(rt: Runtime) -> int:
    page = await tasks_page(rt.store, Inbox("root", None), TaskFilter(), utcnow())
    return page.counts.total


async def test_waiting_runs_of_an_old_database_get_their_tasks(database_url: str) -> None:
    rt = Runtime(settings_for(database_url), build_registry(0.0))
    await rt.start()
    try:
        run = (await rt.dispatcher.create("approval", actor="olga", input={"output": 0.9})).view()
        await rt.dispatcher.dispatch(run.id, "process", actor="olga")
        await drain(rt)
        other = (await rt.dispatcher.create("approval", actor="olga")).view()  # not waiting
        before = await rt.queries.get(run.id)
        assert before.state == "waiting_for_approval" and await inbox_total(rt) == 1
        history = await rt.queries.history(run.id)
        async with rt.store.engine.begin() as conn:  # as 0005 left it: no tasks, no inbox
            await conn.execute(text("UPDATE runs SET tasks = '[]'"))
            await conn.execute(text("DELETE FROM inbox"))
        assert await inbox_total(rt) == 0
    finally:
        await rt.stop()
    again = Runtime(settings_for(database_url), build_registry(0.0))
    await again.start()
    try:
        assert await inbox_total(again) == 1
        after = await again.queries.get(run.id)
        assert [(t.slot, t.candidates) for t in after.tasks] == [("waiting_for_approval", ["*"])]
        assert after.version == before.version  # nothing happened to the run
        assert await again.queries.history(run.id) == history
        assert (await again.queries.get(other.id)).tasks == []
    finally:
        await again.stop()
