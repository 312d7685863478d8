"""External events on the engine (SQLite and PostgreSQL): triggers start runs, wait states
receive events for the runs correlated by ref or by a key, every step is an ordinary
transition keyed by the event id, so a repeat, a retry after a crash midway, or two requests
at once do each step exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from statemachine import State, StateChart

from signoff import (
    Definition,
    Delay,
    IdempotencyMismatchError,
    InvalidInputError,
    Receive,
    Runtime,
    StateKind,
    Trigger,
)
from signoff.engine import ExternalEvent, send_event
from signoff.engine.dispatch import events as engine_events
from signoff.engine.model import expressions
from signoff.engine.storage import events as stored
from tests.events_support import Order, order_runtime


def placed(event_id: str, order: str, amount: float = 10.0) -> ExternalEvent:
    return ExternalEvent(
        id=event_id,
        name="order.placed",
        data={"order_id": order, "amount": amount},
        ref_type="order",
        ref_id=order,
    )


async def start_order(rt: Runtime, order: str) -> str:
    record, _ = await send_event(rt.dispatcher, placed(f"place-{order}", order), actor="olga")
    assert record.started[0].run_id is not None
    return record.started[0].run_id


async def events_of(rt: Runtime, run_id: str) -> list[tuple[str, str]]:
    return [(e.event, e.actor) for e in (await rt.queries.history(run_id)).items]


async def test_a_trigger_starts_a_run_with_the_mapped_input_and_the_events_ref(
    database_url: str,
) -> None:
    async with order_runtime(database_url) as rt:
        record, repeat = await send_event(rt.dispatcher, placed("e1", "o-1", 12.5), actor="olga")
        assert not repeat and not record.unwanted and record.delivered == []
        [start] = record.started
        assert (start.definition, start.outcome) == ("order", "done")
        run = await rt.queries.get(str(start.run_id))
        assert run.input == {"order_id": "o-1", "amount": 12.5}
        assert (run.ref_type, run.ref_id, run.state) == ("order", "o-1", "awaiting_payment")
        assert await events_of(rt, run.id) == [("create", "olga")]


async def test_a_trigger_whose_condition_fails_starts_nothing_and_the_event_is_unwanted(
    database_url: str,
) -> None:
    async with order_runtime(database_url) as rt:
        record, _ = await send_event(rt.dispatcher, placed("e1", "o-1", 0), actor="olga")
        assert record.unwanted and record.started == [] and record.delivered == []
        assert (await stored.find(rt.store, "e1")) == record  # recorded all the same
        page = await rt.queries.page(_all(), 10, None)
        assert page.items == []


async def test_an_event_reaches_the_runs_waiting_with_its_ref_and_only_those(
    database_url: str,
) -> None:
    async with order_runtime(database_url) as rt:
        mine, other = await start_order(rt, "o-1"), await start_order(rt, "o-2")
        paid = ExternalEvent(
            id="pay-1", name="payment.received", data={"paid": 12}, ref_type="order", ref_id="o-1"
        )
        record, _ = await send_event(rt.dispatcher, paid, actor="olga")
        [delivery] = record.delivered
        assert (delivery.run_id, delivery.event, delivery.outcome) == (mine, "pay", "done")
        assert delivery.version == 2
        entries = (await rt.queries.history(mine)).items
        assert (entries[-1].event, entries[-1].actor, entries[-1].data) == (
            "pay",
            "olga",
            {"paid": 12},
        )
        assert (await rt.queries.get(mine)).state == "cooling_off"
        assert (await rt.queries.get(other)).state == "awaiting_payment"


async def test_an_event_reaches_the_waiting_runs_that_hold_its_key(database_url: str) -> None:
    async with order_runtime(database_url) as rt:
        one, two = await start_order(rt, "o-1"), await start_order(rt, "o-2")
        # No ref: correlated by data.order_id == the run's input.order_id.
        matched = ExternalEvent(id="m-1", name="payment.matched", data={"order_id": "o-2"})
        record, _ = await send_event(rt.dispatcher, matched, actor="olga")
        assert [(d.run_id, d.outcome) for d in record.delivered] == [(two, "done")]
        assert (await rt.queries.get(one)).state == "awaiting_payment"
        # A value of another JSON type is another value: true is not 1 (as it is in Python).
        await rt.dispatcher.create("order", actor="olga", input={"order_id": 1})
        numeric = ExternalEvent(id="m-2", name="payment.matched", data={"order_id": True})
        assert (await send_event(rt.dispatcher, numeric, actor="olga"))[0].unwanted


async def test_a_correlated_run_that_refuses_is_listed_with_its_reason(database_url: str) -> None:
    async with order_runtime(database_url) as rt:
        moved, paused = await start_order(rt, "o-1"), await start_order(rt, "o-1b")
        await rt.dispatcher.dispatch(moved, "pay", actor="olga")
        await rt.dispatcher.dispatch(paused, "pause", actor="olga")
        for event_id, ref, problem in (
            ("p-1", "o-1", "event-not-allowed"),
            ("p-2", "o-1b", "run-paused"),
        ):
            event = ExternalEvent(
                id=event_id, name="payment.received", ref_type="order", ref_id=ref
            )
            record, _ = await send_event(rt.dispatcher, event, actor="olga")
            [delivery] = record.delivered
            assert (delivery.outcome, delivery.problem) == ("refused", problem), delivery
            assert delivery.reason and not record.unwanted
        assert [e for e, _ in await events_of(rt, moved)] == ["create", "pay"]
        assert [e for e, _ in await events_of(rt, paused)] == ["create", "pause"]


async def test_a_repeat_answers_the_first_and_does_nothing(database_url: str) -> None:
    async with order_runtime(database_url) as rt:
        first, repeat = await send_event(rt.dispatcher, placed("e1", "o-1"), actor="olga")
        again, repeat = await send_event(rt.dispatcher, placed("e1", "o-1"), actor="otto")
        assert repeat and again == first
        assert len((await rt.queries.page(_all(), 10, None)).items) == 1
        with pytest.raises(IdempotencyMismatchError):
            await send_event(rt.dispatcher, placed("e1", "o-2"), actor="olga")
        assert len((await rt.queries.page(_all(), 10, None)).items) == 1


async def test_an_event_stopped_midway_is_finished_by_its_repeat_each_step_once(
    database_url: str,
) -> None:
    async with order_runtime(database_url) as rt:
        a = await start_order(rt, "o-1")
        b = (
            await rt.dispatcher.create("order", actor="olga", ref_type="order", ref_id="o-1")
        ).run_id
        event = ExternalEvent(id="e9", name="payment.received", ref_type="order", ref_id="o-1")
        # What a process that crashed after its first step left: the event's row with its
        # plan, and that one delivery made under the step's key.
        planned = await engine_events._plan(rt.dispatcher, event, "olga")
        await stored.claim(rt.store, planned)
        first = sorted([a, b])[0]
        key = engine_events._key(f"event:e9:{first}")
        await rt.dispatcher.dispatch(first, "pay", actor="olga", data={}, idem=key)
        assert (await stored.find(rt.store, "e9")).pending  # type: ignore[union-attr]
        record, repeat = await send_event(rt.dispatcher, event, actor="olga")
        assert repeat and [(d.run_id, d.outcome) for d in record.delivered] == [
            (r, "done") for r in sorted([a, b])
        ]
        for run_id in (a, b):
            assert [e for e, _ in await events_of(rt, run_id)] == ["create", "pay"]
        assert not (await stored.find(rt.store, "e9")).pending  # type: ignore[union-attr]


async def test_the_same_event_sent_four_times_at_once_does_each_step_once(
    database_url: str,
) -> None:
    async with order_runtime(database_url) as rt:
        waiting = [await start_order(rt, f"o-{i}") for i in range(3)]
        event = ExternalEvent(
            id="both", name="payment.received", data={}, ref_type="order", ref_id="o-1"
        )
        trigger = placed("twice", "o-new")
        answers = await asyncio.gather(
            *(send_event(rt.dispatcher, e, actor="olga") for e in (event, trigger) * 4)
        )
        assert len({msgspec_json(r) for r, _ in answers[0::2]}) == 1
        assert len({msgspec_json(r) for r, _ in answers[1::2]}) == 1
        assert sum(not repeat for _, repeat in answers[0::2]) == 1
        assert [e for e, _ in await events_of(rt, waiting[1])] == ["create", "pay"]
        runs = (await rt.queries.page(_all(), 10, None)).items
        assert len(runs) == 4  # the three, and one started by `twice`


async def test_an_oversized_event_is_refused_and_not_recorded(database_url: str) -> None:
    async with order_runtime(database_url, max_input_bytes=100) as rt:
        big = ExternalEvent(id="big", name="order.placed", data={"x": "y" * 200})
        with pytest.raises(InvalidInputError):
            await send_event(rt.dispatcher, big, actor="olga")
        assert await stored.find(rt.store, "big") is None


# --- declaring triggers and receives -----------------------------------------------------------


class _Two(StateChart[Any]):
    allow_event_without_transition = False
    catch_errors_as_events = False
    waiting = State(initial=True)
    working = State()
    done = State(final=True)
    go = waiting.to(working)
    finish = working.to(done)
    approve = waiting.to(done)


def _define(**kw: Any) -> Definition:
    kinds = {"waiting": StateKind.WAIT, "working": StateKind.WORK, "done": StateKind.SUCCESS}
    return Definition(name="two", version=1, chart=_Two, kinds=kinds, **kw)


@pytest.mark.parametrize(
    ("declared", "says"),
    [
        ({"receives": {"working": {"x": Receive("finish")}}}, "not a wait state"),
        ({"receives": {"waiting": {"x": Receive("nope")}}}, "does not have"),
        ({"receives": {"waiting": {"x": Receive("approve")}}}, "internal or a decision"),
        (
            {"receives": {"waiting": {"x": Receive("go")}}, "internal_events": frozenset({"go"})},
            "internal or a decision",
        ),
        ({"receives": {"waiting": {"x": Receive("go", correlate="a.b")}}}, "is not a key"),
        ({"triggers": [Trigger("x", when="input['a'] > 1")]}, "names 'input'"),
        ({"triggers": [Trigger("x", when="In('waiting')")]}, "calls a function"),
        ({"triggers": [Trigger("x", input={"a": "data.a"})]}, "reads the attribute"),
    ],
)
def test_what_a_definition_may_not_declare(declared: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        _define(**declared)


def test_a_trigger_condition_reads_the_events_data_like_a_guard() -> None:
    trigger = Trigger("x", when="data['amount'] >= 10 and data['kind'] in ['a', 'b']")
    assert trigger.matches({"amount": 10, "kind": "a"})
    assert not trigger.matches({"amount": 9, "kind": "a"})
    assert not trigger.matches({"kind": "a"})  # cannot read it: no match, no error
    assert not Trigger("x", when="data['n'] * 2 > 3").matches({"n": "many"})
    assert expressions.evaluate("not (1 < 2 < 3) or -data['n'] % 4 == 1", {"data": {"n": 3}})
    assert Trigger("x", input={"id": "data['a']['b']"}).input_of({"a": {"b": 7}}) == {"id": 7}
    assert Order.states_map  # the support chart builds


def _all() -> Any:
    from signoff.engine import RunFilter

    return RunFilter()


def msgspec_json(record: Any) -> bytes:
    import msgspec

    return msgspec.json.encode(record)


# --- in a document ------------------------------------------------------------------------------

DOCUMENT = """
name: shipment
signoff:
  kinds: {awaiting_pickup: wait, delivered: success}
  decisions: []
  triggers:
    - {event: order.placed, when: "data['amount'] > 100", input: {order_id: "data['order_id']"}}
  receives:
    awaiting_pickup:
      carrier.picked_up: {event: picked_up, correlate: order_id}
  timers:
    in_transit: [{after: 1s, event: arrived}]
