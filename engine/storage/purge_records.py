"""Retention, after the runs: external events and idempotency records that name only purged runs.

Neither table is keyed by run: an event lists the runs it started and was delivered to, an
idempotency record holds the run view it answered with. Once the runs are purged, the records
from before the purge's time that name no run still stored are deleted too, a page per
transaction. An event that names no run at all (nothing wanted it) goes with them; an
idempotency record whose body is not a run view is kept.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from signoff.engine.storage.purge import Purged, in_list, with_list
from signoff.engine.storage.schema import EVENTS
from signoff.engine.storage.statements import Tx, sql
from signoff.engine.storage.store import Store

PAGE = 500

_EVENTS = sql(
    "SELECT id, started, delivered FROM events WHERE received_at < $1 AND id > $2"
    " ORDER BY id LIMIT $3",
    of=EVENTS,
)
_DROP_EVENTS = with_list("DELETE FROM events WHERE {in}", in_list("id", 1, "text"))
_KEYS = sql(
    "SELECT key, actor, route, body FROM idempotency WHERE created_at < $1"
    " AND (key, actor, route) > ($2, $3, $4) ORDER BY key, actor, route LIMIT $5"
)
_DROP_KEY = sql("DELETE FROM idempotency WHERE key = $1 AND actor = $2 AND route = $3")
_STORED = with_list("SELECT id FROM runs WHERE {in}", in_list("id", 1, "text"))


class _Named(msgspec.Struct):
    id: Any = None


_DECODE = msgspec.json.Decoder(_Named)


async def purge_records(store: Store, before: datetime, done: Purged, *, page: int = PAGE) -> None:
    """Delete the events and idempotency records from before `before` naming no stored run."""
    cursor = ""
    while True:
        async with store.write() as tx:
            rows = await tx.fetch(_EVENTS, before, cursor, page)
            named = {r["id"]: _runs_of(r) for r in rows}
            stored = await _stored(tx, {run for runs in named.values() for run in runs})
            drop = [event for event, runs in named.items() if not runs & stored]
            if drop:
                done.add("events", await tx.execute(_DROP_EVENTS, drop))
        if len(rows) < page:
            break
        cursor = rows[-1]["id"]
    key: tuple[str, str, str] = ("", "", "")
    while True:
        async with store.write() as tx:
            rows = await tx.fetch(_KEYS, before, *key, page)
            runs = {(r["key"], r["actor"], r["route"]): _run_of(r["body"]) for r in rows}
            stored = await _stored(tx, {run for run in runs.values() if run is not None})
            for k, run in runs.items():
                if run is not None and run not in stored:
                    done.add("idempotency", await tx.execute(_DROP_KEY, *k))
        if len(rows) < page:
            return
        key = (rows[-1]["key"], rows[-1]["actor"], rows[-1]["route"])


async def _stored(tx: Tx, runs: set[str]) -> set[str]:
    if not runs:
        return set()
    return {row["id"] for row in await tx.fetch(_STORED, sorted(runs))}


def _runs_of(event: dict[str, Any]) -> set[str]:
    steps = [*(event["started"] or ()), *(event["delivered"] or ())]
    return {s["run_id"] for s in steps if isinstance(s, dict) and s.get("run_id")}


def _run_of(body: str) -> str | None:
    try:
        named = _DECODE.decode(body)
    except msgspec.DecodeError:
        return None
    return named.id if isinstance(named.id, str) else None
