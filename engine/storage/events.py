"""External events as stored (table `events`), and the runs an event correlates with.

An event's row is written before any run is touched, holding its plan: the runs to start and
the runs to deliver to, each `pending`. Whoever inserts the row first fixes the plan; a repeat
or a concurrent request with the same id works through that same plan (each step keyed, so it
happens once) and the row is settled with every step's outcome.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Literal

import msgspec
from sqlalchemy import select

from signoff.engine.model.lifecycle import FINISHED, LifecycleState
from signoff.engine.storage.schema import EVENTS, RUNS
from signoff.engine.storage.statements import Row, sql
from signoff.engine.storage.store import Store

Status = Literal["pending", "done", "refused"]


class Started(msgspec.Struct, frozen=True, kw_only=True):
    """A run the event's trigger starts (`run_id` once started), or why it could not."""

    definition: str
    outcome: Status = "pending"
    run_id: str | None = None
    problem: str | None = None
    reason: str | None = None


class Delivered(msgspec.Struct, frozen=True, kw_only=True):
    """A correlated run and the chart event it is sent (`version`: the run's after it), or
    why the run refused it (`event` is None where no state the run is in receives it)."""

    run_id: str
    definition: str
    event: str | None
    outcome: Status = "pending"
    version: int | None = None
    problem: str | None = None
    reason: str | None = None


class EventRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An external event and what became of it; `unwanted` when nothing started or
    correlated."""

    id: str
    name: str
    ref_type: str | None = None
    ref_id: str | None = None
    data: dict[str, Any] = {}
    actor: str
    received_at: datetime
    unwanted: bool = False
    started: list[Started] = []
    delivered: list[Delivered] = []

    @property
    def pending(self) -> bool:
        steps: list[Started | Delivered] = [*self.started, *self.delivered]
        return any(s.outcome == "pending" for s in steps)

    def same_event(self, other: EventRecord) -> bool:
        return (self.name, self.ref_type, self.ref_id, self.data) == (
            other.name,
            other.ref_type,
            other.ref_id,
            other.data,
        )


_COLUMNS = "id, name, ref_type, ref_id, data, actor, started, delivered, unwanted, received_at"
_CLAIM = sql(
    f"INSERT INTO events ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    " ON CONFLICT (id) DO NOTHING"
)
_READ = sql(f"SELECT {_COLUMNS} FROM events WHERE id = $1", of=EVENTS)
_SETTLE = sql("UPDATE events SET started = $2, delivered = $3 WHERE id = $1")
_TO_BUILTINS = msgspec.to_builtins


def _record(row: Row) -> EventRecord:
    return msgspec.convert({**row, "unwanted": bool(row["unwanted"])}, EventRecord)


async def find(store: Store, event_id: str) -> EventRecord | None:
    async with store.read() as conn:
        row = (await conn.execute(select(EVENTS).where(EVENTS.c.id == event_id))).one_or_none()
    return None if row is None else _record(dict(row._mapping))


async def claim(store: Store, record: EventRecord) -> tuple[EventRecord, bool]:
    """Store `record` unless its id is stored already; the stored record either way, and
    whether it is this one (on PostgreSQL a concurrent first insert is waited out)."""
    async with store.write() as tx:
        inserted = await tx.execute(
            _CLAIM,
            record.id,
            record.name,
            record.ref_type,
            record.ref_id,
            record.data,
            record.actor,
            _TO_BUILTINS(record.started),
            _TO_BUILTINS(record.delivered),
            record.unwanted,
            record.received_at,
        )
        row = await tx.fetchrow(_READ, record.id)
    assert row is not None  # inserted, or there already
    return _record(row), inserted == 1


async def settle(store: Store, record: EventRecord) -> None:
    """Store the outcomes of the record's steps."""
    async with store.write(single=True) as tx:
        started, delivered = _TO_BUILTINS(record.started), _TO_BUILTINS(record.delivered)
        await tx.execute(_SETTLE, record.id, started, delivered)


_RUN = (RUNS.c.id, RUNS.c.definition, RUNS.c.definition_version, RUNS.c.configuration)


async def by_ref(
    store: Store, definitions: Collection[str], ref_type: str, ref_id: str
) -> list[Row]:
    """The unfinished runs of `definitions` with this ref (index ix_runs_ref_id)."""
    query = select(*_RUN).where(
        RUNS.c.ref_type == ref_type,
        RUNS.c.ref_id == ref_id,
        RUNS.c.definition.in_(sorted(definitions)),
        RUNS.c.lifecycle.not_in(sorted(FINISHED)),
    )
    async with store.read() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]


async def by_key(store: Store, definitions: Collection[str], key: str) -> Sequence[Row]:
    """The waiting runs of `definitions`, each with the values its context and its input hold
    under `key` (`context`, `input`: None where absent). This reads every waiting run of those
    definitions (index ix_runs_definition_lifecycle_id): the cost of
    correlating by a value rather than by ref."""
    query = select(
        *_RUN,
        RUNS.c.context[key].label("context"),
        RUNS.c.input[key].label("input"),
    ).where(
        RUNS.c.definition.in_(sorted(definitions)),
        RUNS.c.lifecycle == LifecycleState.WAITING,
    )
    async with store.read() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]