states:
  awaiting_pickup:
    initial: true
    transitions: [{event: picked_up, target: in_transit}]
  in_transit:
    transitions: [{event: arrived, target: delivered}]
  delivered: {final: true}
"""


async def test_a_document_declares_triggers_receives_and_a_delay(database_url: str) -> None:
    from signoff.engine import Registry, compile_document
    from signoff.machines.lifecycle import Lifecycle
    from tests.helpers import drain, settings_for

    text = DOCUMENT
    shipment = compile_document(text, "yaml").definition
    assert shipment.delays == {"in_transit": [Delay(1.0, "arrived")]}
    rt = Runtime(settings_for(database_url), Registry.of([shipment], Lifecycle))
    await rt.start()
    try:
        big = ExternalEvent(id="b", name="order.placed", data={"order_id": "s-1", "amount": 500})
        small = ExternalEvent(id="s", name="order.placed", data={"order_id": "s-2", "amount": 5})
        [start] = (await send_event(rt.dispatcher, big, actor="olga"))[0].started
        assert (await send_event(rt.dispatcher, small, actor="olga"))[0].unwanted
        picked = ExternalEvent(id="p", name="carrier.picked_up", data={"order_id": "s-1"})
        [delivery] = (await send_event(rt.dispatcher, picked, actor="olga"))[0].delivered
        assert (delivery.run_id, delivery.event, delivery.outcome) == (
            start.run_id,
            "picked_up",
            "done",
        )
        assert await drain(rt, later_s=5) == 1
        run = await rt.queries.get(str(start.run_id))
        assert (run.state, run.input) == ("delivered", {"order_id": "s-1"})
    finally:
        await rt.stop()


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (("carrier.picked_up: {event: picked_up", "carrier.picked_up: {event: nope"), "does not"),
        (("amount'] > 100", "amount'] > input['x']"), "names 'input'"),
        (("    awaiting_pickup:\n      carrier", "    delivered:\n      carrier"), "not a wait"),
        (("{event: picked_up, correlate", "{event: arrived, correlate"), "timer's event"),
    ],
)
def test_a_document_with_bad_triggers_or_receives_is_refused(
    change: tuple[str, str], says: str
) -> None:
    from signoff.engine import DocumentRejectedError, compile_document

    text = DOCUMENT.replace(*change)
    with pytest.raises(DocumentRejectedError) as refused:
        compile_document(text, "yaml")
    assert any(says in r for r in refused.value.reasons), refused.value.reasons
