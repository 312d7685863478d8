"""A template run's stored rows as a pattern, and its copies' rows (bench/seed.py).

Every stored string is compiled once into a format string over the copy's run id (`{r}`), its
ref (`{f}`) and its times (`{s3}`: each distinct timestamp of the template, as it was spelled:
`T` or space, fraction, zone; or a date alone); a stored datetime (PostgreSQL) is moved. A copy
is then a few format_map calls per row. History rows get their seq in the copies' time order
and their audit hash: the content digest is signoff.engine.audit.chain's, computed once per
template entry around the two values that change (time and run id) and checked against
`digest()` itself before it is used; when it disagrees, `digest()` is called for every copy.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import msgspec

from bench.seed_templates import Template
from signoff.engine.audit.chain import GENESIS, canonical, digest, link, timestamp

BATCH = 20_000  # copies per insert round
_STAMP = re.compile(r"(\d{4}-\d\d-\d\d)(?:([T ])(\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?)?")
_DIGESTED = ("data", "reason", "business_from", "business_to", "lifecycle_from", "lifecycle_to")
_SORTED = msgspec.json.Encoder(order="sorted")
_RUN, _AT = "\x01run\x01", "\x01at\x01"
# Columns numbered here, last in a copy's row: history's seq and hash, and the seq of the
# entry whose counters a `pending_counts` row holds.
OWN = {"history": ("seq", "hash"), "pending_counts": ("seq",)}


@dataclass(frozen=True)
class Tables:
    """The stored layout: each table's columns, the one the database numbers itself, the JSON
    ones; history's seq is numbered here (the chain needs it) and its hash computed."""

    columns: dict[str, list[str]]
    serial: dict[str, str | None]
    json: dict[str, set[str]]

    def copied(self, table: str) -> list[str]:
        """The columns a copy's row fills, in its order."""
        own = OWN.get(table, ())
        cols = [c for c in self.columns[table] if c != self.serial[table] and c not in own]
        return [*cols, *own]


@dataclass(frozen=True)
class Stamp:
    """A timestamp as a stored value spelled it: `sep` None is a date alone."""

    at: datetime  # naive UTC
    sep: str | None
    frac: str
    zone: str

    def render(self, moved: datetime) -> str:
        if self.sep is None:
            return moved.date().isoformat()
        if (self.frac == "") == (moved.microsecond == 0) and len(self.frac) in (0, 7):
            return moved.isoformat(self.sep) + self.zone
        return f"{moved:%Y-%m-%d}{self.sep}{moved:%H:%M:%S}{self.frac}{self.zone}"


@dataclass
class Row:
    """A stored row: plain values, the indexes of format strings and of datetimes to move."""

    plain: list[Any]
    formats: list[tuple[int, str]]
    moved: list[int]

    def copy(self, values: dict[str, str], shift: timedelta) -> list[Any]:
        row = list(self.plain)
        for i, fmt in self.formats:
            row[i] = fmt.format_map(values)
        for i in self.moved:
            row[i] = row[i] + shift
        return row


@dataclass
class Entry:
    """A history row's part in the audit chain: its time, and the content digest's canonical
    JSON split around the time and the run id (None: the content changes with the copy)."""

    at: datetime
    version: int
    parts: tuple[bytes, bytes, bytes] | None


