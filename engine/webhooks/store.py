"""Webhook subscriptions (the `webhooks` table) and their delivery log (their `webhook` jobs).

Subscriptions are few and changed by admins, so each change is its own write transaction. A
delivery is a job row that the transition's transaction wrote, one per subscription; the log
of a subscription is a range of the jobs index on `subscription_id`, newest first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from signoff.engine.errors import (
    DeliveryNotFoundError,
    DeliveryPendingError,
    InvalidCursorError,
    WebhookNotFoundError,
)
from signoff.engine.storage.jobs import WEBHOOK_KIND, JobStatus
from signoff.engine.storage.schema import JOBS, WEBHOOKS
from signoff.engine.storage.statements import columns, sql
from signoff.engine.storage.store import Store

# What an admin may change after creating a subscription.
CHANGEABLE = ("url", "definitions", "events", "active", "description", "max_attempts")
_COLUMNS = columns(WEBHOOKS)
_INSERT = sql(
    f"INSERT INTO webhooks ({', '.join(_COLUMNS)})"
    f" VALUES ({', '.join(f'${i}' for i in range(1, len(_COLUMNS) + 1))})"
)
_UPDATE = sql(
    "UPDATE webhooks SET "
    + ", ".join(f"{c} = ${i}" for i, c in enumerate((*CHANGEABLE, "updated_at"), start=2))
    + " WHERE id = $1"
)
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM webhooks WHERE id = $1"
_DELETE = sql("DELETE FROM webhooks WHERE id = $1")
_DELETE_DELIVERIES = sql(f"DELETE FROM jobs WHERE subscription_id = $1 AND kind = '{WEBHOOK_KIND}'")
# Back to ready with its attempts reset; its message id (payload.id) is kept, so a receiver
# that had it already drops it. Only a finished delivery: a pending one is still being tried.
_AGAIN = f"""UPDATE jobs SET status = 'ready', attempts = 0, due_at = $2, outcome = NULL,
    lease_owner = NULL, lease_until = NULL, updated_at = $2
    WHERE subscription_id = $1 AND kind = '{WEBHOOK_KIND}'"""
_REDELIVER = sql(_AGAIN + " AND id = $3 AND status IN ('dead', 'done')")
_REDELIVER_DEAD = sql(_AGAIN + " AND status = 'dead'")
_STATUS = sql(
    f"SELECT status FROM jobs WHERE id = $2 AND subscription_id = $1 AND kind = '{WEBHOOK_KIND}'"
)


@dataclass(frozen=True)
class Subscription:
    id: str
    url: str
    secret: str
    definitions: list[str]  # empty: every definition
    events: list[str]  # empty: every notification type
    active: bool
    description: str
    max_attempts: int
    created_by: str
    created_at: datetime
    updated_at: datetime

    def changed(self, changes: dict[str, Any], now: datetime) -> Subscription:
        """This subscription with `changes` (fields of CHANGEABLE) applied at `now`."""
        unknown = set(changes) - set(CHANGEABLE)
        if unknown:
            raise ValueError(f"not changeable: {', '.join(sorted(unknown))}")
        return Subscription(**{**self.__dict__, **changes, "updated_at": now})


@dataclass(frozen=True)
class Delivery:
    """One notification's delivery to one subscription, with every attempt that failed."""

    id: int
    webhook_id: str
    message_id: str  # the `webhook-id` header: the same on every attempt
    type: str
    run_id: str
    status: str  # ready, running, done or dead
    attempts: int
    max_attempts: int
    next_attempt_at: datetime | None  # when a ready one is due
    last_error: str | None
    response_status: int | None  # the receiver's 2xx, once done
    attempt_log: list[dict[str, Any]]  # each failed attempt
    claimed_at: datetime | None  # when the last attempt began
    created_at: datetime
    updated_at: datetime


async def add(store: Store, sub: Subscription) -> None:
    async with store.write() as tx:
        await tx.execute(_INSERT, *(getattr(sub, c) for c in _COLUMNS))


async def listing(store: Store) -> list[Subscription]:
    """Every subscription, oldest first."""
    query = select(WEBHOOKS).order_by(WEBHOOKS.c.created_at, WEBHOOKS.c.id)
    async with store.read() as conn:
        rows = (await conn.execute(query)).all()
    return [_subscription(r._mapping) for r in rows]


