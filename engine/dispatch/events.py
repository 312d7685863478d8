"""External events (POST /api/events): start the runs their triggers name, and deliver them
to the runs waiting for them, each as an ordinary transition through the Dispatcher.

Why a repeat or a retry does each step once: the event's row, with its plan, is stored before
any run is touched (signoff.engine.storage.events); each start and each delivery carries an
idempotency key derived from the event id (`event:<id>:start:<definition>`,
`event:<id>:<run>`), recorded in the transaction of the transition it made. A request that
finds the row still pending (a crash midway, or a concurrent request) works through the same
plan: steps done already answer from their keys, the rest happen now, once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, TypeVar

import msgspec

from signoff.engine.dispatch.dispatcher import Dispatcher
from signoff.engine.errors import (
    ConflictError,
    EngineError,
    ForbiddenError,
    IdempotencyMismatchError,
    InvalidInputError,
    InvalidRequestError,
    NotFoundError,
    WriteConflictError,
)
from signoff.engine.model.definition import Definition
from signoff.engine.model.triggers import Receive
from signoff.engine.storage import events as stored
from signoff.engine.storage.events import Delivered, EventRecord, Started
from signoff.engine.storage.records import IdempotencyKey
from signoff.engine.storage.statements import Row

_KEY_SCOPE = ("signoff:events", "POST /api/events")  # a step's key is the event's, not a caller's
_ENCODER = msgspec.json.Encoder()
_LANES = 8  # deliveries in flight at once


class ExternalEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event from outside: its id (a repeat is answered from the first), its name, its
    data, and the ref of what it is about."""

    id: str
    name: str
    data: dict[str, Any] = {}
    ref_type: str | None = None
    ref_id: str | None = None


async def send_event(
    dispatcher: Dispatcher, event: ExternalEvent, *, actor: str
) -> tuple[EventRecord, bool]:
    """Start and deliver `event`; what became of it, and whether that answers an earlier
    request with its id (nothing new happened then, unless that one stopped midway)."""
    size = len(_ENCODER.encode(event.data))
    if size > dispatcher.max_input_bytes:
        raise InvalidInputError(
            f"The data is {size} bytes of JSON; the limit is {dispatcher.max_input_bytes}."
        )
    record = await stored.find(dispatcher.store, event.id)
    repeat = record is not None
    if record is None:
        record, ours = await stored.claim(dispatcher.store, await _plan(dispatcher, event, actor))
        repeat = not ours
    if (record.name, record.ref_type, record.ref_id, record.data) != (
        event.name,
        event.ref_type,
        event.ref_id,
        event.data,
    ):
        raise IdempotencyMismatchError(f"Event id {event.id!r} was already used for another event.")
    if record.pending:
        record = await _work(dispatcher, record, actor)
        await stored.settle(dispatcher.store, record)
    return record, repeat


async def _plan(dispatcher: Dispatcher, event: ExternalEvent, actor: str) -> EventRecord:
    """What the event will do: the definitions its triggers start, the runs it correlates
    with (found before any run starts, so a run it starts is not also delivered to)."""
    registry = dispatcher.registry
    starts = [
        Started(definition=name)
        for name, spec in sorted(registry.definitions.items())
        if (name, spec.version) not in registry.retired
        and any(t.event == event.name and t.matches(event.data) for t in spec.triggers)
    ]
    every = [*registry.older, *registry.definitions.values()]
    by_ref = {d.name for d in every for r in _receives(d, event.name) if r.correlate is None}
    keys = {r.correlate for d in every for r in _receives(d, event.name) if r.correlate}
    runs: dict[str, Delivered] = {}
    if by_ref and event.ref_type is not None and event.ref_id is not None:
        rows = await stored.by_ref(dispatcher.store, by_ref, event.ref_type, event.ref_id)
        for row in rows:
            runs[row["id"]] = _delivery(dispatcher, row, event, None)
    for key in sorted(k for k in keys if event.data.get(k) is not None):
        names = {d.name for d in every for r in _receives(d, event.name) if r.correlate == key}
        for row in await stored.by_key(dispatcher.store, names, key):
            held = row["context"] if row["context"] is not None else row["input"]
            if row["id"] not in runs and Receive("", key).correlates(held, event.data):
                runs[row["id"]] = _delivery(dispatcher, row, event, key)
    delivered = [runs[k] for k in sorted(runs)]
    return EventRecord(
        id=event.id,
        name=event.name,
        ref_type=event.ref_type,
        ref_id=event.ref_id,
        data=event.data,
        actor=actor,
        received_at=dispatcher.clock(),
        unwanted=not starts and not delivered,
        started=starts,
        delivered=delivered,
    )


