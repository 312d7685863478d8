"""The audit export's two formats, written by the server and read back by `signoff audit verify`.

An export is a `chain` line (where the chain starts, and which entries the export covers),
an `entry` line per history entry in seq order (after a `purged` line where the entries before
one were purged, saying which hash it links to), and an `end` line (how many entries, the last
seq and its hash): a file without its end line was cut short. NDJSON has a JSON object per line,
each with its `type`. CSV has one column set for every row: `type`, then an entry's fields,
with the ones that hold JSON values (data, reason, the from/to configurations) as JSON text;
the chain and end rows carry their fields as a JSON object in the `data` column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal

import msgspec

Format = Literal["ndjson", "csv"]
MEDIA_TYPES: dict[str, str] = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}


class ChainLine(msgspec.Struct, frozen=True, kw_only=True, tag="chain", tag_field="type"):
    """Where the chain starts: entries up to `started_seq` were stored before it (before
    migration 0007) and carry no hash. The export holds the entries after `since_seq`."""

    started_seq: int
    started_at: str
    since_seq: int


class EndLine(msgspec.Struct, frozen=True, kw_only=True, tag="end", tag_field="type"):
    """The export is complete: `entries` entries, the last `last_seq` with hash `head` (None
    when it has none, or there was no entry). `more`: the page is full, ask after `last_seq`."""

    entries: int
    last_seq: int | None
    head: str | None
    more: bool


class PurgedLine(msgspec.Struct, frozen=True, kw_only=True, tag="purged", tag_field="type"):
    """Entries after seq `after_seq` (None: from the first) up to seq `last_seq` were purged
    (`signoff purge`; its export file holds them); the next entry, seq `next_seq`, links to
    `last_hash`, the hash of entry `last_seq`, recorded by the purge."""

    after_seq: int | None
    last_seq: int
    last_hash: str | None
    next_seq: int


Meta = ChainLine | EndLine | PurgedLine
Line = ChainLine | EndLine | PurgedLine | dict[str, Any]

ENTRY_FIELDS = (
    "seq", "run_id", "version", "at", "actor", "event", "data", "reason",
    "business_from", "business_to", "lifecycle_from", "lifecycle_to", "prev_hash", "hash",
)  # fmt: skip
CSV_COLUMNS = ("type", *ENTRY_FIELDS)
_JSON_COLUMNS = frozenset(
    ("data", "reason", "business_from", "business_to", "lifecycle_from", "lifecycle_to")
)
_KINDS: dict[type, str] = {ChainLine: "chain", EndLine: "end", PurgedLine: "purged"}
_ENCODER = msgspec.json.Encoder()
_META: msgspec.json.Decoder[Meta] = msgspec.json.Decoder(Meta)


class ExportFormatError(ValueError):
    """A line of an export that is not one of its lines; the message says where."""


def ndjson(line: Line) -> bytes:
    """One NDJSON line, with its newline."""
    if isinstance(line, dict):
        return _ENCODER.encode({"type": "entry", **line}) + b"\n"
    return _ENCODER.encode(line) + b"\n"


def csv_header() -> bytes:
    return _csv_row(CSV_COLUMNS)


def csv_line(line: Line) -> bytes:
    """One CSV row, with its line end."""
    if not isinstance(line, dict):
        kind = _KINDS[type(line)]
        meta = _cell("data", msgspec.structs.asdict(line))
        return _csv_row([kind, *(meta if c == "data" else "" for c in ENTRY_FIELDS)])
    flat = {
        **line,
        "business_from": line["business"]["from"],
        "business_to": line["business"]["to"],
        "lifecycle_from": line["lifecycle"]["from"],
        "lifecycle_to": line["lifecycle"]["to"],
    }
    return _csv_row(["entry", *(_cell(c, flat[c]) for c in ENTRY_FIELDS)])


def _cell(column: str, value: Any) -> str:
    if column in _JSON_COLUMNS:
        return _ENCODER.encode(value).decode()
    return "" if value is None else str(value)


def _csv_row(cells: Iterable[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue().encode()


def read(lines: Iterable[str], where: str = "the export") -> Iterator[Line]:
    """The lines of an export in either format (told apart by its first line), as written:
    a ChainLine, entries (dicts, as `engine.storage.audit.entries` yields them), an EndLine."""
    source = iter(lines)
    first = next(source, None)
    if first is None:
        return
    if first.startswith("type,"):
        yield from _read_csv(source, first, where)
    else:
        yield from _read_ndjson(source, first, where)


def _read_ndjson(source: Iterator[str], first: str, where: str) -> Iterator[Line]:
    for number, text in enumerate(_chain(first, source), start=1):
        if text.strip():
            yield ndjson_line(text, f"{where}, line {number}")


def ndjson_line(text: str | bytes, at: str) -> Line:
    """One NDJSON line read back; `at` says where it came from, for the error."""
    try:
        value = msgspec.json.decode(text)
    except msgspec.DecodeError as exc:
        raise ExportFormatError(f"{at}: not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ExportFormatError(f"{at}: not a JSON object")
    return _line(value, at)


def _read_csv(source: Iterator[str], header: str, where: str) -> Iterator[Line]:
    rows = csv.reader(_chain(header, source))
    columns = next(rows)
    if tuple(columns) != CSV_COLUMNS:
        raise ExportFormatError(f"{where}: the CSV columns are not {','.join(CSV_COLUMNS)}")
    for cells in rows:
        at = f"{where}, row {rows.line_num}"
        if not cells:
            continue
        if len(cells) != len(CSV_COLUMNS):
            raise ExportFormatError(f"{at}: {len(cells)} cells, not {len(CSV_COLUMNS)}")
        row = dict(zip(CSV_COLUMNS, cells, strict=True))
        json_columns = _JSON_COLUMNS if row["type"] == "entry" else ("data",)
        try:
            decoded = {c: msgspec.json.decode(row[c]) for c in json_columns}
        except msgspec.DecodeError as exc:
            raise ExportFormatError(f"{at}: a JSON column is not JSON ({exc})") from None
        if row["type"] != "entry":
            meta = decoded["data"]
            if not isinstance(meta, dict):
                raise ExportFormatError(f"{at}: a {row['type']} row's data is not an object")
            yield _line({**meta, "type": row["type"]}, at)
            continue
        yield _line(
            {
                "type": "entry",
                "seq": _int(row["seq"], at),
                "run_id": row["run_id"],
                "version": _int(row["version"], at),
                "at": row["at"],
                "actor": row["actor"],
                "event": row["event"],
                "data": decoded["data"],
                "reason": decoded["reason"],
                "business": {"from": decoded["business_from"], "to": decoded["business_to"]},
                "lifecycle": {"from": decoded["lifecycle_from"], "to": decoded["lifecycle_to"]},
                "prev_hash": row["prev_hash"] or None,
                "hash": row["hash"] or None,
            },
            at,
        )


def _line(value: dict[str, Any], at: str) -> Line:
    kind = value.get("type")
    if kind == "entry":
        entry = {k: v for k, v in value.items() if k != "type"}
        _check_entry(entry, at)
        return entry
    if kind in ("chain", "end", "purged"):
        try:
            return _META.decode(_ENCODER.encode(value))
        except msgspec.ValidationError as exc:
            raise ExportFormatError(f"{at}: not a {kind} line ({exc})") from None
    raise ExportFormatError(f"{at}: type is {kind!r}, not chain, entry, purged or end")


_ENTRY_TYPES: Mapping[str, type | tuple[type, ...]] = {
    "seq": int,
    "run_id": str,
    "version": int,
    "at": str,
    "actor": str,
    "event": str,
    "data": (dict, type(None)),
    "reason": (str, type(None)),
    "business": dict,
    "lifecycle": dict,
    "prev_hash": (str, type(None)),
    "hash": (str, type(None)),
}


def _check_entry(entry: Mapping[str, Any], at: str) -> None:
    for name, kind in _ENTRY_TYPES.items():
        if name not in entry:
            raise ExportFormatError(f"{at}: the entry has no {name}")
        if not isinstance(entry[name], kind) or isinstance(entry[name], bool):
            raise ExportFormatError(f"{at}: the entry's {name} is not of its type")
    for machine in ("business", "lifecycle"):
        ends = entry[machine]
        if not all(isinstance(ends.get(e), list) for e in ("from", "to")):
            raise ExportFormatError(f"{at}: the entry's {machine} has no from and to lists")


def _int(text: str, at: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ExportFormatError(f"{at}: {text!r} is not a number") from None


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest
