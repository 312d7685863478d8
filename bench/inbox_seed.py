"""100,000 waiting runs across 50 approvers, for the inbox benchmark (bench/tasks.py).

Driving 100,000 runs through the API would take most of an hour, so a few are: one template run
per (definition, wait state), created and moved into its wait state through a real server. Every
other run is a copy of a template's rows exactly as the engine wrote them (`runs` with its
`tasks`, both `history` entries, the `inbox` rows), with a new id, a new ref and every timestamp
moved back by up to 30 days, bulk-inserted on the raw driver. The copies are then checked with
the engine's own reads (bench/tasks.py).

Approver `aNN` (in group `tNN`) gets 2,000 tasks: 1,000 offered by name (wait state `uNN`,
`users: [aNN]`) and 1,000 by group (wait state `gNN`, decided by `tNN`), over 5 definitions whose
tasks fall due 1 to 5 days after they open, so some are overdue.
"""

from __future__ import annotations

import random
import re
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import msgspec

from signoff.engine.ids import uuid7
from signoff.engine.storage.sqlite_writer import sqlite_param

APPROVERS = 50
DEFINITIONS = 5
SPREAD = timedelta(days=30)
_STAMP = re.compile(rb'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)"')
# What the engine stores per run; `seq` and the inbox's `id` are the database's to number.
_RUN_SKIP = frozenset[str]()
_HISTORY_SKIP = frozenset({"seq"})
_INBOX_SKIP = frozenset({"id"})


def approver(k: int) -> str:
    return f"a{k:02d}"


def group(k: int) -> str:
    return f"t{k:02d}"


def definition(d: int) -> str:
    return f"inbox_d{d}"


def tokens() -> str:
    """SIGNOFF_TOKENS: an admin, an operator who creates the runs, the 50 approvers, and ann."""
    # `ann` is an approver nothing is offered to: her inbox is the request's cost without rows.
    people = ["admin:admin:admin-secret", "op:operator:op-secret", "ann:approver:ann-secret"]
    people += [f"{approver(k)}:approver@{group(k)}:{approver(k)}-secret" for k in range(APPROVERS)]
    return ",".join(people)