async def find(store: Store, webhook_id: str) -> Subscription | None:
    async with store.read() as conn:
        query = select(WEBHOOKS).where(WEBHOOKS.c.id == webhook_id)
        row = (await conn.execute(query)).one_or_none()
    return None if row is None else _subscription(row._mapping)


async def get(store: Store, webhook_id: str) -> Subscription:
    found = await find(store, webhook_id)
    if found is None:
        raise WebhookNotFoundError()
    return found


async def update(
    store: Store,
    webhook_id: str,
    changes: dict[str, Any],
    now: datetime,
    check: Callable[[Subscription], None],
) -> Subscription:
    """Apply `changes` (fields of CHANGEABLE) to a subscription, if the changed one passes
    `check` (which raises to refuse); read and written in one transaction, so two admins'
    changes do not undo each other."""
    async with store.write() as tx:
        row = await tx.fetchrow(sql(_SELECT + store.lock_clause, of=WEBHOOKS), webhook_id)
        if row is None:
            raise WebhookNotFoundError()
        sub = _subscription(row).changed(changes, now)
        check(sub)
        await tx.execute(_UPDATE, sub.id, *(getattr(sub, c) for c in (*CHANGEABLE, "updated_at")))
    return sub


async def delete(store: Store, webhook_id: str) -> None:
    """Delete a subscription and its deliveries, pending ones too (an attempt under way then
    finds its job gone, and records nothing)."""
    async with store.write() as tx:
        if await tx.execute(_DELETE, webhook_id) != 1:
            raise WebhookNotFoundError()
        await tx.execute(_DELETE_DELIVERIES, webhook_id)


async def deliveries(
    store: Store, webhook_id: str, status: str | None, limit: int, cursor: str | None
) -> tuple[list[Delivery], str | None]:
    """A page of a subscription's deliveries, newest first, and the cursor of the next."""
    query = (
        select(JOBS)
        .where(JOBS.c.subscription_id == webhook_id, JOBS.c.kind == WEBHOOK_KIND)
        .order_by(JOBS.c.id.desc())
        .limit(limit + 1)
    )
    if status is not None:
        query = query.where(JOBS.c.status == status)
    if cursor is not None:
        query = query.where(JOBS.c.id < _decode(cursor))
    known = select(WEBHOOKS.c.id).where(WEBHOOKS.c.id == webhook_id)
    async with store.read() as conn:
        if (await conn.execute(known)).first() is None:
            raise WebhookNotFoundError()
        rows = (await conn.execute(query)).all()
    page = [delivery(r._mapping) for r in rows[:limit]]
    return page, (str(page[-1].id) if len(rows) > limit else None)


async def redeliver(store: Store, webhook_id: str, delivery_id: int, now: datetime) -> None:
    """Send a dead or done delivery again, as a new series of attempts."""
    async with store.write() as tx:
        if await tx.execute(_REDELIVER, webhook_id, now, delivery_id) == 1:
            return
        row = await tx.fetchrow(_STATUS, webhook_id, delivery_id)
    if row is not None:
        raise DeliveryPendingError(
            f"Delivery {delivery_id} is {row['status']}: only a dead or done delivery is "
            "redelivered."
        )
    await get(store, webhook_id)  # an unknown subscription is its own 404
    raise DeliveryNotFoundError()


async def redeliver_dead(store: Store, webhook_id: str, now: datetime) -> int:
    """Send every dead delivery of a subscription again; how many."""
    await get(store, webhook_id)
    async with store.write() as tx:
        return await tx.execute(_REDELIVER_DEAD, webhook_id, now)


def delivery(row: Any) -> Delivery:
    payload: dict[str, Any] = row["payload"] or {}
    outcome: dict[str, Any] = row["outcome"] or {}
    status = row["status"]
    return Delivery(
        id=row["id"],
        webhook_id=row["subscription_id"],
        message_id=str(payload.get("id", "")),
        type=str(payload.get("type", "")),
        run_id=row["run_id"],
        status=status,
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        next_attempt_at=row["due_at"] if status == JobStatus.READY else None,
        last_error=row["last_error"],
        response_status=outcome.get("status"),
        attempt_log=row["attempt_log"],
        claimed_at=row["claimed_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _subscription(row: Any) -> Subscription:
    # SQLite's driver gives the flag as 0 or 1.
    return Subscription(**{**dict(row), "active": bool(row["active"])})


def _decode(cursor: str) -> int:
    if not cursor.isdigit() or len(cursor) > 19:
        raise InvalidCursorError()
    return int(cursor)
