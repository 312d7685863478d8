"""A code definition that answers to external events and waits on a durable delay (for the
event and delay tests): an order starts when `order.placed` arrives, waits for its payment
(by ref, or by order_id), then cools off for DELAY_S before it ships by itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from statemachine import State, StateChart

from signoff import Definition, Delay, Receive, Registry, Runtime, StateKind, Trigger
from signoff.machines.lifecycle import Lifecycle
from signoff.machines.registry import DEFINITIONS, job_kinds
from tests.helpers import LiveServer, serve, settings_for

DELAY_S = 0.5


class Order(StateChart[Any]):
    allow_event_without_transition = False  # an event the state refuses: 409
    catch_errors_as_events = False  # an error rolls the transition back

    awaiting_payment = State(initial=True)
    cooling_off = State()
    shipped = State(final=True)
    cancelled = State(final=True)

    pay = awaiting_payment.to(cooling_off)
    cooled = cooling_off.to(shipped)
    ship_now = cooling_off.to(shipped)  # leaves cooling_off before its delay is up
    cancel = awaiting_payment.to(cancelled) | cooling_off.to(cancelled)


ORDER = Definition(
    name="order",
    version=1,
    chart=Order,
    kinds={
        "awaiting_payment": StateKind.WAIT,
        "cooling_off": StateKind.WAIT,
        "shipped": StateKind.SUCCESS,
        "cancelled": StateKind.SUCCESS,
    },
    internal_events=frozenset({"cooled"}),
    triggers=[
        Trigger(
            "order.placed",
            when="data['amount'] > 0",
            input={"order_id": "data['order_id']", "amount": "data['amount']"},
        )
    ],
    receives={
        "awaiting_payment": {
            "payment.received": Receive("pay"),  # to the runs with the event's ref
            "payment.matched": Receive("pay", correlate="order_id"),  # by input.order_id
        }
    },
    delays={"cooling_off": Delay(after_s=DELAY_S, event="cooled")},
)


def order_registry() -> Registry:
    return Registry.of([*DEFINITIONS, ORDER], Lifecycle, {j.name: j for j in job_kinds(0.0)})


@asynccontextmanager
async def order_runtime(database_url: str, **overrides: Any) -> AsyncIterator[Runtime]:
    """A started runtime with the order definition (no background workers unless asked)."""
    rt = Runtime(settings_for(database_url, **overrides), order_registry())
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


@asynccontextmanager
async def order_server(database_url: str, **overrides: Any) -> AsyncIterator[LiveServer]:
    async with serve(database_url, registry=order_registry(), **overrides) as live:
        yield live
