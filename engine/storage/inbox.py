"""The inbox: what an actor may decide now, read off the `inbox` index (never a scan of runs).

Each open task has one row per audience member (`user:<actor>`, `group:<group>`, `*`) and one
`#all` row; an actor's inbox is the rows for their own names, minus the tasks they already
decided in (a quorum counts them once) and, under separation of duties, their own runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec
from sqlalchemy import ColumnElement, Select, and_, case, func, literal, or_, select, text

from signoff.engine.storage.schema import INBOX
from signoff.engine.storage.store import Store

Sort = Literal["due", "age"]
ALL = "#all"
ANY = "*"


class TaskItem(msgspec.Struct, frozen=True, kw_only=True):
    """A task in an inbox: a run waiting in `state` for a decision the caller may make."""

    run_id: str
    slot: str
    state: str
    definition: str
    ref_type: str | None
    ref_id: str | None
    created_by: str
    assignee: str | None
    opened_at: datetime
    due_at: datetime | None
    overdue: bool


class TaskCounts(msgspec.Struct, frozen=True, kw_only=True):
    total: int
    overdue: int
    by_definition: dict[str, int]


class TaskPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[TaskItem]
    counts: TaskCounts
    limit: int
    offset: int


@dataclass(frozen=True)
class Inbox:
    """Whose inbox: `groups` None means every task (an admin, an open server)."""

    actor: str
    groups: frozenset[str] | None
    separation_of_duties: bool = False

    def names(self) -> list[str]:
        if self.groups is None:
            return [ALL]
        return [ANY, f"user:{self.actor}", *(f"group:{g}" for g in sorted(self.groups))]


@dataclass(frozen=True)
class TaskFilter:
    definition: str | None = None
    ref_type: str | None = None
    ref_id: str | None = None
    due_before: datetime | None = None


async def page(
    store: Store,
    inbox: Inbox,
    where: TaskFilter,
    now: datetime,
    *,
    sort: Sort = "due",
    limit: int = 50,
    offset: int = 0,
) -> TaskPage:
    """A page of the inbox, soonest due (or oldest) first, with its counts."""
    i = INBOX.c
    conditions = _conditions(store, inbox, where)
    order = [i.due_sort, i.opened_at] if sort == "due" else [i.opened_at]
    columns = [i.run_id, i.slot, i.state, i.definition, i.ref_type, i.ref_id, i.created_by]
    columns += [i.assignee, i.opened_at, i.due_at]
    query: Select[Any] = select(*columns).where(*conditions)
    query = query.order_by(*order, i.run_id).limit(limit).offset(offset)
    overdue = and_(i.due_at.is_not(None), i.due_at < now)
    count = (
        select(i.definition, func.count(), func.count(case((overdue, 1))))
        .where(*conditions)
        .group_by(i.definition)
    )
    async with store.read() as conn:
        rows = (await conn.execute(query)).mappings().all()
        counted = (await conn.execute(count)).all()
    items = [TaskItem(**r, overdue=r["due_at"] is not None and r["due_at"] < now) for r in rows]
    by_definition = {d: n for d, n, _ in counted}
    counts = TaskCounts(
        total=sum(by_definition.values()),
        overdue=sum(late for _, _, late in counted),
        by_definition=by_definition,
    )
    return TaskPage(items=items, counts=counts, limit=limit, offset=offset)


def _conditions(store: Store, inbox: Inbox, where: TaskFilter) -> Sequence[ColumnElement[bool]]:
    i = INBOX.c
    names = inbox.names()
    found: list[ColumnElement[bool]] = [i.who.in_(names) if len(names) > 1 else i.who == names[0]]
    if len(names) > 1:  # a task that reaches the actor by several names counts once: its first
        other = INBOX.alias("other")
        o = other.c
        earlier = (
            select(literal(1))
            .select_from(other)
            .where(o.run_id == i.run_id, o.slot == i.slot, o.who.in_(names), o.who < i.who)
        )
        found.append(or_(i.shared.is_(False), ~earlier.exists()))
    if inbox.groups is not None:
        found.append(_not_voted(store, inbox.actor))
        if inbox.separation_of_duties:
            found.append(i.created_by != inbox.actor)
    for column in ("definition", "ref_type", "ref_id"):
        value = getattr(where, column)
        if value is not None:
            found.append(i[column] == value)
    if where.due_before is not None:
        found.append(i.due_at < where.due_before)
    return found


def _not_voted(store: Store, actor: str) -> ColumnElement[bool]:
    """The actor has not decided in the task yet (its voters list does not hold them)."""
    if store.url.startswith("sqlite"):
        clause = (
            "(inbox.voters = '[]'"
            " OR NOT EXISTS (SELECT 1 FROM json_each(inbox.voters) WHERE value = :voter))"
        )
    else:
        clause = "NOT (inbox.voters ? :voter)"
    return text(clause).bindparams(voter=actor)  # type: ignore[return-value]
