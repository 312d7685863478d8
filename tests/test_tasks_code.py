"""Tasks and typed decisions declared in code (a Definition's `tasks` and `event_types`), on
SQLite and PostgreSQL: the same rules as a document's."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
import pytest
from statemachine import State, StateChart

from signoff.engine import (
    Definition,
    Inbox,
    Registry,
    RunModel,
    Runtime,
    StateKind,
    TaskFilter,
    WaitTask,
    tasks_page,
    utcnow,
)
from signoff.engine.errors import InvalidEventDataError, TaskForbiddenError
from signoff.machines.lifecycle import Lifecycle
from tests.helpers import settings_for


class Grant(StateChart[RunModel]):
    allow_event_without_transition = False
    catch_errors_as_events = False

    review = State(initial=True)
    granted = State(final=True)
    approve = review.to(granted)


class Approval(msgspec.Struct, forbid_unknown_fields=True):
    """What approving a grant takes: the amount granted, and a comment."""

    amount: Annotated[float, msgspec.Meta(gt=0, le=50_000)]
    comment: Annotated[str, msgspec.Meta(min_length=3)]


GRANT = Definition(
    name="grant",
    version=1,
    chart=Grant,
    kinds={"review": StateKind.WAIT, "granted": StateKind.SUCCESS},
    tasks={"review": WaitTask(groups=("board",), users=("chair",), due_after_s=86400)},
    event_types={"approve": Approval},
)


@pytest.fixture
async def rt(database_url: str) -> AsyncIterator[Runtime]:
    runtime = Runtime(settings_for(database_url), Registry.of([GRANT], Lifecycle, {}))
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


APPROVER = frozenset({"approver"})


async def decide(rt: Runtime, who: str, groups: frozenset[str], data: dict[str, Any]) -> str:
    outcome = await rt.dispatcher.dispatch(
        (await rt.dispatcher.create("grant", actor="ops")).run_id,
        "approve",
        actor=who,
        data=data,
        roles=APPROVER,
        groups=groups,
    )
    return outcome.view().state


async def test_a_code_chart_declares_who_decides_and_what_data_it_takes(rt: Runtime) -> None:
    good = {"amount": 1200, "comment": "well argued"}
    assert await decide(rt, "chair", frozenset(), good) == "granted"  # a named candidate
    assert await decide(rt, "bea", frozenset({"board"}), good) == "granted"  # the group
    with pytest.raises(TaskForbiddenError):
        await decide(rt, "eve", frozenset({"staff"}), good)
    for bad, where in (({"amount": -1, "comment": "ok!"}, "$.amount"), ({"amount": 5}, "$")):
        with pytest.raises(InvalidEventDataError) as caught:
            await decide(rt, "chair", frozenset(), bad)
        assert caught.value.message.endswith(f"(at {where})"), caught.value.message
    now = utcnow()
    board = await tasks_page(rt.store, Inbox("bea", frozenset({"board"})), TaskFilter(), now)
    chair = await tasks_page(rt.store, Inbox("chair", frozenset()), TaskFilter(), now)
    nobody = await tasks_page(rt.store, Inbox("eve", frozenset({"staff"})), TaskFilter(), now)
    # The runs refused above still wait (each refusal created a run, then changed nothing).
    assert board.counts.total == chair.counts.total == 3 and nobody.counts.total == 0
    assert all(t.due_at is not None and t.state == "review" for t in board.items)
    # Someone the task reaches by two names (by name, and through the board) sees it once.
    both = await tasks_page(rt.store, Inbox("chair", frozenset({"board"})), TaskFilter(), now)
    assert both.counts.total == 3 and len({t.run_id for t in both.items}) == len(both.items) == 3


def test_a_definition_refuses_tasks_on_states_that_do_not_wait() -> None:
    with pytest.raises(ValueError, match="not wait states"):
        Definition(
            name="bad", version=1, chart=Grant,
            kinds={"review": StateKind.WORK, "granted": StateKind.SUCCESS},
            tasks={"review": WaitTask(users=("x",))},
        )  # fmt: skip
    with pytest.raises(ValueError, match="escalates after a time and to a group"):
        WaitTask(escalate_after_s=60)