def _receives(spec: Definition, name: str) -> Iterable[Receive]:
    return (r for names in spec.receives.values() if (r := names.get(name)) is not None)


def _delivery(dispatcher: Dispatcher, row: Row, event: ExternalEvent, key: str | None) -> Delivered:
    """A correlated run, and the chart event it gets: refused at once if no state it is in
    receives this event (correlated by this ref or key)."""
    run_id, name = row["id"], row["definition"]
    spec = dispatcher.registry.find(name, row["definition_version"])
    receive = None if spec is None else spec.receiving(row["configuration"], event.name)
    if receive is not None and receive.correlate == key:
        return Delivered(run_id=run_id, definition=name, event=receive.event)
    where = ", ".join(row["configuration"])
    return Delivered(
        run_id=run_id,
        definition=name,
        event=None,
        outcome="refused",
        problem="event-not-allowed",
        reason=f"Run {run_id} is in {where}, where no state receives {event.name!r}.",
    )


async def _work(dispatcher: Dispatcher, record: EventRecord, actor: str) -> EventRecord:
    """Do the record's pending steps, starts first; each keyed, so each happens once."""
    started = [await _start(dispatcher, record, s, actor) for s in record.started]
    # Deliveries go to different runs, each its own transaction: a few at a time (PostgreSQL
    # overlaps their round trips; SQLite's one writer takes them in turn). A failure cancels
    # the rest; the event stays pending and a repeat finishes it.
    lanes = asyncio.Semaphore(_LANES)

    async def deliver(step: Delivered) -> Delivered:
        async with lanes:
            return await _deliver(dispatcher, record, step, actor)

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(deliver(d)) for d in record.delivered]
    delivered = [t.result() for t in tasks]
    return msgspec.structs.replace(record, started=started, delivered=delivered)


async def _start(dispatcher: Dispatcher, record: EventRecord, step: Started, actor: str) -> Started:
    if step.outcome != "pending":
        return step
    spec = dispatcher.registry.definitions.get(step.definition)
    trigger = next((t for t in spec.triggers if t.event == record.name), None) if spec else None
    if spec is None or trigger is None:
        return _refused(step, "definition-not-found", "The definition no longer has this trigger.")
    try:
        data = trigger.input_of(record.data)
    except (LookupError, TypeError, ValueError, ArithmeticError) as exc:
        why = f"The trigger's input cannot be read from this data: {type(exc).__name__}: {exc}"
        return _refused(step, "invalid-input", why)
    try:
        outcome = await dispatcher.create(
            step.definition,
            actor=actor,
            input=data,
            ref_id=record.ref_id,
            ref_type=record.ref_type,
            idem=_key(f"event:{record.id}:start:{step.definition}"),
        )
    except WriteConflictError:
        raise  # a race on a key lost twice: not the run's answer
    except _REFUSALS as exc:
        return _refused(step, _problem(exc), exc.message)
    return msgspec.structs.replace(step, outcome="done", run_id=outcome.run_id)


async def _deliver(
    dispatcher: Dispatcher, record: EventRecord, step: Delivered, actor: str
) -> Delivered:
    if step.outcome != "pending" or step.event is None:
        return step
    try:
        outcome = await dispatcher.dispatch(
            step.run_id,
            step.event,
            actor=actor,
            data=record.data,
            idem=_key(f"event:{record.id}:{step.run_id}"),
            internal=False,
        )
    except WriteConflictError:
        raise  # a race on a key lost twice: not the run's answer
    except _REFUSALS as exc:
        return _refused(step, _problem(exc), exc.message)
    return msgspec.structs.replace(step, outcome="done", version=outcome.version)


# What a run may answer to one step without failing the whole event (storage failures and
# bugs fail it: the event stays pending, and a repeat finishes it).
_REFUSALS = (NotFoundError, InvalidRequestError, ConflictError, ForbiddenError)
_Step = TypeVar("_Step", Started, Delivered)


def _refused(step: _Step, problem: str, reason: str) -> _Step:
    return msgspec.structs.replace(step, outcome="refused", problem=problem, reason=reason)


def _problem(exc: EngineError) -> str:
    """The problem type's name (as RFC 9457 answers name it: urn:signoff:problem:<name>)."""
    name = type(exc).__name__.removesuffix("Error")
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")


def _key(key: str) -> IdempotencyKey:
    return IdempotencyKey(key=key, actor=_KEY_SCOPE[0], route=_KEY_SCOPE[1], request_hash="")
