"""The inbox: what an actor may decide now, read off the `inbox` index (never a scan of runs).

Each open task has one row per audience member (`user:<actor>`, `group:<group>`, `*`) and one
`#all` row; an actor's inbox is the rows for their own names, minus the tasks they already
decided in (a quorum counts them once) and, under separation of duties, their own runs.

Its counts are exact up to a limit (`SIGNOFF_TASK_COUNT_LIMIT`) and stop there: they read at
most the limit's worth of the due index per name, so an inbox of a million tasks costs what one
of a thousand does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

import msgspec
from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    literal,
    or_,
    select,
    text,
    union_all,
)

from signoff.engine.storage.schema import INBOX
from signoff.engine.storage.store import Store

Sort = Literal["due", "age"]
ALL = "#all"
ANY = "*"
COUNT_LIMIT = 1000  # signoff.engine.settings.Settings.task_count_limit


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


_EXACT = (
    "false: more tasks match than the server counts (SIGNOFF_TASK_COUNT_LIMIT); total is that"
    " limit, and the figures are over the soonest-due tasks"
)


class TaskCounts(msgspec.Struct, frozen=True, kw_only=True):
    """How many tasks match. With `exact` false, more match than the server counts (its count
    limit, `SIGNOFF_TASK_COUNT_LIMIT`), and the figures are over the soonest-due ones only:
    `total` is the limit (show it as "1000+"); `overdue` is still exact unless it equals
    `total`, since overdue tasks are the soonest due; `by_definition` adds up to `total`, each
    figure a lower bound."""

    total: int
    overdue: int
    by_definition: dict[str, int]
    # An older server's answer has no such field: its counts were exact.
    exact: Annotated[bool, msgspec.Meta(description=_EXACT)] = True


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
    count_limit: int = COUNT_LIMIT,
) -> TaskPage:
    """A page of the inbox, soonest due (or oldest) first, with its counts (exact up to
    `count_limit` tasks)."""
    shape = _Shape.of(store, inbox, where)
    values = shape.values(inbox, where, now)
    async with store.read() as conn:
        listed = await conn.execute(_listing(shape, sort), {**values, "n": limit, "skip": offset})
        rows = listed.mappings().all()
        counted = (await conn.execute(_soonest(shape), {**values, "n": count_limit + 1})).all()
    items = [TaskItem(**r, overdue=r["due_at"] is not None and r["due_at"] < now) for r in rows]
    first = counted[:count_limit]  # one more was read only to learn that there are more
    counts = TaskCounts(
        total=len(first),
        overdue=sum(late for _, late in first),
        by_definition=dict(Counter(d for d, _ in first)),
        exact=len(counted) <= count_limit,
    )
    return TaskPage(items=items, counts=counts, limit=limit, offset=offset)


@dataclass(frozen=True)
class _Shape:
    """What the inbox's statements are made of; the caller's names, the filters' values and
    the time are their parameters, so each shape's statements are built once (building them
    costs more than running them on a small inbox)."""

    names: int  # the caller's: 1 is every task (`#all`)
    sqlite: bool
    limited: bool  # to the caller's groups: not those they already decided in
    separation_of_duties: bool
    filters: tuple[str, ...]  # the TaskFilter fields set

    @classmethod
    def of(cls, store: Store, inbox: Inbox, where: TaskFilter) -> _Shape:
        filters = tuple(f for f in _FILTERS if getattr(where, f) is not None)
        limited = inbox.groups is not None
        sod = limited and inbox.separation_of_duties
        return cls(len(inbox.names()), store.url.startswith("sqlite"), limited, sod, filters)

    def values(self, inbox: Inbox, where: TaskFilter, now: datetime) -> dict[str, Any]:
        names = inbox.names()
        found = {f"name_{k}": name for k, name in enumerate(names)}
        found |= {f: getattr(where, f) for f in self.filters}
        return {**found, "names": names, "actor": inbox.actor, "now": now}


_FILTERS = ("definition", "ref_type", "ref_id", "due_before")


@lru_cache(maxsize=256)
def _listing(shape: _Shape, sort: Sort) -> Select[Any]:
    """A page: `n` rows from `skip`, soonest due (or oldest) first."""
    i = INBOX.c
    order = [i.due_sort, i.opened_at] if sort == "due" else [i.opened_at]
    columns = [i.run_id, i.slot, i.state, i.definition, i.ref_type, i.ref_id, i.created_by]
    columns += [i.assignee, i.opened_at, i.due_at]
    if shape.names == 1:
        who = i.who == bindparam("name_0")
    else:
        who = i.who.in_(bindparam("names", expanding=True))
    query: Select[Any] = select(*columns).where(who, *_conditions(shape))
    return query.order_by(*order, i.run_id).limit(bindparam("n")).offset(bindparam("skip"))


@lru_cache(maxsize=256)
def _soonest(shape: _Shape) -> Select[Any]:
    """The caller's first `n` tasks in the due index's order (`ix_inbox_who_due_opened`: overdue
    ones first), as (definition, overdue): one walk of the index per name, each stopped after
    `n` rows, merged. Never more rows than that however large the inbox: this bounds the
    counting, where a GROUP BY over the caller's tasks would read every one of them."""
    i = INBOX.c
    late = case((and_(i.due_at.is_not(None), i.due_at < bindparam("now")), 1), else_=0)
    conditions = _conditions(shape)
    arms = [
        select(i.definition, late.label("late"), i.due_sort, i.opened_at, i.run_id)
        .where(i.who == bindparam(f"name_{k}"), *conditions)
        .order_by(i.due_sort, i.opened_at, i.run_id)
        .limit(bindparam("n"))
        for k in range(shape.names)
    ]
    if len(arms) == 1:
        return arms[0].with_only_columns(i.definition, late.label("late"))
    # Each arm in a subquery of its own: SQLite takes no LIMIT on a compound's arms.
    merged = union_all(*(select(arm.subquery()) for arm in arms)).subquery()
    m = merged.c
    order = (m.due_sort, m.opened_at, m.run_id)
    return select(m.definition, m.late).order_by(*order).limit(bindparam("n"))