@dataclass
class Pattern:
    template: Template
    start: datetime  # aware UTC
    stamps: dict[tuple[datetime, str | None, str, str], str] = field(default_factory=dict)
    rows: dict[str, list[Row]] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)
    spelled: list[tuple[str, Stamp]] = field(default_factory=list)

    def compile(self, value: Any, window: tuple[datetime, datetime]) -> tuple[str, Any]:
        """('plain' | 'format' | 'moved', value) of one stored value."""
        if isinstance(value, datetime):
            inside = window[0] <= value.replace(tzinfo=None) <= window[1]
            return ("moved", value) if inside else ("plain", value)
        if not isinstance(value, str):
            return ("plain", value)
        t = self.template
        text = value.replace("{", "{{").replace("}", "}}")
        plain = text
        text = text.replace(t.run_id, "{r}").replace(t.ref_token, "{f}")
        text = _STAMP.sub(lambda m: self._stamp(m, window), text)
        return ("plain", value) if text == plain else ("format", text)

    def _stamp(self, m: re.Match[str], window: tuple[datetime, datetime]) -> str:
        day, sep, clock, frac, zone = m.groups()
        if sep is None:
            at = datetime.combine(date.fromisoformat(day), self.start.time())
        else:
            at = datetime.fromisoformat(f"{day}T{clock}")
        if not (window[0] - timedelta(days=1) <= at <= window[1]):
            return m.group(0)
        key = (at, sep, frac or "", zone or "")
        name = self.stamps.setdefault(key, f"s{len(self.stamps)}")
        return "{" + name + "}"

    def values(self, run_id: str, ref: str, shift: timedelta) -> dict[str, str]:
        moved: dict[datetime, datetime] = {}
        values = {"r": run_id, "f": ref}
        if len(self.spelled) != len(self.stamps):
            self.spelled = [(name, Stamp(*key)) for key, name in self.stamps.items()]
        for name, stamp in self.spelled:
            when = moved.get(stamp.at)
            if when is None:
                when = moved[stamp.at] = stamp.at + shift
            values[name] = stamp.render(when)
        return values


def _timestamp(at: datetime) -> bytes:
    """chain.timestamp(at), without strftime when isoformat spells it the same."""
    if at.microsecond:
        return (at.replace(tzinfo=None).isoformat() + "Z").encode()
    return timestamp(at).encode()