def headers(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {who}-secret"}


def document(d: int) -> str:
    """A chart with a wait state per approver and way of offering: `uNN` names the approver,
    `gNN` is decided by their group; runs enter one from `draft`."""
    ks = range(APPROVERS)
    waits = [f"u{k:02d}" for k in ks] + [f"g{k:02d}" for k in ks]
    lines = [
        f"name: {definition(d)}",
        "signoff:",
        "  kinds: {" + ", ".join([f"{w}: wait" for w in waits] + ["done: success"]) + "}",
        "  deciders: {" + ", ".join(f"g{k:02d}: {group(k)}" for k in ks) + "}",
        "  decisions: [approve]",
        "  tasks:",
        *(f"    u{k:02d}: {{users: [{approver(k)}], due: {d + 1}d}}" for k in ks),
        *(f"    g{k:02d}: {{due: {d + 1}d}}" for k in ks),
        "states:",
        "  draft:",
        "    initial: true",
        "    transitions:",
        *(f"      - {{event: to_{w}, target: {w}}}" for w in waits),
    ]
    for w in waits:
        lines += [f"  {w}:", "    transitions:", "      - {event: approve, target: done}"]
    return "\n".join([*lines, "  done: {final: true}"]) + "\n"


@dataclass(frozen=True)
class Template:
    """A run moved into wait state `state` of `definition` through the API."""

    run_id: str
    definition: str
    state: str
    approver: str
    ref_id: str


async def make_templates(client: httpx.AsyncClient) -> list[Template]:
    """Deploy the definitions and move one run into each of their wait states."""
    made = []
    for d in range(DEFINITIONS):
        body = {"format": "yaml", "document": document(d)}
        deployed = await client.post("/api/definitions", json=body, headers=headers("admin"))
        assert deployed.status_code == 201, deployed.text
        for k in range(APPROVERS):
            for state in (f"u{k:02d}", f"g{k:02d}"):
                ref = f"tpl-{d}-{state}"
                created = await client.post(
                    "/api/runs",
                    json={"definition": definition(d), "ref_type": "request", "ref_id": ref},
                    headers=headers("op"),
                )
                assert created.status_code == 201, created.text
                run_id = created.json()["id"]
                moved = await client.post(
                    f"/api/runs/{run_id}/events",
                    json={"event": f"to_{state}"},
                    headers=headers("op"),
                )
                assert moved.status_code == 200, moved.text
                made.append(Template(run_id, definition(d), state, approver(k), ref))
    return made


@dataclass(frozen=True)
class Copy:
    """How one copy differs from its template."""

    run_id: str
    ref_id: str
    back: timedelta


def plan_copies(templates: list[Template], total: int, seed: int = 15) -> dict[str, list[Copy]]:
    """`total` runs in all, the templates among them, spread evenly over the templates."""
    rng = random.Random(seed)
    each, extra = divmod(total - len(templates), len(templates))
    plans: dict[str, list[Copy]] = {}
    n = 0
    for i, t in enumerate(templates):
        copies = []
        for _ in range(each + (1 if i < extra else 0)):
            n += 1
            back = timedelta(seconds=rng.uniform(0, SPREAD.total_seconds()))
            copies.append(Copy(uuid7(), f"req-{n:06d}", back))
        plans[t.run_id] = copies
    return plans


def _json_text(text: str, t: Template, c: Copy) -> str:
    """A JSON column of the template as the copy's: its id, its ref, its times."""
    raw = text.replace(t.run_id, c.run_id).replace(f'"{t.ref_id}"', f'"{c.ref_id}"').encode()

    def moved(m: re.Match[bytes]) -> bytes:
        at = datetime.fromisoformat(m.group(1).decode()) - c.back
        return msgspec.json.encode(at)

    return _STAMP.sub(moved, raw).decode()


def _value(column: str, value: Any, t: Template, c: Copy, json_columns: set[str]) -> Any:
    if column in ("id", "run_id") and value == t.run_id:
        return c.run_id
    if column == "ref_id":
        return c.ref_id
    if isinstance(value, datetime):
        return value - c.back
    if column in json_columns and isinstance(value, str):
        return _json_text(value, t, c)
    return value


# --- SQLite -----------------------------------------------------------------------------------


def copy_sqlite(path: str, templates: list[Template], plans: dict[str, list[Copy]]) -> None:
    """Insert the copies in one transaction on SQLite's own driver, in the engine's format
    (JSON text; naive-UTC timestamps as signoff.engine.storage.sqlite_writer writes them)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute("BEGIN IMMEDIATE")
    for table, key, skip in (
        ("runs", "id", _RUN_SKIP),
        ("history", "run_id", _HISTORY_SKIP),
        ("inbox", "run_id", _INBOX_SKIP),
    ):
        jsons = _json_columns_sqlite(conn, table)
        stamps = _time_columns_sqlite(conn, table)
        rows = []
        for t in templates:
            for row in conn.execute(f"SELECT * FROM {table} WHERE {key} = ?", (t.run_id,)):
                template = {k: row[k] for k in row.keys() if k not in skip}  # noqa: SIM118 (a Row iterates values)
                for c in plans[t.run_id]:
                    rows.append(_sqlite_row(template, t, c, jsons, stamps))
        columns = list(rows[0])
        marks = ", ".join("?" for _ in columns)
        conn.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})",
            [[r[col] for col in columns] for r in rows],
        )
    conn.execute("COMMIT")
    conn.close()


def _sqlite_row(
    template: dict[str, Any], t: Template, c: Copy, jsons: set[str], stamps: set[str]
) -> dict[str, Any]:
    row = {}
    for column, value in template.items():
        if column in stamps and isinstance(value, str):
            at = datetime.fromisoformat(value).replace(tzinfo=UTC) - c.back
            row[column] = sqlite_param(at)
        else:
            row[column] = _value(column, value, t, c, jsons)
    return row


def _declared(conn: sqlite3.Connection, table: str) -> dict[str, str]:
    return {r["name"]: r["type"].upper() for r in conn.execute(f"PRAGMA table_info({table})")}


def _json_columns_sqlite(conn: sqlite3.Connection, table: str) -> set[str]:
    return {name for name, kind in _declared(conn, table).items() if kind in ("JSON", "JSONB")}


def _time_columns_sqlite(conn: sqlite3.Connection, table: str) -> set[str]:
    return {name for name, kind in _declared(conn, table).items() if kind.startswith("DATETIME")}


# --- PostgreSQL -------------------------------------------------------------------------------


async def copy_pg(dsn: str, templates: list[Template], plans: dict[str, list[Copy]]) -> None:
    """Insert the copies with COPY in one transaction, then VACUUM ANALYZE (what autovacuum
    does within a minute or so of such a load), so the planner sees the real table sizes."""
    conn = await asyncpg.connect(dsn)
    try:
        ids = [t.run_id for t in templates]
        by_id = {t.run_id: t for t in templates}
        async with conn.transaction():
            for table, key, skip in (
                ("runs", "id", _RUN_SKIP),
                ("history", "run_id", _HISTORY_SKIP),
                ("inbox", "run_id", _INBOX_SKIP),
            ):
                jsons = await _json_columns_pg(conn, table)
                found = await conn.fetch(f"SELECT * FROM {table} WHERE {key} = ANY($1)", ids)
                columns = [k for k in found[0].keys() if k not in skip]  # noqa: SIM118 (a Record too)
                records = []
                for row in found:
                    t = by_id[row[key]]
                    for c in plans[t.run_id]:
                        records.append(tuple(_value(col, row[col], t, c, jsons) for col in columns))
                await conn.copy_records_to_table(table, records=records, columns=columns)
        for table in ("runs", "history", "inbox"):
            await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()


async def _json_columns_pg(conn: asyncpg.Connection, table: str) -> set[str]:
    rows = await conn.fetch(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_name = $1 AND data_type IN ('json', 'jsonb')",
        table,
    )
    return {r["column_name"] for r in rows}
