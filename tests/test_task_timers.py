"""Reminders and escalation are durable timers: they fire once however many workers run, after
a restart too, and stop when the run moves on. Tests move the workers' clock; nothing sleeps.
On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from signoff.engine import Runtime
from signoff.engine.errors import InternalEventError, InvalidEventDataError
from signoff.machines.registry import build_registry
from tests.helpers import drain, eventually, settings_for
from tests.tasks_support import LEAVE, call, inbox, new_leave, people_server, run_ids
from tests.webhook_receiver import webhook_receiver

HOUR = 3600.0


@pytest.fixture
async def rt(database_url: str) -> AsyncIterator[Runtime]:
    runtime = Runtime(settings_for(database_url), build_registry(0.0))
    await runtime.start()
    await runtime.catalog.deploy(LEAVE, "yaml", "admin", datetime.now(UTC))
    try:
        yield runtime
    finally:
        await runtime.stop()


async def events_of(rt: Runtime, run_id: str) -> list[str]:
    return [e.event for e in (await rt.queries.history(run_id)).items]


async def test_a_reminder_then_an_escalation_each_fire_once(rt: Runtime) -> None:
    run = (await rt.dispatcher.create("leave", actor="olga")).view()
    assert await drain(rt, later_s=3 * HOUR) == 0  # nothing is due before four hours
    # Several workers at once, four hours on: the reminder fires once.
    ran = await asyncio.gather(*(drain(rt, later_s=4 * HOUR + 1) for _ in range(4)))
    assert sum(ran) == 1
    assert await events_of(rt, run.id) == ["create", "task.remind"]
    view = await rt.queries.get(run.id)
    assert view.state == "manager_review" and view.tasks[0].candidates == [
        "user:mia", "user:max", "user:mop"
    ]  # fmt: skip
    # A day on, the task passes to the directors, unclaimed, and is recorded.
    await rt.dispatcher.act(run.id, "task.claim", actor="mia", roles=frozenset({"approver"}))
    ran = await asyncio.gather(*(drain(rt, later_s=25 * HOUR) for _ in range(4)))
    assert sum(ran) == 1
    view = await rt.queries.get(run.id)
    task = view.tasks[0]
    assert (task.candidates, task.assignee, task.escalated) == (["group:directors"], None, True)
    history = (await rt.queries.history(run.id)).items
    assert [e.event for e in history] == ["create", "task.remind", "task.claim", "task.escalate"]
    assert history[-1].actor == "timer"
    assert history[-1].data == {
        "slot": "manager_review", "from": ["user:mia", "user:max", "user:mop"], "to": "directors"
    }  # fmt: skip
    assert await drain(rt, later_s=30 * 24 * HOUR) == 0  # each fired once, for good


async def test_timers_survive_a_restart_and_stop_when_the_run_moves_on(
    rt: Runtime, database_url: str
) -> None:
    waiting = (await rt.dispatcher.create("leave", actor="olga")).view()
    decided = (await rt.dispatcher.create("leave", actor="olga")).view()
    await rt.dispatcher.dispatch(decided.id, "approve", actor="mia", data={"days": 2})
    await rt.stop()
    again = Runtime(settings_for(database_url), build_registry(0.0))
    await again.start()  # a new process: the timers are rows, not memory
    try:
        assert await drain(again, later_s=5 * HOUR) == 1  # the reminder, one run
        assert await drain(again, later_s=2 * 24 * HOUR) == 1  # then the escalation
        assert await events_of(again, waiting.id) == ["create", "task.remind", "task.escalate"]
        assert await events_of(again, decided.id) == ["create", "approve"]
    finally:
        await again.stop()


async def test_people_cannot_send_the_timers_events(rt: Runtime) -> None:
    run = (await rt.dispatcher.create("leave", actor="olga")).view()
    for event in ("task.remind", "task.escalate"):
        with pytest.raises(InternalEventError):
            await rt.dispatcher.dispatch(run.id, event, actor="olga", roles=frozenset({"admin"}))
        with pytest.raises(InvalidEventDataError):
            await rt.dispatcher.act(run.id, event, actor="olga", roles=frozenset({"admin"}))
    assert await events_of(rt, run.id) == ["create"]


async def test_an_escalation_reaches_the_new_group_through_the_server(database_url: str) -> None:
    async with webhook_receiver() as receiver, people_server(database_url) as live:
        hook = await call(
            live, "admin", "POST", "/api/webhooks",
            json={"url": receiver.url, "events": ["task.reminder", "task.escalated"]},
        )  # fmt: skip
        receiver.secret = hook.json()["secret"]
        run = await new_leave(live)
        assert run_ids(await inbox(live, "dora")) == []
        await drain(live.runtime, later_s=5 * HOUR)  # a worker whose clock moved on
        await drain(live.runtime, later_s=25 * HOUR)
        assert await events_of(live.runtime, run["id"]) == [
            "create", "task.remind", "task.escalate"
        ]  # fmt: skip

        async def told() -> bool:
            return {r.type for r in receiver.received} == {"task.reminder", "task.escalated"}

        await eventually(told)
        assert run_ids(await inbox(live, "dora")) == [run["id"]]  # directors decide it now
        assert run_ids(await inbox(live, "mia")) == []
        escalated = next(r.body for r in receiver.received if r.type == "task.escalated")
        assert {k["actor"] for k in escalated["data"]["links"]} == {"dora"}
        decided = await call(live, "dora", "POST", f"/api/runs/{run['id']}/approve")
        assert decided.status_code == 200 and decided.json()["state"] == "hr_review"