def _aware(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def _decoded(value: Any, is_json: bool) -> Any:
    return json.loads(value) if is_json and isinstance(value, str) else value


def _fields(row: dict[str, Any], tables: Tables) -> dict[str, Any]:
    return {c: _decoded(row[c], c in tables.json["history"]) for c in _DIGESTED}


def _digest(
    run_id: str, version: int, at: datetime | str, row: dict[str, Any], f: dict[str, Any]
) -> str:
    return digest(
        run_id,
        version,
        at,
        row["actor"],
        row["event"],
        f["data"] or {},
        f["reason"],
        (f["business_from"], f["business_to"]),
        (f["lifecycle_from"], f["lifecycle_to"]),
    )


def _parts(
    row: dict[str, Any], tables: Tables, run_id: str, at: datetime
) -> tuple[bytes, bytes, bytes] | None:
    """The content's canonical JSON around the time and the run id, if it gives digest()'s
    answer for the template itself."""
    f = _fields(row, tables)
    content = {
        "run_id": _RUN,
        "version": int(row["version"]),
        "at": _AT,
        "actor": row["actor"],
        "event": row["event"],
        "data": canonical(f["data"] or {}),
        "reason": f["reason"],
        "business": [list(f["business_from"]), list(f["business_to"])],
        "lifecycle": [list(f["lifecycle_from"]), list(f["lifecycle_to"])],
    }
    encoded = _SORTED.encode(content)
    run, at_ = _SORTED.encode(_RUN)[1:-1], _SORTED.encode(_AT)[1:-1]
    head, _, rest = encoded.partition(at_)
    middle, _, tail = rest.partition(run)
    parts = (head, middle, tail)
    mine = hashlib.sha256(head + timestamp(at).encode() + middle + run_id.encode() + tail)
    return parts if mine.hexdigest() == _digest(run_id, int(row["version"]), at, row, f) else None


def make_pattern(t: Template, found: dict[str, list[dict[str, Any]]], tables: Tables) -> Pattern:
    start = _aware(found["runs"][0]["created_at"])
    naive = start.replace(tzinfo=None)
    window = (naive - timedelta(minutes=1), naive + timedelta(days=400))
    p = Pattern(t, start)
    for table, rows in found.items():
        columns = tables.copied(table)
        if table == "history":
            rows = sorted(rows, key=lambda r: int(r["seq"]))
            columns = columns[:-2]
        compiled = []
        for r in rows:
            kinds = [p.compile(r[c], window) for c in columns]
            compiled.append(
                Row(
                    [v for _, v in kinds],
                    [(i, v) for i, (k, v) in enumerate(kinds) if k == "format"],
                    [i for i, (k, _) in enumerate(kinds) if k == "moved"],
                )
            )
        p.rows[table] = compiled
        if table == "history":
            for r, row in zip(rows, compiled, strict=True):
                fixed = {columns[i] for i, _ in row.formats}.isdisjoint(
                    (*_DIGESTED, "actor", "event")
                )
                at = _aware(r["at"])
                parts = _parts(r, tables, t.run_id, at) if fixed else None
                p.entries.append(Entry(at, int(r["version"]), parts))
    return p


class Ids:
    """UUIDv7 run ids for given start times, increasing (signoff.engine.ids's layout)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.last_ms, self.counter = rng, 0, 0

    def at(self, when: datetime) -> str:
        ms = int(when.timestamp() * 1000)
        if ms > self.last_ms:
            self.last_ms, self.counter = ms, self.rng.getrandbits(10)
        else:
            self.counter += 1
            if self.counter > 0xFFF:
                self.last_ms, self.counter = self.last_ms + 1, 0
            ms = self.last_ms
        value = (ms << 80) | (0x7 << 76) | (self.counter << 64) | (0b10 << 62)
        return str(uuid.UUID(int=value | self.rng.getrandbits(62)))


@dataclass
class Copies:
    """The copies' rows, table by table, in batches, history numbered and chained."""

    patterns: list[Pattern]
    tables: Tables
    seq: int = 0
    prev: str = GENESIS

    def batches(self, starts: list[tuple[float, int]]) -> Iterator[dict[str, list[list[Any]]]]:
        ids = Ids(random.Random(17))
        history = self.tables.copied("history")[:-2]
        out: dict[str, list[list[Any]]] = {}
        for n, (when_ts, k) in enumerate(starts, 1):
            p = self.patterns[k]
            when = datetime.fromtimestamp(when_ts, UTC)
            shift = timedelta(seconds=round((when - p.start).total_seconds()))
            run_id = ids.at(when)
            values = p.values(run_id, f"{p.template.shape.ref_type[:3].upper()}-{n:08d}", shift)
            for table, rows in p.rows.items():
                made = out.setdefault(table, [])
                made += [row.copy(values, shift) for row in rows]
            if p.entries:
                entries = out["history"][-len(p.entries) :]
                self._chain(p, entries, history, run_id, shift)
                self._pending(entries, history.index("counts"), out)
            if n % BATCH == 0:
                yield out
                out = {}
        if out:
            yield out

    @staticmethod
    def _pending(entries: list[list[Any]], at: int, out: dict[str, list[list[Any]]]) -> None:
        """Each entry's counters as the engine stores them: in a `pending_counts` row of
        its seq (the template's were put in the entry's `counts` to travel with it)."""
        pending = out.setdefault("pending_counts", [])
        for row in entries:
            if row[at] is not None:
                pending.append([row[at], row[-2]])
                row[at] = None

    def _chain(
        self, p: Pattern, rows: list[list[Any]], columns: list[str], run_id: str, shift: timedelta
    ) -> None:
        for row, entry in zip(rows, p.entries, strict=True):
            at = entry.at + shift
            if entry.parts is not None:
                head, middle, tail = entry.parts
                content = hashlib.sha256(
                    head + _timestamp(at) + middle + run_id.encode() + tail
                ).hexdigest()
            else:
                named = dict(zip(columns, row, strict=True))
                content = _digest(run_id, entry.version, at, named, _fields(named, self.tables))
            self.seq += 1
            self.prev = link(self.prev, self.seq, content)
            row += [self.seq, self.prev]
