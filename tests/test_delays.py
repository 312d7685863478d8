"""Durable delays declared on a code definition (SQLite and PostgreSQL): entering the state
asks for a timer in the same transaction; it fires its event once after the time, through a
restart too, never twice with two workers, and not at all if the run left the state first."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from statemachine import State, StateChart

from signoff import Definition, Delay, Runtime, StateKind
from tests.events_support import DELAY_S, order_runtime, order_server
from tests.helpers import drain, eventually


async def cooling(rt: Runtime, order: str) -> str:
    """An order run that has entered cooling_off (its delay's state)."""
    run = await rt.dispatcher.create("order", actor="olga", ref_type="order", ref_id=order)
    await rt.dispatcher.dispatch(run.run_id, "pay", actor="olga")
    return run.run_id


async def events_of(rt: Runtime, run_id: str) -> list[str]:
    return [e.event for e in (await rt.queries.history(run_id)).items]


async def timers_of(rt: Runtime, run_id: str) -> list[tuple[str, str]]:
    return [(j.kind, j.status) for j in (await rt.queries.jobs(run_id)).items]


async def test_a_delay_fires_its_event_once_after_the_time(database_url: str) -> None:
    async with order_server(database_url) as live:  # one embedded worker
        rt = live.runtime
        run_id = await cooling(rt, "o-1")
        assert await timers_of(rt, run_id) == [("timer", "ready")]

        async def shipped() -> bool:
            return (await rt.queries.get(run_id)).state == "shipped"

        await eventually(shipped, timeout=10 + DELAY_S)
        assert await events_of(rt, run_id) == ["create", "pay", "cooled"]
        entry = (await rt.queries.history(run_id)).items[-1]
        assert entry.actor != "olga"  # the timer sent it, not a person
        assert await drain(rt, later_s=10 * DELAY_S) == 0  # nothing left to fire


async def test_leaving_the_state_early_cancels_its_delay(database_url: str) -> None:
    async with order_runtime(database_url) as rt:
        run_id = await cooling(rt, "o-1")
        await rt.dispatcher.dispatch(run_id, "ship_now", actor="olga")
        assert await timers_of(rt, run_id) == [("timer", "cancelled")]
        assert await drain(rt, later_s=10 * DELAY_S) == 0
        assert await events_of(rt, run_id) == ["create", "pay", "ship_now"]


async def test_a_delay_survives_a_restart_and_fires_once(database_url: str) -> None:
    async with order_runtime(database_url) as first:
        run_id = await cooling(first, "o-1")
    # The first runtime is stopped; a new one on the same database takes the timer over.
    async with order_runtime(database_url) as second:
        assert await drain(second, later_s=10 * DELAY_S) == 1
        assert await events_of(second, run_id) == ["create", "pay", "cooled"]
        assert await drain(second, later_s=10 * DELAY_S) == 0
    async with order_runtime(database_url) as third:
        assert await drain(third, later_s=10 * DELAY_S) == 0
        assert await events_of(third, run_id) == ["create", "pay", "cooled"]


async def test_two_workers_never_fire_a_delay_twice(database_url: str) -> None:
    async with order_runtime(database_url) as one, order_runtime(database_url) as two:
        runs = [await cooling(one, f"o-{i}") for i in range(8)]
        ran = await asyncio.gather(
            *(drain(rt, later_s=10 * DELAY_S) for rt in (one, two, one, two))
        )
        assert sum(ran) == len(runs)
        for run_id in runs:
            assert await events_of(one, run_id) == ["create", "pay", "cooled"]


async def test_a_run_cancelled_in_the_state_cancels_its_delay(database_url: str) -> None:
    async with order_runtime(database_url) as rt:
        run_id = await cooling(rt, "o-1")
        assert await timers_of(rt, run_id) == [("timer", "ready")]
        await rt.dispatcher.dispatch(run_id, "cancel", actor="olga")
        assert await timers_of(rt, run_id) == [("timer", "cancelled")]


class _Wait(StateChart[Any]):
    allow_event_without_transition = False
    catch_errors_as_events = False
    idle = State(initial=True)
    done = State(final=True)
    expire = idle.to(done)


@pytest.mark.parametrize(
    ("delays", "says"),
    [
        ({"nowhere": Delay(1, "expire")}, "does not have"),
        ({"idle": Delay(1, "missing")}, "not in the chart"),
        ({"idle": [Delay(1, "expire"), Delay(2, "missing")]}, "not in the chart"),
    ],
)
def test_what_a_delay_may_not_declare(delays: Any, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Definition(
            name="w",
            version=1,
            chart=_Wait,
            kinds={"idle": StateKind.WAIT, "done": StateKind.SUCCESS},
            delays=delays,
        )


@pytest.mark.parametrize("after_s", [0, -1, float("inf"), float("nan")])
def test_a_delay_takes_a_positive_time(after_s: float) -> None:
    with pytest.raises(ValueError, match="positive"):
        Delay(after_s, "expire")