def _conditions(shape: _Shape) -> list[ColumnElement[bool]]:
    """Which of the rows under the caller's names are their tasks (the names themselves are
    the statement's to add: one range of the index, or several)."""
    i = INBOX.c
    found: list[ColumnElement[bool]] = []
    if shape.names > 1:  # a task that reaches the actor by several names counts once: its first
        other = INBOX.alias("other")
        o = other.c
        mine = o.who.in_(bindparam("names", expanding=True))
        earlier = (
            select(literal(1))
            .select_from(other)
            .where(o.run_id == i.run_id, o.slot == i.slot, mine, o.who < i.who)
        )
        found.append(or_(i.shared.is_(False), ~earlier.exists()))
    if shape.limited:
        found.append(_not_voted(shape.sqlite))
    if shape.separation_of_duties:
        found.append(i.created_by != bindparam("actor"))
    for column in ("definition", "ref_type", "ref_id"):
        if column in shape.filters:
            found.append(i[column] == bindparam(column))
    if "due_before" in shape.filters:  # due_sort too: the same tasks, as a range of the index
        found += [i.due_at < bindparam("due_before"), i.due_sort < bindparam("due_before")]
    return found


def _not_voted(sqlite: bool) -> ColumnElement[bool]:
    """The actor has not decided in the task yet (its voters list does not hold them)."""
    if sqlite:
        clause = (
            "(inbox.voters = '[]'"
            " OR NOT EXISTS (SELECT 1 FROM json_each(inbox.voters) WHERE value = :actor))"
        )
    else:
        clause = "NOT (inbox.voters ? :actor)"
    return text(clause)  # type: ignore[return-value]
